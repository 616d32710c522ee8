"""Runner hooks, registered in :data:`mmaff.registry.HOOKS` (``type=
'mmaff.<Name>'`` from any scope)."""
from .checkpoint_fit_hook import CheckpointFitHook
from .prepare_for_inference_hook import PrepareForInferenceHook

__all__ = ['CheckpointFitHook', 'PrepareForInferenceHook']
