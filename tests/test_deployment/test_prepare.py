"""``mmaff.prepare_for_inference``: the inference form of any mm model gives
the plain model's outputs (1e-5 relative), is idempotent and leaves the
plain model alone unless told otherwise."""
import copy

import pytest
import torch
from conftest import TOY_CONFIGS
from helpers import ROOT, build_classifier, build_model
from mmcv.cnn import ConvModule
from mmengine import Config
from official_reference import OfficialAffNet

import mmaff
from mmaff import prepare_for_inference
from mmaff.checkpoint import convert_official_state_dict
from mmaff.deployment.prepare import is_prepared
from mmaff.models.layers import AdaptiveFrequencyFilter

CL = torch.channels_last


def randomise_bn(model: torch.nn.Module, seed: int = 0) -> None:
    """Running statistics and affine parameters far from the identity, so
    that a wrong fold shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.2 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
                m.weight.copy_(1 + 0.3 * torch.randn(n, generator=gen))
                m.bias.copy_(0.2 * torch.randn(n, generator=gen))


def assert_relative_close(got, expected, rel: float = 1e-5) -> None:
    """Every tensor of ``got`` within ``rel`` of ``expected``'s scale."""
    if isinstance(expected, torch.Tensor):
        got, expected = [got], [expected]
    got = [t for item in got for t in (item if isinstance(item, (
        list, tuple)) else [item])]
    expected = [t for item in expected for t in (item if isinstance(
        item, (list, tuple)) else [item])]
    assert len(got) == len(expected) and expected
    for ours, ref in zip(got, expected):
        scale = float(ref.abs().max())
        assert scale > 0
        torch.testing.assert_close(ours, ref, rtol=rel, atol=rel * scale)


def test_prepared_classifier_equals_plain_and_official():
    torch.manual_seed(0)
    official = OfficialAffNet('et').eval()
    randomise_bn(official)
    model = build_classifier('et').eval()
    model.load_state_dict(convert_official_state_dict(official.state_dict()))
    plain_state = copy.deepcopy(model.state_dict())
    prepared = prepare_for_inference(model)
    assert prepared is not model and is_prepared(prepared)
    assert not any(isinstance(m, torch.nn.BatchNorm2d)
                   for m in prepared.modules())
    assert prepared.backbone.stem.conv.weight.is_contiguous(memory_format=CL)
    # the plain model is untouched: it still trains
    assert model.state_dict().keys() == plain_state.keys()
    assert not is_prepared(model)
    x = torch.rand(2, 3, 96, 80)
    with torch.no_grad():
        expected = model(x, mode='tensor')
        got = prepared(x, mode='tensor')
        features = model.backbone(x)
        prepared_features = prepared.backbone(x)
        reference = official(x)
    assert expected.abs().max() > 1e-2
    assert_relative_close(got, expected)
    assert_relative_close(prepared_features, features)
    assert_relative_close(got, reference, rel=1e-4)


@pytest.mark.parametrize('task', ['detection', 'segmentation'])
def test_prepared_dense_models_equal_plain(task):
    """Raw head outputs (before NMS, whose ties float rounding decides)."""
    torch.manual_seed(0)
    model = build_model(Config.fromfile(f'{ROOT}/{TOY_CONFIGS[task]}'))
    randomise_bn(model)
    model.eval()
    size = (1, 3, 320, 320) if task == 'detection' else (1, 3, 256, 192)
    x = torch.randn(size)
    with torch.no_grad():
        expected = model(x, mode='tensor')
        got = prepare_for_inference(model)(x, mode='tensor')
    assert_relative_close(got, expected)


def test_prepares_peer_models_too():
    """Nothing in the transform is AFFNet's: mmpretrain's MobileNetV2."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    model = MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='MobileNetV2', widen_factor=0.5),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=10, in_channels=1280)))
    randomise_bn(model)
    model.eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x, mode='tensor')
        prepared = prepare_for_inference(model)
        got = prepared(x, mode='tensor')
    assert not any(isinstance(m, torch.nn.BatchNorm2d)
                   for m in prepared.modules())
    assert_relative_close(got, expected)


def test_prepare_is_idempotent_and_inplace_on_request():
    model = build_classifier('et').eval()
    randomise_bn(model)
    x = torch.rand(1, 3, 64, 64)
    same = prepare_for_inference(model, inplace=True)
    assert same is model and is_prepared(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    with torch.no_grad():
        once = model(x, mode='tensor')
        again = prepare_for_inference(model, inplace=True)
        twice = again(x, mode='tensor')
    assert again is model
    torch.testing.assert_close(twice, once, rtol=0, atol=0)
    assert model.state_dict().keys() == state.keys()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    assert dict(model.named_buffers()).keys() == buffers.keys()


def test_filters_build_their_matrices_once():
    model = build_classifier('et').eval()
    prepared = prepare_for_inference(model)
    filters = [m for m in prepared.modules()
               if isinstance(m, AdaptiveFrequencyFilter)]
    assert len(filters) == 9
    assert all(hasattr(f, 'deploy_w1') for f in filters)
    # outside the state dict
    assert not any('deploy' in key for key in prepared.state_dict())


def test_dft_mode_switch_for_export():
    model = build_classifier('et').eval()
    prepared = prepare_for_inference(model, dft_mode='matmul')
    modes = {m.dft_mode for m in prepared.modules()
             if isinstance(m, AdaptiveFrequencyFilter)}
    assert modes == {'matmul'}
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        assert_relative_close(prepared(x, mode='tensor'),
                              model(x, mode='tensor'))


def test_compile_option_compiles_and_keeps_outputs():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        ConvModule(8, 16, 3, padding=1, norm_cfg=dict(type='BN')),
        AdaptiveFrequencyFilter(16, init_std=0.3)).eval()
    randomise_bn(model)
    x = torch.randn(2, 8, 12, 12)
    with torch.no_grad():
        expected = model(x)
        compiled = prepare_for_inference(model, compile=True)
        got = compiled(x)
    assert compiled._compiled_call_impl is not None
    assert_relative_close(got, expected, rel=1e-4)


def test_bad_arguments_are_refused_clearly():
    with pytest.raises(TypeError, match='model must be an nn.Module'):
        prepare_for_inference('model.pth')
    with pytest.raises(TypeError, match='compile must be a bool or a dict'):
        prepare_for_inference(torch.nn.Identity(), compile='max')


def test_top_level_name():
    assert mmaff.prepare_for_inference is prepare_for_inference


def test_convolutions_run_prepacked_with_fused_activations():
    from mmaff.deployment.onednn import PrepackedConv2d, onednn_ops
    assert onednn_ops() is not None  # torch 2.14 CPU build: the ops exist
    model = build_classifier('et').eval()
    randomise_bn(model)
    prepared = prepare_for_inference(model)
    convs = [m for m in prepared.modules() if isinstance(m, PrepackedConv2d)]
    assert len(convs) > 40
    assert {c.post_op for c in convs} == {'swish', 'none'}
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        expected = model(x, mode='tensor')
        assert_relative_close(prepared(x, mode='tensor'), expected)
        assert any(c._packed for c in convs)
        # an NCHW input, and a copy (packed weights are not copied)
        assert_relative_close(prepared.backbone(x.contiguous()),
                              model.backbone(x))
        assert_relative_close(copy.deepcopy(prepared)(x, mode='tensor'),
                              expected)


def test_without_the_oneDNN_ops_convolutions_stay_plain(monkeypatch):
    from mmaff.deployment import onednn
    monkeypatch.setattr(onednn, 'onednn_ops', lambda: None)
    model = build_classifier('et').eval()
    prepared = prepare_for_inference(model)
    assert not any(isinstance(m, onednn.PrepackedConv2d)
                   for m in prepared.modules())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert_relative_close(prepared(x, mode='tensor'),
                              model(x, mode='tensor'))


def test_prepacked_convolutions_keep_gradients():
    """The fused oneDNN op has no autograd: with gradients wanted, the
    prepared model takes the plain convolution."""
    model = prepare_for_inference(
        torch.nn.Sequential(ConvModule(3, 8, 3, norm_cfg=dict(type='BN'))))
    x = torch.randn(1, 3, 12, 12).contiguous(
        memory_format=CL).requires_grad_(True)
    model(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
