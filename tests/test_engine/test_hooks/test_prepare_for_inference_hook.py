"""PrepareForInferenceHook: the runner's model is prepared before the test
loop, and only then."""
import torch
from mmcv.cnn import ConvModule

from mmaff.deployment.prepare import is_prepared
from mmaff.engine.hooks import PrepareForInferenceHook
from mmaff.registry import HOOKS


class Runner:

    def __init__(self, model):
        self.model = model


def conv_bn():
    model = torch.nn.Sequential(ConvModule(3, 8, 3, norm_cfg=dict(type='BN')))
    with torch.no_grad():
        model[0].bn.running_mean.uniform_(-1, 1)
    return model.eval()


def test_hook_prepares_the_runner_model_before_test_only():
    runner = Runner(conv_bn())
    x = torch.randn(1, 3, 16, 16)
    before = runner.model(x)
    hook = HOOKS.build(dict(type='mmaff.PrepareForInferenceHook'))
    assert isinstance(hook, PrepareForInferenceHook)
    hook.before_val(runner)  # validation during training: plain
    hook.before_train(runner)
    assert not is_prepared(runner.model)
    hook.before_test(runner)
    assert is_prepared(runner.model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d)
                   for m in runner.model.modules())
    after = runner.model(x)
    assert after.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)


def test_hook_unwraps_a_ddp_style_wrapper():

    class Wrapper(torch.nn.Module):

        def __init__(self, module):
            super().__init__()
            self.module = module

    runner = Runner(Wrapper(conv_bn()))
    PrepareForInferenceHook(channels_last=False).before_test(runner)
    assert is_prepared(runner.model.module)
    assert runner.model.module[0].conv.weight.is_contiguous()
