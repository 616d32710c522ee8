from .aff_block import AFFBlock, FrequencyMixingBlock
from .folding_conv_module import FoldingConvModule
from .frequency_filter import DFT_MODES, AdaptiveFrequencyFilter, set_dft_mode
from .inverted_residual import InvertedResidual, make_divisible

__all__ = [
    'AFFBlock', 'AdaptiveFrequencyFilter', 'DFT_MODES', 'FoldingConvModule',
    'FrequencyMixingBlock',
    'InvertedResidual', 'make_divisible', 'set_dft_mode'
]
