"""The adaptive frequency filter (AFF) token mixer."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule

from mmaff.registry import MODELS


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

    The complex MLP runs as real grouped 1x1 convolutions on the stacked real
    and imaginary channels of each group. The parameters keep the layout of
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
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    dft_modes = ('fft', 'matmul')

    def __init__(self,
                 channels: int,
                 num_groups: int = 8,
                 hidden_ratio: float = 1.0,
                 sparsity_threshold: float = 0.01,
                 act_cfg: dict = dict(type='SiLU'),
                 init_std: float = 0.02,
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
        self.dft_mode = 'fft'
        self._dft_cache: dict = {}

    @staticmethod
    def _real_conv_params(weight: torch.Tensor, bias: torch.Tensor,
                          dtype: torch.dtype
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """Turn complex ``[group, in, out]`` weights into grouped 1x1 conv
        weights acting on ``[real; imag]`` channel stacks of each group."""
        w_re = weight[0].transpose(1, 2).to(dtype)  # (G, out, in)
        w_im = weight[1].transpose(1, 2).to(dtype)
        # (a + ib)(c + id) = (ac - bd) + i(ad + bc)
        real_rows = torch.cat([w_re, -w_im], dim=2)
        imag_rows = torch.cat([w_im, w_re], dim=2)
        conv_weight = torch.cat([real_rows, imag_rows], dim=1)
        groups, out2, in2 = conv_weight.shape
        conv_weight = conv_weight.reshape(groups * out2, in2, 1, 1)
        conv_bias = torch.stack([bias[0], bias[1]], dim=1).reshape(-1)
        return conv_weight, conv_bias.to(dtype)

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

    def _complex_mlp(self, re: torch.Tensor,
                     im: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Real and imaginary parts of the mask from those of the spectrum,
        all of shape (N, C, H, Wf)."""
        n, c, h, wf = re.shape
        g, b = self.num_groups, self.group_channels
        # Real and imaginary parts of each group stacked as channels of the
        # grouped convolutions: (N, G, 2, b, H, Wf).
        stacked = torch.stack(
            [re.reshape(n, g, b, h, wf),
             im.reshape(n, g, b, h, wf)], dim=2).reshape(n, 2 * c, h, wf)
        w1, b1 = self._real_conv_params(self.w1, self.b1, re.dtype)
        w2, b2 = self._real_conv_params(self.w2, self.b2, re.dtype)
        hidden = self.act(F.conv2d(stacked, w1, b1, groups=g))
        mask = F.conv2d(hidden, w2, b2, groups=g)
        mask = F.softshrink(mask, self.sparsity_threshold)
        mask = mask.view(n, g, 2, b, h, wf)
        return (mask[:, :, 0].reshape(n, c, h, wf),
                mask[:, :, 1].reshape(n, c, h, wf))

    def _spectrum_and_mask(
            self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the ortho-normalised half spectrum of ``x`` and the mask,
        both complex of shape (N, C, H, W // 2 + 1)."""
        spec = torch.fft.rfft2(x, norm='ortho')
        mask_re, mask_im = self._complex_mlp(spec.real, spec.imag)
        return spec, torch.complex(mask_re, mask_im)

    def _dft_matrices(self, h: int, w: int, dtype: torch.dtype,
                      device: torch.device) -> tuple[torch.Tensor, ...]:
        """Real matrices of the ortho-normalised 2-D real DFT and its inverse
        for an ``h x w`` map, cached per size, dtype and device."""
        key = (h, w, dtype, device)
        if key not in self._dft_cache:
            wf = w // 2 + 1
            f64 = dict(dtype=torch.float64, device=device)
            ang_w = 2 * math.pi * torch.outer(
                torch.arange(w, **f64), torch.arange(wf, **f64)) / w
            ang_h = 2 * math.pi * torch.outer(
                torch.arange(h, **f64), torch.arange(h, **f64)) / h
            # c2r: the bins other than DC and Nyquist stand for a conjugate
            # pair; the imaginary parts of DC and Nyquist are ignored.
            weight = torch.full((wf, 1), 2., **f64)
            weight[0] = 1.
            if w % 2 == 0:
                weight[-1] = 1.
            mats = (
                ang_w.cos() / math.sqrt(w),  # x -> real part along W
                ang_w.sin() / math.sqrt(w),  # x -> -imaginary part
                ang_h.cos() / math.sqrt(h),  # complex DFT along H
                ang_h.sin() / math.sqrt(h),
                weight * ang_w.T.cos() / math.sqrt(w),  # inverse along W
                weight * ang_w.T.sin() / math.sqrt(w),
            )
            self._dft_cache[key] = tuple(m.to(dtype) for m in mats)
        return self._dft_cache[key]

    def _filter_matmul(self, x: torch.Tensor) -> torch.Tensor:
        """The filter with the DFTs as real matrix products (no complex
        tensors, no FFT op): exports to any ONNX runtime."""
        h, w = x.shape[-2:]
        cw, sw, ch, sh, icw, isw = self._dft_matrices(h, w, x.dtype,
                                                      x.device)
        # rfft along W, then the complex DFT along H
        rw, iw = x @ cw, -(x @ sw)
        re, im = ch @ rw + sh @ iw, ch @ iw - sh @ rw
        mask_re, mask_im = self._complex_mlp(re, im)
        y_re = mask_re * re - mask_im * im
        y_im = mask_re * im + mask_im * re
        # inverse complex DFT along H, then the c2r transform along W
        z_re, z_im = ch @ y_re - sh @ y_im, ch @ y_im + sh @ y_re
        return z_re @ icw - z_im @ isw

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
        h, w = x.shape[-2:]
        with torch.autocast(device_type=x.device.type, enabled=False):
            xc = x.to(self._compute_dtype(x.dtype))
            if self.dft_mode == 'matmul':
                out = self._filter_matmul(xc)
            else:
                spec, mask = self._spectrum_and_mask(xc)
                # s=(h, w) restores odd widths that rfft2 cannot encode.
                out = torch.fft.irfft2(mask * spec, s=(h, w), norm='ortho')
        return out.to(x.dtype) + x

    def set_dft_mode(self, mode: str) -> None:
        """Compute the DFTs with ``'fft'`` (torch.fft, the default) or
        ``'matmul'`` (real matrix products, for runtimes without an FFT op
        such as ONNX without ``DFT``; exact, but O(N^1.5) per map instead
        of O(N log N))."""
        if mode not in self.dft_modes:
            raise ValueError(
                f'Unknown DFT mode {mode!r}; choose from {self.dft_modes}')
        self.dft_mode = mode

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, num_groups={self.num_groups}, '
                f'sparsity_threshold={self.sparsity_threshold}, '
                f'dft_mode={self.dft_mode}')
