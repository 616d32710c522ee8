import pytest
import torch
from official_reference import AFNO2DChannelFirst

from mmaff.models.layers import AdaptiveFrequencyFilter, set_dft_mode

CL = torch.channels_last


def circular_conv_direct(x: torch.Tensor,
                         kernel: torch.Tensor) -> torch.Tensor:
    """Per-channel circular convolution by the definition (no FFT):
    ``y[i, j] = sum_{a, b} x[(i - a) % H, (j - b) % W] * k[a, b]``."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    for a in range(h):
        for b in range(w):
            shifted = torch.roll(x, shifts=(a, b), dims=(-2, -1))
            out += shifted * kernel[..., a:a + 1, b:b + 1]
    return out


def strong_filter(channels: int, seed: int = 0) -> AdaptiveFrequencyFilter:
    """A filter whose mask is far from zero (the 0.02 init would leave
    most of it inside the soft-shrink dead zone)."""
    torch.manual_seed(seed)
    module = AdaptiveFrequencyFilter(channels, init_std=0.5).double()
    return module


@pytest.mark.parametrize('hw', [(1, 1), (5, 7), (8, 8), (6, 3), (9, 4),
                                (11, 10)])
def test_filter_is_input_plus_circular_convolution(hw):
    module = strong_filter(16)
    x = torch.randn(2, 16, *hw, dtype=torch.float64)
    kernel = module.spatial_kernel(x)
    assert kernel.shape == x.shape
    expected = x + circular_conv_direct(x, kernel)
    out = module(x)
    torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-9)
    # The mask must be doing something, or the identity would pass too.
    assert (out - x).abs().max() > 1e-2


def test_mask_is_sparse_and_adaptive():
    module = strong_filter(16)
    x1 = torch.randn(1, 16, 8, 8, dtype=torch.float64)
    x2 = torch.randn(1, 16, 8, 8, dtype=torch.float64)
    m1, m2 = module.mask(x1), module.mask(x2)
    assert m1.shape == (1, 16, 8, 5) and m1.is_complex()
    assert not torch.allclose(m1, m2)
    # softshrink zeroes small parts: the default init gives exact zeros
    small = AdaptiveFrequencyFilter(16).double()
    mask = small.mask(x1)
    assert (mask.real == 0).any() and (mask.imag == 0).any()


@pytest.mark.parametrize('hw', [(7, 7), (16, 16), (9, 12), (13, 5), (1, 6)])
def test_matches_official_einsum_formulation(hw):
    torch.manual_seed(1)
    official = AFNO2DChannelFirst(104)
    ours = AdaptiveFrequencyFilter(104)
    ours.load_state_dict(official.state_dict())
    x = torch.randn(2, 104, *hw)
    torch.testing.assert_close(ours(x), official(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('hw', [(1, 1), (3, 5), (17, 23), (32, 7), (2, 64)])
def test_odd_and_non_square_sizes_round_trip(hw):
    module = AdaptiveFrequencyFilter(8)
    x = torch.randn(3, 8, *hw)
    out = module(x)
    assert out.shape == x.shape
    # With an all-zero mask the filter must be exactly the identity: irfft2
    # with s=(H, W) restores odd widths.
    for p in module.parameters():
        torch.nn.init.zeros_(p)
    torch.testing.assert_close(module(x), x)


def test_gradients_reach_all_parameters():
    module = AdaptiveFrequencyFilter(16, init_std=0.3)
    x = torch.randn(2, 16, 6, 9, requires_grad=True)
    module(x).square().sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_inputs_give_finite_output_in_input_dtype(dtype):
    module = AdaptiveFrequencyFilter(16)
    x = torch.randn(2, 16, 7, 10)
    out = module(x.to(dtype))
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    # Filtered in float32: close to the float32 result up to input rounding.
    torch.testing.assert_close(
        out.float(), module(x.to(dtype).float()), rtol=2e-2, atol=2e-2)


def test_half_parameters_are_filtered_in_float32():
    module = AdaptiveFrequencyFilter(16).to(torch.bfloat16)
    x = torch.randn(1, 16, 5, 6, dtype=torch.bfloat16)
    out = module(x)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()


def test_autocast_is_disabled_inside():
    module = AdaptiveFrequencyFilter(16)
    x = torch.randn(1, 16, 6, 6)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = module(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, module(x))


def test_float64_stays_float64():
    module = AdaptiveFrequencyFilter(8).double()
    x = torch.randn(1, 8, 4, 4, dtype=torch.float64)
    assert module(x).dtype == torch.float64


def test_bad_input_is_rejected_clearly():
    with pytest.raises(ValueError, match='multiple of num_groups'):
        AdaptiveFrequencyFilter(12)
    module = AdaptiveFrequencyFilter(16)
    with pytest.raises(ValueError, match='expects 16 channels, got 8'):
        module(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match='4-D'):
        module(torch.randn(16, 4, 4))


def test_parameters_have_official_shapes():
    module = AdaptiveFrequencyFilter(104)
    shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    assert shapes == {
        'w1': (2, 8, 13, 13),
        'b1': (2, 8, 13),
        'w2': (2, 8, 13, 13),
        'b2': (2, 8, 13)
    }


def strong_official_filter(channels: int, seed: int = 0):
    """Official filter whose mask is far from zero (the 0.02 init leaves
    most of it in the soft-shrink dead zone, hiding mistakes)."""
    torch.manual_seed(seed)
    official = AFNO2DChannelFirst(channels)
    with torch.no_grad():
        for p in official.parameters():
            p.normal_(0, 0.3)
    ours = AdaptiveFrequencyFilter(channels)
    ours.load_state_dict(official.state_dict())
    return official, ours


@pytest.mark.parametrize('hw', [(16, 16), (9, 12), (7, 5)])
def test_filter_matches_official_in_every_mode(hw):
    official, ours = strong_official_filter(64)
    x = torch.randn(2, 64, *hw)
    expected = official(x)
    assert (expected - x).abs().max() > 0.1  # the mask does something
    torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(
            ours(x.contiguous(memory_format=CL)), expected, rtol=1e-5,
            atol=1e-5)
    set_dft_mode(ours, 'matmul')
    torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('hw', [(9, 12), (7, 5)])  # torch.fft, dense DFT
@pytest.mark.parametrize('dft_mode', ['fft', 'matmul'])
@pytest.mark.parametrize('memory_format', [torch.contiguous_format, CL])
def test_filter_gradients_match_official(dft_mode, memory_format, hw):
    official, ours = strong_official_filter(32)
    set_dft_mode(ours, dft_mode)
    x = torch.randn(2, 32, *hw)
    weight = torch.randn(2, 32, *hw)
    grads = []
    for module, inp in ((official, x),
                        (ours, x.contiguous(memory_format=memory_format))):
        inp = inp.clone().requires_grad_(True)
        (module(inp) * weight).sum().backward()
        grads.append([inp.grad] + [p.grad for p in module.parameters()])
    for ref, got in zip(*grads):
        assert ref.abs().max() > 0
        # float32 throughout: relative to the whole tensor, not per element
        assert (got - ref).norm() <= 1e-5 * ref.norm()


def test_filter_keeps_the_memory_format_of_its_input():
    module = AdaptiveFrequencyFilter(32).eval()
    x = torch.randn(2, 32, 8, 6)
    with torch.no_grad():
        assert module(x).is_contiguous()
        assert module(x.contiguous(memory_format=CL)).is_contiguous(
            memory_format=CL)


@pytest.mark.parametrize('dft_mode', ['fft', 'matmul'])
def test_filter_compiles_without_graph_breaks(dft_mode):
    module = AdaptiveFrequencyFilter(16, dft_mode=dft_mode).eval()
    for hw in ((8, 8), (12, 12)):  # dense and torch.fft / separable
        x = torch.randn(1, 16, *hw)
        for context in (torch.no_grad, torch.enable_grad):
            torch._dynamo.reset()
            with context():
                explanation = torch._dynamo.explain(module)(x)
            assert explanation.graph_break_count == 0, \
                explanation.break_reasons


def test_plain_filter_sees_every_parameter_change_and_deploy_freezes():
    """The plain filter builds its MLP matrices from the parameters on each
    call (writes through ``.data``, as EMA does, included);
    ``switch_to_deploy`` builds them once, outside the state dict."""
    official, ours = strong_official_filter(32)
    x = torch.randn(1, 32, 12, 12)
    with torch.no_grad():
        before = ours(x)
        ours.w2.data.mul_(-1)
        flipped = ours(x)
        assert (flipped - before).abs().max() > 1e-3
        ours.switch_to_deploy()
        assert set(ours.state_dict()) == {'w1', 'b1', 'w2', 'b2'}
        torch.testing.assert_close(ours(x), flipped, rtol=0, atol=0)
        ours.w2.data.mul_(-1)  # not seen until switched again
        torch.testing.assert_close(ours(x), flipped, rtol=0, atol=0)
        ours.switch_to_deploy()
        torch.testing.assert_close(ours(x), before, rtol=0, atol=0)
        torch.testing.assert_close(ours.double()(x.double()).float(), before,
                                   rtol=1e-5, atol=1e-5)


def test_forward_makes_no_equality_checks(monkeypatch):
    calls = []
    equal = torch.equal
    monkeypatch.setattr(torch, 'equal',
                        lambda *a: calls.append(1) or equal(*a))
    module = AdaptiveFrequencyFilter(16).eval()
    with torch.no_grad():
        for _ in range(3):
            module(torch.randn(1, 16, 12, 12))
    assert not calls
