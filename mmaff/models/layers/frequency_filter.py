"""The adaptive frequency filter (AFF) token mixer."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule

from mmaff.registry import MODELS

from .tracing import is_traced

#: How the filter computes its DFTs: ``'fft'`` (torch.fft, the default) or
#: ``'matmul'`` (real matrix products; exact, no complex tensors or FFT op,
#: so it exports to runtimes without ONNX ``DFT``, but O(N^1.5) per map
#: instead of O(N log N)).
DFT_MODES = ('fft', 'matmul')

#: In eager ``'fft'`` mode, maps of at most this many pixels take each 2-D
#: DFT as one dense real matrix product instead of torch.fft, whose fixed
#: cost per call dominates there: on 2 CPU threads the whole filter takes
#: 0.4-0.65x the time at 8x8 and 10x10, about the same at 12x12 to 16x16,
#: and far more from 20x20 on (the product grows as (H * W)^2).
DENSE_DFT_MAX_PIXELS = 100


def check_dft_mode(dft_mode: str) -> str:
    """Return ``dft_mode`` if it is one of :data:`DFT_MODES`, else raise."""
    if dft_mode not in DFT_MODES:
        raise ValueError(
            f'Unknown DFT mode {dft_mode!r}; choose from {DFT_MODES}')
    return dft_mode


def _c2r_counts(w: int, device: torch.device) -> torch.Tensor:
    """How often each of the ``w // 2 + 1`` bins along the width of a real
    map's half spectrum counts in its inverse (float64): twice, for it
    stands for a conjugate pair, except DC and, for an even ``w``, Nyquist.
    The imaginary parts of those two are ignored by the inverse (c2r)."""
    count = torch.full((w // 2 + 1, ), 2., dtype=torch.float64, device=device)
    count[0] = 1.
    if w % 2 == 0:
        count[-1] = 1.
    return count


def set_dft_mode(model: nn.Module, dft_mode: str) -> int:
    """Set how every AFF filter in ``model`` computes its DFTs.

    Works on anything that holds filters (a filter, block, backbone,
    classifier, detector or segmentor), trained or not: weights are
    untouched. Configs select the mode at build time instead, with
    ``model.backbone.dft_mode``.

    Args:
        model (nn.Module): The module to switch.
        dft_mode (str): One of :data:`DFT_MODES`.

    Returns:
        int: The number of filters switched.
    """
    check_dft_mode(dft_mode)
    filters = [
        m for m in model.modules() if isinstance(m, AdaptiveFrequencyFilter)
    ]
    for module in filters:
        module.dft_mode = dft_mode
    return len(filters)


@MODELS.register_module()
class AdaptiveFrequencyFilter(BaseModule):
    """Adaptive frequency filter, the token mixer of AFFNet.

    Computes ``x + irfft2(M(X) * X)`` with ``X = rfft2(x)``, where the mask
    ``M`` is predicted from the spectrum itself by a two-layer, block-diagonal
    complex MLP over channels (the same at every frequency), followed by a
    soft-shrink of its real and imaginary parts. This equals ``x`` plus a
    depthwise circular convolution of ``x`` with an input-dependent kernel as
    large as the feature map (see :meth:`spatial_kernel`). No parameter
    depends on the spatial size, so any ``H x W`` works.

    In eager mode the complex MLP is two complex batched matrix products
    over the groups, on the spectrum as torch.fft returns it, and maps of
    at most :data:`DENSE_DFT_MAX_PIXELS` pixels take their DFTs as dense
    matrix products (see :meth:`_filter_eager`). Exporters and the compiler
    get real arithmetic only: real matrix products over each group's
    stacked real and imaginary parts. The parameters keep the layout of
    the official implementation (``w1``, ``b1``, ``w2``, ``b2``, index 0 =
    real part, 1 = imaginary part, weights indexed ``[group, in, out]``), so
    official weights load without reshaping.

    Modified from the official code of `Adaptive Frequency Filters As
    Efficient Global Token Mixers <https://arxiv.org/abs/2307.14008>`_
    (microsoft/TokenMixers, MIT license).

    Args:
        channels (int): Number of input (and output) channels.
        num_groups (int): Number of diagonal blocks of the complex MLP.
            ``channels`` must be divisible by it. Defaults to 8.
        hidden_ratio (float): Width of the MLP's hidden layer relative to the
            group width. Defaults to 1.
        sparsity_threshold (float): Soft-shrink threshold applied to the real
            and imaginary parts of the mask. Defaults to 0.01.
        act_cfg (dict): Activation applied separately to the real and the
            imaginary part after the first layer. Defaults to SiLU.
        init_std (float): Std of the normal init of the MLP parameters.
            Defaults to 0.02.
        dft_mode (str): How the DFTs are computed, one of
            :data:`DFT_MODES`; change it later with :func:`set_dft_mode`.
            Defaults to ``'fft'``.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 channels: int,
                 num_groups: int = 8,
                 hidden_ratio: float = 1.0,
                 sparsity_threshold: float = 0.01,
                 act_cfg: dict = dict(type='SiLU'),
                 init_std: float = 0.02,
                 dft_mode: str = 'fft',
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if channels <= 0 or channels % num_groups != 0:
            raise ValueError(
                f'AdaptiveFrequencyFilter: channels ({channels}) must be a '
                f'positive multiple of num_groups ({num_groups})')
        self.channels = channels
        self.num_groups = num_groups
        self.group_channels = channels // num_groups
        self.hidden_channels = int(self.group_channels * hidden_ratio)
        if self.hidden_channels <= 0:
            raise ValueError(
                f'AdaptiveFrequencyFilter: hidden_ratio ({hidden_ratio}) '
                'leaves no hidden channels')
        self.sparsity_threshold = sparsity_threshold
        g, b, h = num_groups, self.group_channels, self.hidden_channels
        self.w1 = nn.Parameter(init_std * torch.randn(2, g, b, h))
        self.b1 = nn.Parameter(init_std * torch.randn(2, g, h))
        self.w2 = nn.Parameter(init_std * torch.randn(2, g, h, b))
        self.b2 = nn.Parameter(init_std * torch.randn(2, g, b))
        self.act = build_activation_layer(act_cfg)
        self.dft_mode = dft_mode
        self._dft_cache: dict = {}
        self._weight_cache: tuple | None = None

    @property
    def dft_mode(self) -> str:
        """One of :data:`DFT_MODES`."""
        return self._dft_mode

    @dft_mode.setter
    def dft_mode(self, dft_mode: str) -> None:
        self._dft_mode = check_dft_mode(dft_mode)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError('AdaptiveFrequencyFilter expects a 4-D (N, C, H, '
                             f'W) tensor, got shape {tuple(x.shape)}')
        if x.shape[1] != self.channels:
            raise ValueError(
                f'AdaptiveFrequencyFilter expects {self.channels} channels, '
                f'got {x.shape[1]}')

    @staticmethod
    def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
        # FFTs of half types are limited (power-of-2 sizes on CUDA, none on
        # CPU), so everything below float64 is filtered in float32.
        return torch.float64 if dtype == torch.float64 else torch.float32

    def _block_weights(self, dtype: torch.dtype,
                       form: str = 'stacked') -> tuple[torch.Tensor, ...]:
        """Both complex layers as per-group matrices.

        ``'stacked'`` gives real ones acting on columns ``[re_0 .. re_b,
        im_0 .. im_b]``: weights ``(G, 2 * out, 2 * in)`` and biases ``(G,
        2 * out, 1)``. ``'complex'`` gives complex weights ``(G, out, in)``
        and biases ``(G, out, 1)`` of the complex ``dtype`` matching the
        real ``dtype``.

        Without autograd the result is cached for as long as the parameters
        hold the values it was built from. The check compares values, not
        version counters: in-place writes through ``.data`` (as EMA
        implementations do) leave the version counter alone."""
        params = (self.w1, self.b1, self.w2, self.b2)
        # Under torch.compile the weights are traced (and folded by
        # freezing); the cache would only break the graph.
        use_cache = not (torch.is_grad_enabled()
                         and any(p.requires_grad for p in params)
                         or torch.compiler.is_compiling())
        key = (dtype, form)
        if use_cache and self._weight_cache is not None:
            cached_key, sources, weights = self._weight_cache
            if cached_key == key and all(
                    s.device == p.device and s.dtype == p.dtype
                    and s.shape == p.shape and torch.equal(s, p)
                    for s, p in zip(sources, params)):
                return weights
        out = []
        for weight, bias in ((self.w1, self.b1), (self.w2, self.b2)):
            weight, bias = weight.to(dtype), bias.to(dtype)
            if form == 'complex':
                out.append(torch.complex(weight[0], weight[1]).transpose(1, 2))
                out.append(torch.complex(bias[0], bias[1]).unsqueeze(-1))
                continue
            # (a + ib)(c + id) = (ac - bd) + i(ad + bc)
            w_re = weight[0].transpose(1, 2)  # (G, out, in)
            w_im = weight[1].transpose(1, 2)
            real_rows = torch.cat([w_re, -w_im], dim=2)
            imag_rows = torch.cat([w_im, w_re], dim=2)
            out.append(torch.cat([real_rows, imag_rows], dim=1))
            out.append(torch.cat([bias[0], bias[1]], dim=1).unsqueeze(-1))
        if use_cache:
            self._weight_cache = (key,
                                  tuple(p.detach().clone() for p in params),
                                  tuple(out))
        return tuple(out)

    def _complex_mlp(self, re: torch.Tensor, im: torch.Tensor,
                     shape: tuple[int, ...]) -> torch.Tensor:
        """The mask from the real and imaginary parts of the spectrum, both
        of shape (N, C, H, Wf), as a real (N, G, 2 * b, H * Wf) tensor: the
        real parts of each group's ``b`` channels, then their imaginary
        parts.

        Each group's real and imaginary parts are stacked once into a
        (2 * b, H * Wf) matrix, so both layers are single batched matrix
        products over (N, G); the spectrum keeps the layout torch.fft gives
        it, with no channels-last round trip and no grouped convolutions on
        tiny maps. ``shape`` is their (N, C, H, Wf), taken from the real
        input: the dynamo exporter cannot read sizes off complex tensors
        when H and W are dynamic."""
        n, c, h, wf = shape
        g, b = self.num_groups, self.group_channels
        stacked = torch.cat(
            [re.reshape(n, g, b, h * wf),
             im.reshape(n, g, b, h * wf)], dim=2)
        return self._stacked_mlp(stacked)

    def _stacked_mlp(self, stacked: torch.Tensor) -> torch.Tensor:
        """The mask from the stacked (N, G, 2 * b, H * Wf) spectrum (see
        :meth:`_complex_mlp`), in the same layout."""
        w1, b1, w2, b2 = self._block_weights(stacked.dtype)
        hidden = self.act(torch.matmul(w1, stacked) + b1)
        return self._shrink(torch.matmul(w2, hidden) + b2)

    def _shrink(self, out: torch.Tensor) -> torch.Tensor:
        """The soft-shrink of the mask's real and imaginary parts."""
        if torch.onnx.is_in_onnx_export():
            # The same values (x - clamp(x) is exactly 0 inside the band),
            # as Clip + Sub instead of the Abs, Greater, Sign, Mul, Sub, Mul
            # and Where that softshrink exports to; eager keeps the single
            # fused kernel, which is faster there.
            t = self.sparsity_threshold
            return out - out.clamp(-t, t)
        return F.softshrink(out, self.sparsity_threshold)

    def _spectrum_and_mask(
            self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the ortho-normalised half spectrum of ``x`` and the mask,
        both complex of shape (N, C, H, W // 2 + 1)."""
        n, c, h, w = x.shape
        shape = (n, c, h, w // 2 + 1)
        spec = torch.fft.rfft2(x, norm='ortho')
        mask = self._complex_mlp(spec.real, spec.imag, shape)
        b = self.group_channels
        return spec, torch.complex(mask[:, :, :b], mask[:, :, b:]).view(
            shape)

    def _complex_mask(self, spec: torch.Tensor) -> torch.Tensor:
        """The mask for the complex (N, C, H, Wf) spectrum ``spec``, of the
        same shape, by complex matrix products.

        torch.fft returns the spectrum (N, C, H, Wf)-contiguous whatever the
        input's memory format, so each group's ``b`` channels are a free
        (b, H * Wf) view, and each layer is one complex ``baddbmm`` over
        (N, G) with its bias added in the same call. That is the official
        einsum's arithmetic (real and imaginary parts of the input and the
        weights cross-multiplied), with no copy into a real layout and
        back."""
        n = spec.shape[0]
        g = self.num_groups
        weights = self._block_weights(spec.real.dtype, form='complex')
        if n > 1:
            weights = tuple(
                t.expand(n, *t.shape).reshape(n * g, *t.shape[1:])
                for t in weights)
        w1, b1, w2, b2 = weights
        stacked = spec.reshape(n * g, self.group_channels, -1)
        hidden = torch.view_as_real(torch.baddbmm(b1, w1, stacked))
        hidden = torch.view_as_complex(self.act(hidden))
        mask = torch.view_as_real(torch.baddbmm(b2, w2, hidden))
        return torch.view_as_complex(self._shrink(mask)).view(spec.shape)

    def _filter_eager(self, x: torch.Tensor) -> torch.Tensor:
        """``irfft2(M(X) * X)`` in eager mode, as an (N, C, H, W)-contiguous
        tensor.

        Maps of at most :data:`DENSE_DFT_MAX_PIXELS` pixels take each 2-D
        DFT as one real matrix product (see :meth:`_dense_dft_matrices`);
        larger ones use torch.fft."""
        n, c, h, w = x.shape
        dense = h * w <= DENSE_DFT_MAX_PIXELS
        if dense:
            fwd, inv = self._dense_dft_matrices(h, w, x.dtype, x.device)
            spec = torch.view_as_complex(
                (x.reshape(n * c, h * w) @ fwd).view(n, c, h, w // 2 + 1, 2))
        else:
            spec = torch.fft.rfft2(x, norm='ortho')
        filtered = self._complex_mask(spec) * spec
        if dense:
            return (torch.view_as_real(filtered).reshape(n * c, -1)
                    @ inv).view(n, c, h, w)
        return torch.fft.irfft2(filtered, s=(h, w), norm='ortho')

    def _dense_dft_matrices(
            self, h: int, w: int, dtype: torch.dtype,
            device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Real matrices of the ortho-normalised 2-D real DFT of an ``h x
        w`` map and of its inverse, cached per size, dtype and device.

        The forward one is (H * W, 2 * H * Wf): a flattened map times it
        gives the half spectrum with real and imaginary parts interleaved,
        the memory of a complex (H, Wf) tensor. The inverse one is
        (2 * H * Wf, H * W) and reads that layout back: it takes the real
        part of the inverse 2-D DFT with the bins other than DC and Nyquist
        along W counted twice (each stands for a conjugate pair), which is
        what irfft2 computes."""
        key = ('dense', h, w, dtype, device)
        if key not in self._dft_cache:
            wf = w // 2 + 1
            i64 = dict(dtype=torch.int64, device=device)
            rows, cols = torch.arange(h, **i64), torch.arange(w, **i64)
            # angle / 2pi between pixel (p, q) and bin (k, l), with the
            # integer products reduced before going to floating point
            along_h = (rows[:, None] * rows[None, :] % h).double() / h
            along_w = (cols[:, None] * cols[None, :wf] % w).double() / w
            turns = along_h[:, None, :, None] + along_w[None, :, None, :]
            angle = (2 * math.pi * turns).reshape(h * w, h * wf)
            scale = 1 / math.sqrt(h * w)
            fwd = torch.stack([angle.cos(), -angle.sin()], dim=-1)
            count = _c2r_counts(w, device).repeat(h)[:, None]
            inv = torch.stack(
                [count * angle.T.cos(), -count * angle.T.sin()], dim=1)
            self._dft_cache[key] = (
                (scale * fwd).reshape(h * w, 2 * h * wf).to(dtype),
                (scale * inv).reshape(2 * h * wf, h * w).to(dtype))
        return self._dft_cache[key]

    def _dft_matrices(self, h: int, w: int, dtype: torch.dtype,
                      device: torch.device) -> tuple[torch.Tensor, ...]:
        """Real matrices of the ortho-normalised 2-D real DFT and its inverse
        for an ``h x w`` map, cached per size, dtype and device.

        Complex rows are kept as pairs of real rows (real, imaginary)
        interleaved along H, so that each step of the 2-D transform is one
        matrix product and the steps meet by free reshapes: ``(H, 2 * Wf)``
        rows ``[re | im]`` are the same memory as ``(2 * H, Wf)`` rows
        ``re_0, im_0, re_1, ...``. Returns the forward real DFT along W
        ``(W, 2 * Wf)``, the forward and inverse complex DFTs along H
        ``(2 * H, 2 * H)`` and the inverse real (c2r) DFT along W
        ``(2 * Wf, W)``."""
        key = (h, w, dtype, device)
        if key not in self._dft_cache:
            wf = w // 2 + 1
            f64 = dict(dtype=torch.float64, device=device)
            ang_w = 2 * math.pi * torch.outer(
                torch.arange(w, **f64), torch.arange(wf, **f64)) / w
            ang_h = 2 * math.pi * torch.outer(
                torch.arange(h, **f64), torch.arange(h, **f64)) / h
            cw, sw = ang_w.cos() / math.sqrt(w), ang_w.sin() / math.sqrt(w)
            ch, sh = ang_h.cos() / math.sqrt(h), ang_h.sin() / math.sqrt(h)
            weight = _c2r_counts(w, device)[:, None]

            def interleave(a, b, c, d):
                # rows 2k / 2k + 1 and columns 2j / 2j + 1 of [[a, b], [c, d]]
                return torch.stack([torch.stack([a, b], -1),
                                    torch.stack([c, d], -1)],
                                   1).reshape(2 * h, 2 * h)

            mats = (
                # x -> [re | im] along W: e^{-i theta} = cos - i sin
                torch.cat([cw, -sw], dim=1),
                # complex DFT along H: (re, im) -> (ch re + sh im,
                # ch im - sh re), and its inverse (sh -> -sh)
                interleave(ch, sh, -sh, ch),
                interleave(ch, -sh, sh, ch),
                # [re | im] -> real output along W
                torch.cat([weight * cw.T, -weight * sw.T], dim=0),
            )
            self._dft_cache[key] = tuple(m.to(dtype) for m in mats)
        return self._dft_cache[key]

    def _filter_matmul(self, x: torch.Tensor) -> torch.Tensor:
        """The filter with the DFTs as real matrix products (no complex
        tensors, no FFT op): exports to any ONNX runtime.

        Four matrix products in all (see :meth:`_dft_matrices`); the only
        copies are the two layout changes between the transform's
        (re, im)-per-row layout and the MLP's per-group one."""
        n, c, h, w = x.shape
        g, b = self.num_groups, self.group_channels
        wf = w // 2 + 1
        fwd_w, fwd_h, inv_h, inv_w = self._dft_matrices(
            h, w, x.dtype, x.device)
        spec = fwd_h @ (x @ fwd_w).reshape(n, c, 2 * h, wf)
        # (N, G, b, H, re/im, Wf) -> the MLP's (N, G, re/im, b, H * Wf)
        stacked = spec.reshape(n, g, b, h, 2, wf).permute(
            0, 1, 4, 2, 3, 5).reshape(n, g, 2 * b, h * wf)
        mask = self._stacked_mlp(stacked)
        re, im = stacked[:, :, :b], stacked[:, :, b:]
        mask_re, mask_im = mask[:, :, :b], mask[:, :, b:]
        y_re = (mask_re * re - mask_im * im).reshape(n, g, b, h, 1, wf)
        y_im = (mask_re * im + mask_im * re).reshape(n, g, b, h, 1, wf)
        y = torch.cat([y_re, y_im], dim=4).reshape(n, c, 2 * h, wf)
        return (inv_h @ y).reshape(n, c, h, 2 * wf) @ inv_w

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """The adaptive frequency mask for ``x``.

        Args:
            x (torch.Tensor): Input of shape (N, C, H, W).

        Returns:
            torch.Tensor: Complex mask of shape (N, C, H, W // 2 + 1).
        """
        self._check_input(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.to(self._compute_dtype(x.dtype))
            return self._spectrum_and_mask(x)[1]

    def spatial_kernel(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel spatial kernel the filter convolves ``x`` with.

        ``forward(x) == x + circular_conv(x, spatial_kernel(x))`` per channel.

        Args:
            x (torch.Tensor): Input of shape (N, C, H, W).

        Returns:
            torch.Tensor: Real kernels of shape (N, C, H, W).
        """
        h, w = x.shape[-2:]
        return torch.fft.irfft2(self.mask(x), s=(h, w), norm='backward')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            xc = x.to(self._compute_dtype(x.dtype))
            if self.dft_mode == 'fft' and not is_traced():
                out = self._filter_eager(xc)
            elif self.dft_mode == 'matmul':
                out = self._filter_matmul(xc.contiguous())
            else:
                # Exporters and the compiler get the NCHW spectrum, which
                # they handle without complex views.
                xc = xc.contiguous()
                spec, mask = self._spectrum_and_mask(xc)
                # s= the input size restores odd widths (rfft2 drops them).
                out = torch.fft.irfft2(mask * spec, s=xc.shape[-2:],
                                       norm='ortho')
        # x first: the sum keeps the memory format of the input.
        return x + out.to(x.dtype)

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, num_groups={self.num_groups}, '
                f'sparsity_threshold={self.sparsity_threshold}, '
                f'dft_mode={self.dft_mode}')
