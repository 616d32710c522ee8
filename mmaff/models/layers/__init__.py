from .aff_block import AFFBlock, FrequencyMixingBlock
from .dft import DFT_MODES
from .frequency_filter import AdaptiveFrequencyFilter, set_dft_mode
from .inverted_residual import InvertedResidual, make_divisible

__all__ = [
    'AFFBlock', 'AdaptiveFrequencyFilter', 'DFT_MODES', 'FrequencyMixingBlock',
    'InvertedResidual', 'make_divisible', 'set_dft_mode'
]
