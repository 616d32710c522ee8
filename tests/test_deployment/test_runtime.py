"""mmaff.deployment.runtime.RuntimeSession on a tiny exported model."""
import importlib.util

import numpy as np
import pytest
import torch

from mmaff.deployment.runtime import BACKENDS, RuntimeSession
from mmaff.models.layers import AdaptiveFrequencyFilter

AVAILABLE = [b for b in BACKENDS if importlib.util.find_spec(b)]


class TinyModel(torch.nn.Module):
    """A convolution and an AFF filter, two outputs."""

    def __init__(self, dft_mode: str) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.filter = AdaptiveFrequencyFilter(8, init_std=0.5,
                                              dft_mode=dft_mode)

    def forward(self, x):
        feat = self.conv(x)
        return self.filter(feat), feat.mean((2, 3))


def export_tiny(tmp_path, dft_mode: str = 'matmul'):
    torch.manual_seed(0)
    model = TinyModel(dft_mode).eval()
    x = torch.rand(1, 3, 12, 10)
    path = str(tmp_path / f'tiny_{dft_mode}.onnx')
    torch.onnx.export(model, (x, ), path, input_names=['input'],
                      output_names=['filtered', 'pooled'], dynamo=True,
                      external_data=False)
    with torch.no_grad():
        expected = [t.numpy() for t in model(x)]
    return path, x.numpy(), expected


@pytest.mark.parametrize('backend', AVAILABLE)
def test_outputs_match_pytorch_in_onnx_order(tmp_path, backend):
    path, x, expected = export_tiny(tmp_path)
    session = RuntimeSession(path, backend, threads=1)
    assert session.input_names == ['input']
    assert session.input_shapes == [(1, 3, 12, 10)]
    assert session.output_names == ['filtered', 'pooled']
    outputs = session(x)
    assert len(outputs) == 2
    for out, ref in zip(outputs, expected):
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, atol=1e-5)
    # results stay valid after the next call reuses the runtime's buffers
    first = outputs[0].copy()
    session(np.zeros_like(x))
    np.testing.assert_array_equal(outputs[0], first)


def test_backends_agree_with_onnxruntime(tmp_path):
    if len(AVAILABLE) < 2:
        pytest.skip('only one backend installed')
    path, x, _ = export_tiny(tmp_path)
    reference = RuntimeSession(path)(x)
    for backend in AVAILABLE[1:]:
        for out, ref in zip(RuntimeSession(path, backend)(x), reference):
            np.testing.assert_allclose(out, ref, atol=1e-5)


def test_onnxruntime_runs_the_fft_export(tmp_path):
    path, x, expected = export_tiny(tmp_path, 'fft')
    out = RuntimeSession(path, threads=1)(x)[0]
    np.testing.assert_allclose(out, expected[0], atol=1e-5)


def test_bad_backend_and_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="Unknown backend 'tensorrt'"):
        RuntimeSession('model.onnx', 'tensorrt')
    path, x, _ = export_tiny(tmp_path)
    session = RuntimeSession(path)
    with pytest.raises(ValueError, match='takes 1 input'):
        session(x, x)


def test_missing_package_names_it(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == 'openvino':
            raise ImportError('No module named openvino')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', fake_import)
    with pytest.raises(RuntimeError, match="'openvino' package"):
        RuntimeSession('model.onnx', 'openvino')
