"""A Runner hook that refuses a checkpoint of another model."""
from mmengine.hooks import Hook

from mmaff.checkpoint import LOAD_HINT, check_model_fits
from mmaff.registry import HOOKS


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Make the Runner refuse a ``load_from`` / ``resume`` checkpoint that
    does not fit its model (mmengine loads with ``strict=False`` and only
    logs the mismatch), on every rank.

    Runs first among the ``after_load_checkpoint`` hooks, before e.g.
    EMAHook uses the state dict. In a config: ``custom_hooks=[dict(
    type='mmaff.CheckpointFitHook', path=...)]``.

    Args:
        path (str): The checkpoint the Runner will load, for the message.
        hint (str, optional): What to do instead, appended to the message.
            Defaults to :data:`mmaff.checkpoint.LOAD_HINT`.

    Raises:
        CheckpointMismatchError: From ``after_load_checkpoint``, if the
            checkpoint does not fit (see
            :func:`mmaff.checkpoint.check_model_fits`).
    """

    priority = 'HIGHEST'

    def __init__(self, path: str, hint: str | None = LOAD_HINT) -> None:
        self.path = path
        self.hint = hint

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        check_model_fits(runner.model, checkpoint, self.path, hint=self.hint)
