"""The dense models of tools/benchmarks/dense_speed.py: the dilated
MobileViT and the MobileViT SSDLite / DeepLabv3 built and exported like
AFFNet's, checked at toy sizes (their speed is the benchmark's business)."""
import sys

import numpy as np
import pytest
import torch
from helpers import ROOT, import_file

sys.path.insert(0, f'{ROOT}/tools/benchmarks')
dense_models = import_file(f'{ROOT}/tools/benchmarks/dense_models.py')
BenchMobileViT = dense_models.BenchMobileViT


def built(cfg) -> torch.nn.Module:
    from mmengine.model import revert_sync_batchnorm

    from mmaff.utils.config import build_model_from_config
    model = revert_sync_batchnorm(build_model_from_config(cfg))
    model.init_weights()
    model.eval()
    return model


@pytest.mark.parametrize('output_stride', [8, 16, 32])
def test_dilated_mobilevit_keeps_resolution_and_parameters(output_stride):
    torch.manual_seed(0)
    model = BenchMobileViT(
        'xx_small', out_indices=(0, 1, 2, 3, 4),
        output_stride=output_stride, with_expansion=False)
    model.eval()
    plain = BenchMobileViT('xx_small')
    assert sum(p.numel() for p in model.parameters()) == \
        sum(p.numel() for p in plain.parameters())
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 128, 128))
    strides = [128 // out.shape[-1] for out in outs]
    expected = {8: [2, 4, 8, 8, 8], 16: [2, 4, 8, 16, 16],
                32: [2, 4, 8, 16, 32]}[output_stride]
    assert strides == expected
    # no expansion conv: the last stage's own 80 channels
    assert [out.shape[1] for out in outs] == [16, 24, 48, 64, 80]
    if output_stride == 8:
        # stage 4: the stride-removed conv keeps dilation 1, the MobileViT
        # block's 3x3 convs get 2; stage 5: 2 and 4 (ml-cvnets' scheme)
        for stage, (down, block) in ((3, (1, 2)), (4, (2, 4))):
            depthwise = model.layers[stage][0].conv[1].conv
            assert depthwise.stride == (1, 1)
            assert depthwise.dilation == (down, down)
            assert depthwise.padding == (down, down)
            local = model.layers[stage][1].local_rep[0].conv
            fusion = model.layers[stage][1].conv_fusion.conv
            assert local.dilation == fusion.dilation == (block, block)
            assert local.padding == (block, block)


def test_undilated_bench_mobilevit_is_mmpretrains():
    from mmpretrain.models import MobileViT
    torch.manual_seed(0)
    ours = BenchMobileViT('xx_small', out_indices=(3, 4))
    reference = MobileViT('xx_small', out_indices=(3, 4))
    reference.load_state_dict(ours.state_dict())
    ours.eval()
    reference.eval()
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        for a, b in zip(ours(x), reference(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_bad_output_stride():
    with pytest.raises(ValueError, match='output_stride must be 8, 16 or '
                       '32, got 4'):
        BenchMobileViT('xx_small', output_stride=4)


@pytest.mark.parametrize('task,name,size', [
    ('detection', 'MobileViT-XXS', 128),
    ('segmentation', 'MobileViT-XXS', 64),
])
def test_mobilevit_dense_model_exports_like_affnets(task, name, size,
                                                    tmp_path):
    """Built from AFFNet's config with the backbone swapped, exported by
    mmaff's exporter (raw outputs), equal in onnxruntime."""
    from mmaff.deployment.export import export_onnx
    from mmaff.deployment.runtime import RuntimeSession
    cfg = dense_models.dense_configs(task, [name])
    (key, cfg), = cfg.items()
    torch.manual_seed(0)
    model = built(cfg)
    feats = model.extract_feat(torch.rand(1, 3, size, size))
    if task == 'segmentation':
        assert feats[0].shape[-1] == size // 8  # output stride 8
    path = str(tmp_path / f'{key}.onnx')
    module, inputs = export_onnx(model, path, (size, size))
    with torch.no_grad():
        expected = module(inputs)
    expected = expected if isinstance(expected, (list, tuple)) else [expected]
    flat = []
    for item in expected:
        flat += list(item) if isinstance(item, (list, tuple)) else [item]
    outputs = RuntimeSession(path, 'onnxruntime', 1)(
        inputs.numpy().astype(np.float32))
    assert len(outputs) == len(flat)
    for got, want in zip(outputs, flat):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-4)


def test_dense_configs_name_every_compared_model():
    for task, prefix in (('detection', 'SSDLite'),
                         ('segmentation', 'DeepLabv3')):
        names = ['AFFNet-ET', 'AFFNet-T', 'AFFNet', 'MobileViT-XXS',
                 'MobileViT-XS', 'MobileViT-S', 'MobileNetV2']
        configs = dense_models.dense_configs(task, names)
        assert list(configs) == [f'{prefix}-{n}' for n in names]
        for name, cfg in configs.items():
            backbone = cfg.model.backbone
            assert backbone.get('init_cfg') is None or 'MobileNetV2' in name
            if 'MobileViT' in name:
                assert backbone.output_stride == (
                    8 if task == 'segmentation' else 32)


@pytest.mark.parametrize('name', ['AFFNet-ET', 'MobileViT-XXS'])
def test_part_profile_finds_every_part(name, tmp_path):
    """dense_speed.py --profile: the kernel time of a toy DeepLabv3 export
    lands in its parts, the token mixer (AFF filters, attention) apart."""
    from mmaff.deployment.export import export_onnx
    dense_speed = import_file(f'{ROOT}/tools/benchmarks/dense_speed.py')
    (key, cfg), = dense_models.dense_configs('segmentation', [name]).items()
    path = str(tmp_path / f'{key}.onnx')
    export_onnx(built(cfg), path, (64, 64), postprocess=True,
                dft_mode='matmul', backend='onnxruntime')
    parts = dense_speed.onnx_part_profile(path, 1, runs=2)
    assert list(parts) == list(dense_speed.PARTS)
    for part in ('mixer', 'backbone (rest)', 'neck + head',
                 'post-processing'):
        assert parts[part] > 0, (part, parts)
    assert parts['added by the runtime'] < 0.3 * sum(parts.values()), parts


def test_part_of_reads_module_scopes():
    part_of = import_file(
        f'{ROOT}/tools/benchmarks/dense_speed.py').part_of
    scope = ['', 'model', 'model.backbone', 'model.backbone.layers.2']
    assert part_of(scope) == 'backbone (rest)'
    assert part_of(scope + ['model.backbone.layers.2.1.blocks.0.filter']
                   ) == 'mixer'
    assert part_of(scope + ['model.backbone.layers.2.1.global_rep.0.attn.'
                            'qkv']) == 'mixer'
    assert part_of(['', 'model', 'model.decode_head.conv_seg']
                   ) == 'neck + head'
    assert part_of(['', 'label_map']) == 'post-processing'
