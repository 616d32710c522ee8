from .affnet import AFFNet

__all__ = ['AFFNet']
