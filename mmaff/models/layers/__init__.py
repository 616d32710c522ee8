from .aff_block import AFFBlock, FrequencyMixingBlock
from .frequency_filter import AdaptiveFrequencyFilter
from .inverted_residual import InvertedResidual, make_divisible

__all__ = [
    'AFFBlock', 'AdaptiveFrequencyFilter', 'FrequencyMixingBlock',
    'InvertedResidual', 'make_divisible'
]
