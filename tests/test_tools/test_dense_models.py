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
