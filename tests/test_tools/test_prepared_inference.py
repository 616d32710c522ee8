"""``--fuse-conv-bn`` of tools/test.py and demo/image_demo.py: BN folded
into the convolutions and channels-last, the same results as without."""
import re

import pytest
from conftest import TOY_CONFIGS
from helpers import run_python, run_tool, success_log

import mmaff.utils


def final_metrics(log: str) -> dict[str, str]:
    """The metrics of the final ``Iter(test)`` / ``Epoch(test)`` line, as
    printed."""
    line = [ln for ln in log.splitlines() if '(test)' in ln and
            ('mIoU' in ln or 'bbox_mAP' in ln)][-1]
    return dict(re.findall(r'((?:coco/)?[a-zA-Z_0-9]*(?:mAP|IoU|Acc)'
                           r'[a-zA-Z_0-9]*): ([\d.-]+)', line))


@pytest.mark.parametrize('task, data, extra', [
    # with --device: the segmentor is moved to the CPU before fusing
    ('segmentation', 'toy_ade', ('--device', 'cpu')),
    ('detection', 'toy_coco', ()),
])
def test_test_py_fuse_conv_bn_keeps_the_metrics(task, data, extra, request):
    data_root = request.getfixturevalue(data)
    checkpoint = request.getfixturevalue(
        {'segmentation': 'trained_seg', 'detection': 'trained_det'}[task])
    plain = final_metrics(success_log(run_tool(
        'test.py', TOY_CONFIGS[task], data_root, checkpoint)))
    fused = final_metrics(success_log(run_tool(
        'test.py', TOY_CONFIGS[task], data_root, checkpoint,
        '--fuse-conv-bn', *extra)))
    assert len(plain) >= 3
    assert fused == plain


def test_image_demo_fuse_conv_bn_gives_the_same_summaries(
        trained_seg, toy_ade, tmp_path):
    image = toy_ade + 'images/validation'
    args = (image, TOY_CONFIGS['segmentation'], trained_seg, '--device',
            'cpu')
    plain = success_log(run_python('demo/image_demo.py', *args, '--out-dir',
                                   tmp_path / 'a'))
    fused = success_log(run_python('demo/image_demo.py', *args, '--out-dir',
                                   tmp_path / 'b', '--fuse-conv-bn'))

    def lines(log):
        return [ln.split(' -> ')[0] for ln in log.splitlines()
                if ' -> ' in ln]

    assert len(lines(plain)) >= 2
    assert lines(fused) == lines(plain)


def test_hook_fuses_the_runner_model():
    import torch
    from mmcv.cnn import ConvModule

    class Runner:
        model = torch.nn.Sequential(
            ConvModule(3, 8, 3, norm_cfg=dict(type='BN')))

    runner = Runner()
    runner.model.eval()
    x = torch.randn(1, 3, 16, 16)
    before = runner.model(x)
    mmaff.utils.FuseForInferenceHook().before_test(runner)
    assert not any(isinstance(m, torch.nn.BatchNorm2d)
                   for m in runner.model.modules())
    after = runner.model(x)
    assert after.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
