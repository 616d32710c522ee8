"""The three DFT forms are the same transform on the same layout."""
import pytest
import torch

from mmaff.models.layers import dft
from mmaff.models.layers.dft import (
    DENSE_DFT_MAX_PIXELS,
    DFT_CACHE_SIZE,
    DenseDFT,
    SeparableDFT,
    TorchFFT,
    build_dft_matrices,
    dft_matrices,
    pick_dft,
)

FORMS = (TorchFFT, DenseDFT, SeparableDFT)
SIZES = [(1, 1), (1, 6), (2, 3), (7, 5), (8, 8), (10, 10), (3, 9), (16, 13)]


def stacked(spec: torch.Tensor) -> torch.Tensor:
    """torch.fft's complex (N, C, H, Wf) spectrum in the DFT layout."""
    return torch.stack([spec.real, spec.imag], dim=2)


@pytest.mark.parametrize('form', FORMS, ids=lambda f: f.__name__)
@pytest.mark.parametrize('hw', SIZES)
def test_every_form_is_the_ortho_rfft2_pair(form, hw):
    x = torch.randn(2, 3, *hw, dtype=torch.float64)
    spec = form.forward(x)
    assert spec.shape == (2, 3, 2, hw[0], hw[1] // 2 + 1)
    torch.testing.assert_close(
        spec, stacked(torch.fft.rfft2(x, norm='ortho')), rtol=0, atol=1e-12)
    # any half spectrum, not only one of a real map: the inverse drops the
    # parts a real map cannot have, as irfft2 does
    half = torch.randn(2, 3, hw[0], hw[1] // 2 + 1, dtype=torch.complex128)
    torch.testing.assert_close(
        form.inverse(stacked(half), hw),
        torch.fft.irfft2(half, s=hw, norm='ortho'), rtol=0, atol=1e-12)


def test_forms_take_channels_last_input():
    x = torch.randn(2, 8, 6, 7).contiguous(memory_format=torch.channels_last)
    expected = stacked(torch.fft.rfft2(x.contiguous(), norm='ortho'))
    for form in FORMS:
        torch.testing.assert_close(form.forward(x), expected, rtol=1e-5,
                                   atol=1e-5)


def test_the_form_is_picked_by_mode_and_size(monkeypatch):
    side = int(DENSE_DFT_MAX_PIXELS**0.5)
    assert side * side <= DENSE_DFT_MAX_PIXELS < side * (side + 1)
    assert pick_dft('fft', side, side) is DenseDFT
    assert pick_dft('fft', side, side + 1) is TorchFFT
    assert pick_dft('matmul', side, side) is DenseDFT
    assert pick_dft('matmul', side, side + 1) is SeparableDFT
    # graph capture in fft mode keeps the FFT op the mode promises
    monkeypatch.setattr(torch.onnx, 'is_in_onnx_export', lambda: True)
    assert pick_dft('fft', side, side) is TorchFFT
    assert pick_dft('matmul', side, side) is DenseDFT


def test_matrix_cache_is_bounded_and_shared():
    build_dft_matrices.cache_clear()
    first = dft_matrices('dense', 4, 4, torch.float32, torch.device('cpu'))
    again = dft_matrices('dense', 4, 4, torch.float32, torch.device('cpu'))
    assert all(a is b for a, b in zip(first, again))
    for side in range(1, DFT_CACHE_SIZE + 10):
        dft_matrices('separable', side, 2, torch.float32,
                     torch.device('cpu'))
    info = build_dft_matrices.cache_info()
    assert info.currsize == info.maxsize == DFT_CACHE_SIZE


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="dft_mode 'cuFFT'.*'fft', 'matmul'"):
        dft.check_dft_mode('cuFFT')


@pytest.mark.parametrize('mode,hw', [('fft', (7, 9)), ('matmul', (7, 9)),
                                     ('matmul', (12, 12))])
def test_matrices_built_in_inference_mode_serve_training(mode, hw):
    """Inference first (e.g. an Inferencer), then training in the same
    process: the cached matrices must not be inference tensors."""
    from mmaff.models.layers import AdaptiveFrequencyFilter
    build_dft_matrices.cache_clear()
    filt = AdaptiveFrequencyFilter(16, num_groups=4, dft_mode=mode)
    x = torch.randn(2, 16, *hw)
    with torch.inference_mode():
        expected = filt(x)
    filt.train()
    x.requires_grad_(True)
    out = filt(x)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    torch.testing.assert_close(out.detach(), expected)
