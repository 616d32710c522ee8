from .speed import FuseForInferenceHook, fuse_for_inference, tune_malloc

__all__ = ['FuseForInferenceHook', 'fuse_for_inference', 'tune_malloc']

from .checkpoint import (  # noqa: E402
    CheckpointError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    UnsafeCheckpointError,
    check_checkpoint_file,
    check_model_fits,
    check_pretrained_prefixes,
    find_resumable_checkpoint,
    read_checkpoint,
)

__all__ += [
    'CheckpointError', 'CheckpointMismatchError', 'CheckpointNotFoundError',
    'UnsafeCheckpointError', 'check_checkpoint_file', 'check_model_fits',
    'check_pretrained_prefixes', 'find_resumable_checkpoint', 'read_checkpoint'
]
