"""Apply the inference transform before a Runner's test loop."""
from mmengine.hooks import Hook

from mmaff.registry import HOOKS


@HOOKS.register_module()
class PrepareForInferenceHook(Hook):
    """Run :func:`mmaff.deployment.prepare_for_inference` on the runner's
    model once the checkpoint is loaded, before the first test batch.

    Only the test loop is affected: training and the validation during
    training keep the plain model (the prepared one cannot train: its
    BatchNorms are folded away). ``tools/test.py`` adds this hook unless
    ``--no-prepare`` is given; add it to ``custom_hooks`` of your own
    configs to get the same.

    Args:
        compile (bool | dict): Also ``torch.compile`` (see
            :func:`~mmaff.deployment.prepare_for_inference`). Defaults to
            False.
        channels_last (bool): Convert the weights to channels-last.
            Defaults to True.
    """

    # after every hook that may still load or swap weights (EMA: 'NORMAL')
    priority = 'LOWEST'

    def __init__(self, compile: bool | dict = False,
                 channels_last: bool = True) -> None:
        self.compile = compile
        self.channels_last = channels_last

    def before_test(self, runner) -> None:
        from mmaff.deployment.prepare import prepare_for_inference

        # a DDP-wrapped model (tools/dist_test.sh) keeps the network in
        # .module
        model = getattr(runner.model, 'module', runner.model)
        prepare_for_inference(model, inplace=True, compile=self.compile,
                              channels_last=self.channels_last)
