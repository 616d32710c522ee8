from .speed import fuse_for_inference, tune_malloc

__all__ = ['fuse_for_inference', 'tune_malloc']
