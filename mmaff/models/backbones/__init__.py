from .affnet import AFFNet, switch_dft_mode

__all__ = ['AFFNet', 'switch_dft_mode']
