"""Runner hooks, registered in :data:`mmaff.registry.HOOKS` (``type=
'mmaff.<Name>'`` from any scope)."""
from .checkpoint_fit_hook import CheckpointFitHook

__all__ = ['CheckpointFitHook']
