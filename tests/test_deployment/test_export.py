"""The matmul DFT path and ONNX export (tools/deployment/export_onnx.py)."""
import re

import pytest
import torch
from helpers import classifier_config, run_python

from mmaff.models import AFFNet, set_dft_mode
from mmaff.models.layers import AdaptiveFrequencyFilter


@pytest.mark.parametrize('hw', [(1, 1), (2, 2), (5, 7), (6, 3), (16, 16),
                                (9, 12)])
def test_matmul_filter_equals_fft_filter(hw):
    torch.manual_seed(0)
    module = AdaptiveFrequencyFilter(16, init_std=0.5)
    x = torch.randn(2, 16, *hw)
    expected = module(x)
    set_dft_mode(module, 'matmul')
    out = module(x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert (expected - x).abs().max() > 0.1  # the filter did something


def test_matmul_path_uses_no_fft_and_keeps_dtype():
    module = AdaptiveFrequencyFilter(8, dft_mode='matmul')
    x = torch.randn(1, 8, 6, 5, dtype=torch.bfloat16)
    with torch.profiler.profile() as prof:
        out = module(x)
    names = {e.name for e in prof.events()}
    assert not any('fft' in n for n in names)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


def test_backbone_set_dft_mode_equals_fft_path():
    torch.manual_seed(0)
    model = AFFNet('et', out_indices=(2, 3, 4, 5)).eval()
    x = torch.rand(2, 3, 256, 256)
    with torch.no_grad():
        expected = model(x)
        set_dft_mode(model, 'matmul')
        deployed = model(x)
    assert all(m.dft_mode == 'matmul' for m in model.modules()
               if isinstance(m, AdaptiveFrequencyFilter))
    for a, b in zip(deployed, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert set_dft_mode(model, 'fft') == 9
    with pytest.raises(ValueError, match="Unknown dft_mode 'dft'"):
        set_dft_mode(model, 'dft')


def test_dft_mode_from_config_builds_matmul_filters():
    from mmengine.config import Config

    from mmaff.registry import MODELS
    cfg = Config(dict(model=dict(type='mmaff.AFFNet', arch='et')))
    cfg.merge_from_dict({'model.dft_mode': 'matmul'})
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    modes = {m.dft_mode for m in model.modules()
             if isinstance(m, AdaptiveFrequencyFilter)}
    assert modes == {'matmul'}
    reference = AFFNet('et').eval()
    reference.load_state_dict(model.state_dict())
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5,
                                   atol=1e-5)


def test_unknown_dft_mode_is_refused_everywhere():
    with pytest.raises(ValueError, match="Unknown dft_mode 'dft'"):
        AFFNet('et', dft_mode='dft')
    module = AdaptiveFrequencyFilter(8)
    with pytest.raises(ValueError, match="Unknown dft_mode 'DFT'"):
        module.dft_mode = 'DFT'
    assert module.dft_mode == 'fft'


def export(tmp_path, *args):
    cfg = tmp_path / 'affnet-et_cls.py'
    cfg.write_text(classifier_config('et'))
    return run_python('tools/deployment/export_onnx.py', cfg, *args,
                      timeout=600)


@pytest.mark.parametrize('dft,op', [('fft', 'DFT'), ('matmul', 'MatMul')])
def test_onnx_export_matches_pytorch(tmp_path, dft, op):
    out = tmp_path / f'et_{dft}.onnx'
    result = export(tmp_path, '--dft', dft, '--shape', '256', '--out',
                    str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    diff = float(re.search(r'onnxruntime vs PyTorch: max abs diff (\S+)',
                           result.stdout)[1])
    assert diff <= 1e-4
    ops = re.search(r'ONNX ops: (.*)', result.stdout)[1].split(', ')
    assert op in ops
    if dft == 'matmul':
        assert 'DFT' not in ops
    assert out.stat().st_size > 1e6


def test_torchscript_exporter_matmul_path_and_clear_fft_error(tmp_path):
    result = export(tmp_path, '--dft', 'matmul', '--exporter',
                    'torchscript', '--shape', '64', '--opset', '17',
                    '--out', str(tmp_path / 'ts.onnx'))
    assert result.returncode == 0, result.stderr[-3000:]
    result = export(tmp_path, '--dft', 'fft', '--exporter', 'torchscript')
    assert result.returncode != 0
    assert 'TorchScript exporter cannot export FFTs' in result.stderr
