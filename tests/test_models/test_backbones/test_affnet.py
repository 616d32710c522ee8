import copy

import pytest
import torch
from helpers import build_classifier, num_params
from mmengine.model.weight_init import PretrainedInit  # noqa: F401
from official_reference import OfficialAffNet
from torch.nn.modules.batchnorm import _BatchNorm

from mmaff.checkpoint import convert_official_state_dict
from mmaff.models import AFFNet
from mmaff.models.layers import AFFBlock, FrequencyMixingBlock

STAGE_CHANNELS = {
    'et': [32, 48, 64, 104, 144, 576],
    't': [32, 48, 96, 160, 192, 768],
    'base': [32, 64, 128, 256, 320, 960],
}
# Official per-part parameter counts (stem+layers+exp conv, no classifier).
BACKBONE_PARAMS = {
    'et': 1_436_264 - 577_000,
    't': 2_654_232 - 769_000,
    'base': 5_568_696 - 961_000,
}


@pytest.mark.parametrize('arch', ['et', 't', 'base'])
def test_variants_shapes_and_params(arch):
    model = AFFNet(arch=arch, out_indices=(0, 1, 2, 3, 4, 5))
    model.eval()
    assert num_params(model) == BACKBONE_PARAMS[arch]
    assert model.out_channels == STAGE_CHANNELS[arch]
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 64, 96))
    assert len(outs) == 6
    for i, (out, channels) in enumerate(zip(outs, STAGE_CHANNELS[arch])):
        stride = 2**(i + 1) if i < 5 else 32
        assert out.shape == (1, channels, 64 // stride, 96 // stride)


@pytest.mark.parametrize('alias,arch', [('affnet-et', 'et'),
                                        ('AFFNet-T', 't'),
                                        ('affnet', 'base')])
def test_arch_aliases(alias, arch):
    assert num_params(AFFNet(alias)) == BACKBONE_PARAMS[arch]


def test_unknown_arch_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown AFFNet arch 'xs'.*'et'"):
        AFFNet(arch='xs')
    with pytest.raises(TypeError):
        AFFNet(arch=3)


def test_custom_arch():
    arch = {
        'stem_channels': 8,
        'stages': [['mobilenetv2', 16, 2, 1, 2], ['aff', 32, 2, 64, 1, 2]],
    }
    model = AFFNet(arch=arch, out_indices=(0, 1, 2))
    outs = model(torch.rand(2, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [16, 32, 128]
    assert [o.shape[-1] for o in outs] == [8, 4, 4]
    with pytest.raises(ValueError, match='exactly the keys'):
        AFFNet(arch={'stages': arch['stages']})
    with pytest.raises(ValueError, match='needs 6 entries'):
        AFFNet(arch={'stem_channels': 8, 'stages': [['aff', 32, 2, 64, 1]]})
    with pytest.raises(ValueError, match='Unknown stage type'):
        AFFNet(arch={'stem_channels': 8, 'stages': [['vit', 32, 2, 1, 2]]})
    with pytest.raises(ValueError, match='not divisible by num_filter'):
        AFFNet(arch={'stem_channels': 8, 'stages': [['aff', 36, 2, 64, 1,
                                                     2]]})


def test_out_indices():
    model = AFFNet('et', out_indices=(2, 3, 4))
    assert model.conv_1x1_exp is None  # not built when not requested
    outs = model(torch.rand(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [64, 104, 144]
    model = AFFNet('et', out_indices=-2)
    assert [o.shape[1] for o in model(torch.rand(1, 3, 64, 64))] == [144]
    model = AFFNet('et', out_indices=[4, 2])
    assert model.out_indices == [2, 4]
    for bad in [6, -7, (1, 1), (), '2', 1.0]:
        with pytest.raises(ValueError, match='out_indices'):
            AFFNet('et', out_indices=bad)


def test_invalid_options():
    with pytest.raises(ValueError, match='frozen_stages'):
        AFFNet('et', frozen_stages=7)
    with pytest.raises(ValueError, match='output_stride'):
        AFFNet('et', output_stride=4)


@pytest.mark.parametrize('output_stride', [8, 16, 32])
def test_output_stride(output_stride):
    model = AFFNet(
        'et', out_indices=(0, 1, 2, 3, 4), output_stride=output_stride)
    assert num_params(model) == num_params(AFFNet('et', out_indices=(0, 1, 2,
                                                                     3, 4)))
    model.eval()
    outs = model(torch.rand(1, 3, 64, 64))
    strides = [64 // o.shape[-1] for o in outs]
    assert strides == [min(s, output_stride) for s in (2, 4, 8, 16, 32)]


def test_output_stride_dilation_layout():
    # Official convention: the first dilated stage keeps the dilation it had,
    # the running dilation doubles after it.
    model = AFFNet('et', out_indices=4, output_stride=8)
    dw4 = model.layers[3][0].depthwise_conv.conv
    dw5 = model.layers[4][0].depthwise_conv.conv
    assert (dw4.stride, dw4.dilation) == ((1, 1), (1, 1))
    assert (dw5.stride, dw5.dilation) == ((1, 1), (2, 2))
    model = AFFNet('et', out_indices=4, output_stride=16)
    dw4 = model.layers[3][0].depthwise_conv.conv
    dw5 = model.layers[4][0].depthwise_conv.conv
    assert (dw4.stride, dw5.stride, dw5.dilation) == ((2, 2), (1, 1), (1, 1))


def check_frozen(module):
    for m in module.modules():
        assert not m.training
    for p in module.parameters():
        assert not p.requires_grad


def test_frozen_stages():
    model = AFFNet('et', out_indices=(0, 1, 2, 3, 4), frozen_stages=2)
    model.train()
    check_frozen(model.stem)
    check_frozen(model.layers[0])
    check_frozen(model.layers[1])
    assert model.layers[2].training
    assert all(p.requires_grad for p in model.layers[2].parameters())


def test_norm_eval():
    model = AFFNet('et', norm_eval=True)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    assert model.layers[2][1].blocks[0].filter.training


def test_with_cp_matches_plain():
    torch.manual_seed(0)
    plain = AFFNet('et', out_indices=(2, 4))
    cp = AFFNet('et', out_indices=(2, 4), with_cp=True)
    cp.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 64, 64)
    x_cp = x.clone()
    outs, outs_cp = plain(x), cp(x_cp)
    for a, b in zip(outs, outs_cp):
        torch.testing.assert_close(a, b)
    sum(o.sum() for o in outs).backward()
    sum(o.sum() for o in outs_cp).backward()
    for (n, p), p_cp in zip(plain.named_parameters(), cp.parameters()):
        torch.testing.assert_close(p.grad, p_cp.grad, msg=n)


def test_drop_path_rate():
    model = AFFNet('et', drop_path_rate=0.3)
    blocks = [
        m for m in model.modules() if isinstance(m, FrequencyMixingBlock)
    ]
    assert len(blocks) == 9
    rates = [getattr(b.drop_path, 'drop_prob', 0.) for b in blocks]
    assert rates[0] == 0. and rates[-1] == pytest.approx(0.3)
    assert rates == sorted(rates)
    model.eval()
    out1 = model(torch.rand(1, 3, 32, 32))
    assert torch.isfinite(out1[0]).all()


def test_block_structure_mlp_before_filter():
    """y = x + AFF(N2(IR(N1(x)))), the official order."""
    torch.manual_seed(0)
    block = FrequencyMixingBlock(16).eval()
    x = torch.randn(2, 16, 6, 7)
    expected = x + block.filter(block.norm2(block.mlp(block.norm1(x))))
    torch.testing.assert_close(block(x), expected)


def test_aff_block_fusion_order():
    block = AFFBlock(16, 32, 1).eval()
    x = torch.randn(1, 16, 5, 5)
    proj = block.conv_proj(block.norm(block.blocks(x)))
    torch.testing.assert_close(block(x),
                               block.fusion(torch.cat([x, proj], dim=1)))


def test_pretrained_init_cfg_with_prefix(tmp_path):
    src = AFFNet('et', out_indices=(2, 3, 4))
    state = {f'backbone.{k}': v for k, v in src.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(10, 576)
    ckpt = tmp_path / 'cls.pth'
    torch.save({'state_dict': state}, ckpt)
    model = AFFNet(
        'et',
        out_indices=(2, 3, 4),
        init_cfg=dict(type='Pretrained', checkpoint=str(ckpt),
                      prefix='backbone.'))
    model.init_weights()
    for k, v in src.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, msg=k)


def test_bad_input_channels_and_dims():
    model = AFFNet('et').eval()
    with pytest.raises(ValueError, match='AFFNet expects 3 channels, got 1'):
        model(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r'4-D.*\(3, 32\)'):
        model(torch.rand(3, 32))
    with pytest.raises(ValueError, match='4-D'):
        model(torch.rand(1, 1, 3, 32, 32))
    with pytest.raises(ValueError, match='empty'):
        model(torch.rand(0, 3, 32, 32))


@pytest.mark.parametrize('hw', [(1, 1), (7, 5), (31, 33), (97, 131)])
def test_images_smaller_than_total_stride_work(hw):
    model = AFFNet('et', out_indices=(0, 1, 2, 3, 4)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, *hw))
    for i, out in enumerate(outs):
        stride = 2**(i + 1)
        # every conv uses padding k // 2: ceil division, never below 1
        assert out.shape[-2:] == (-(-hw[0] // stride), -(-hw[1] // stride))
        assert torch.isfinite(out).all()


def test_nan_input_spreads_through_global_filter():
    # Documented: one NaN pixel contaminates the whole map after the first
    # AFF stage (global mixing) but not the convolutional stages before.
    model = AFFNet('et', out_indices=(1, 2)).eval()
    x = torch.rand(1, 3, 64, 64)
    x[..., 0, 0] = float('nan')
    with torch.no_grad():
        stage2, stage3 = model(x)
    assert torch.isnan(stage2).any() and not torch.isnan(stage2).all()
    assert torch.isnan(stage3).all()


def converted_official_classifier(arch: str):
    """Our classifier holding converted weights of the official model (with
    perturbed norms and a strong filter mask), and the official model."""
    torch.manual_seed(0)
    official = OfficialAffNet(arch).eval()
    with torch.no_grad():
        for name, t in official.state_dict().items():
            if not t.is_floating_point():
                continue
            if 'filter' in name:
                t.normal_(0, 0.1)
            else:
                t.add_(torch.rand_like(t) * 0.1)
    model = build_classifier(arch).eval()
    model.load_state_dict(
        convert_official_state_dict(official.state_dict()), strict=True)
    return model, official


def test_channels_last_default_matches_contiguous_forward_and_backward():
    """AFFNet runs channels-last unless told otherwise; the values, the
    gradients and the state dict are those of the contiguous run, which is
    the official model's."""
    model, official = converted_official_classifier('et')
    assert model.backbone.channels_last
    contiguous = copy.deepcopy(model)
    contiguous.backbone.channels_last = False
    x = torch.rand(2, 3, 97, 131)
    with torch.no_grad():
        features = model.backbone(x)
        plain = contiguous.backbone(x)
        torch.testing.assert_close(official(x), model(x, mode='tensor'),
                                   rtol=1e-4, atol=1e-4)
    assert all(f.is_contiguous(memory_format=torch.channels_last)
               for f in features)
    assert all(f.is_contiguous() for f in plain)
    for ours, ref in zip(features, plain):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    # Gradients: the channels-last run about as close to the float64 ones
    # as the contiguous run, tensor by tensor at worst
    grads = []
    weight = torch.randn(2, 1000)
    for net, dtype in ((model, torch.float32), (contiguous, torch.float32),
                       (copy.deepcopy(contiguous).double(), torch.float64)):
        net.zero_grad()
        xg = x.to(dtype).clone().requires_grad_(True)
        (net(xg, mode='tensor') * weight.to(dtype)).sum().backward()
        grads.append([xg.grad] + [p.grad for p in net.parameters()])
    errors = []
    for ours, plain_grad, ref in zip(*grads):
        error = (ours.double() - ref).norm() / ref.norm()
        plain_error = (plain_grad.double() - ref).norm() / ref.norm()
        errors.append((error.item(), plain_error.item()))
    worst, plain_worst = (max(e) for e in zip(*errors))
    # float32 rounding alone: a wrong gradient is off by far more
    assert worst < max(4 * plain_worst, 1e-4)
    assert model.state_dict().keys() == contiguous.state_dict().keys()
