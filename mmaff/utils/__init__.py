from .speed import FuseForInferenceHook, fuse_for_inference, tune_malloc

__all__ = ['FuseForInferenceHook', 'fuse_for_inference', 'tune_malloc']
