"""The adaptive frequency filter (AFF) token mixer."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer
from mmengine.model import BaseModule

from mmaff.registry import MODELS

from .dft import TorchFFT, check_dft_mode, pick_dft


def set_dft_mode(model: nn.Module, dft_mode: str) -> int:
    """Set how every AFF filter in ``model`` computes its DFTs.

    Works on anything that holds filters (a filter, block, backbone,
    classifier, detector or segmentor), trained or not: weights are
    untouched. Configs select the mode at build time instead, with
    ``model.backbone.dft_mode``.

    Args:
        model (nn.Module): The module to switch.
        dft_mode (str): One of :data:`~mmaff.models.layers.dft.DFT_MODES`.

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


def check_nchw(x: torch.Tensor, channels: int, owner: str) -> None:
    """Raise a ValueError naming ``owner`` unless ``x`` is a non-empty
    (N, ``channels``, H, W) tensor."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x)
        raise ValueError(f'{owner} expects a 4-D (N, C, H, W) tensor, got '
                         f'{shape}')
    if x.shape[1] != channels:
        raise ValueError(f'{owner} expects {channels} channels, got '
                         f'{x.shape[1]} (input shape {tuple(x.shape)})')
    if 0 in x.shape:
        raise ValueError(f'{owner} got an empty input {tuple(x.shape)}')


def complex_weight(weight: torch.Tensor) -> torch.Tensor:
    """An official ``(2, G, in, out)`` complex weight (index 0 the real
    part) as the real ``(G, 2 * out, 2 * in)`` matrix acting on the
    spectrum layout's interleaved ``(channel, re/im)`` rows: each complex
    entry ``a + ib`` becomes the block ``[[a, -b], [b, a]]``."""
    re, im = weight[0].transpose(1, 2), weight[1].transpose(1, 2)
    blocks = torch.stack([torch.stack([re, -im], -1),
                          torch.stack([im, re], -1)], 2)
    g, out, _, inp, _ = blocks.shape
    return blocks.reshape(g, 2 * out, 2 * inp)


def complex_bias(bias: torch.Tensor) -> torch.Tensor:
    """An official ``(2, G, out)`` complex bias as ``(G, 2 * out, 1)``."""
    return torch.stack([bias[0], bias[1]], -1).flatten(1).unsqueeze(-1)


_DEPLOY_NAMES = ('w1', 'b1', 'w2', 'b2')


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

    The DFTs come from :mod:`~mmaff.models.layers.dft` (one spectrum layout,
    the form picked per mode and map size); the complex MLP is two real
    batched matrix products per group on that layout. The parameters keep
    the layout of the official implementation (``w1``, ``b1``, ``w2``,
    ``b2``, index 0 = real part, 1 = imaginary part, weights indexed
    ``[group, in, out]``), so official weights load without reshaping.

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
            :data:`~mmaff.models.layers.dft.DFT_MODES`; change it later with
            :func:`set_dft_mode`. Defaults to ``'fft'``.
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

    @property
    def dft_mode(self) -> str:
        """One of :data:`~mmaff.models.layers.dft.DFT_MODES`."""
        return self._dft_mode

    @dft_mode.setter
    def dft_mode(self, dft_mode: str) -> None:
        self._dft_mode = check_dft_mode(dft_mode)

    @staticmethod
    def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
        # FFTs of half types are limited (power-of-2 sizes on CUDA, none on
        # CPU), so everything below float64 is filtered in float32.
        return torch.float64 if dtype == torch.float64 else torch.float32

    def mlp_weights(self, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """Both complex layers as real matrices and biases on the spectrum
        layout (see :func:`complex_weight`)."""
        if hasattr(self, 'deploy_w1'):
            return tuple(
                getattr(self, f'deploy_{n}').to(dtype) for n in _DEPLOY_NAMES)
        return (complex_weight(self.w1.to(dtype)),
                complex_bias(self.b1.to(dtype)),
                complex_weight(self.w2.to(dtype)),
                complex_bias(self.b2.to(dtype)))

    def switch_to_deploy(self) -> None:
        """Build the MLP's real matrices once, for inference (buffers
        outside the state dict): later changes of the parameters are not
        seen until it is called again."""
        for name in _DEPLOY_NAMES:
            self._buffers.pop(f'deploy_{name}', None)
        with torch.no_grad():
            weights = self.mlp_weights(self.w1.dtype)
        for name, tensor in zip(_DEPLOY_NAMES, weights):
            self.register_buffer(f'deploy_{name}', tensor, persistent=False)

    def _mask(self, spec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The mask for ``x``'s spectrum ``spec`` (of the DFT layout), in
        that layout."""
        # sizes from the real input: the dynamo exporter cannot read
        # dynamic ones off an FFT's output
        n, c, h, w = x.shape
        wf = w // 2 + 1
        # one batched product per layer over (N, G), its bias included
        w1, b1, w2, b2 = (t.expand(n, *t.shape).flatten(0, 1)
                          for t in self.mlp_weights(spec.dtype))
        out = spec.reshape(n * self.num_groups, -1, h * wf)
        out = self.act(torch.baddbmm(b1, w1, out))
        out = torch.baddbmm(b2, w2, out)
        if torch.onnx.is_in_onnx_export():
            # the same values as one Clip and one Sub, instead of the seven
            # ops softshrink exports to
            t = self.sparsity_threshold
            out = out - out.clamp(-t, t)
        else:
            out = F.softshrink(out, self.sparsity_threshold)
        return out.view(n, c, 2, h, wf)

    def _filter(self, x: torch.Tensor) -> torch.Tensor:
        """``irfft2(M(X) * X)`` with ``X = rfft2(x)``."""
        size = x.shape[-2:]
        dft = pick_dft(self.dft_mode, *size)
        spec = dft.forward(x)
        mask = self._mask(spec, x)
        (m_re, m_im), (s_re, s_im) = mask.unbind(2), spec.unbind(2)
        filtered = torch.stack([
            torch.addcmul(m_re * s_re, m_im, s_im, value=-1),
            torch.addcmul(m_re * s_im, m_im, s_re)
        ], dim=2)
        return dft.inverse(filtered, size)

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """The adaptive frequency mask for ``x``.

        Args:
            x (torch.Tensor): Input of shape (N, C, H, W).

        Returns:
            torch.Tensor: Complex mask of shape (N, C, H, W // 2 + 1).
        """
        check_nchw(x, self.channels, 'AdaptiveFrequencyFilter')
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.to(self._compute_dtype(x.dtype))
            mask = self._mask(TorchFFT.forward(x), x)
        return torch.complex(mask[:, :, 0], mask[:, :, 1])

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
        check_nchw(x, self.channels, 'AdaptiveFrequencyFilter')
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = self._filter(x.to(self._compute_dtype(x.dtype)))
        # x first: the sum keeps the memory format of the input
        return x + out.to(x.dtype)

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, num_groups={self.num_groups}, '
                f'sparsity_threshold={self.sparsity_threshold}, '
                f'dft_mode={self.dft_mode}')

