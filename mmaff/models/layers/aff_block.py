"""AFF blocks: the frequency-mixing replacement of MobileViT's attention."""
import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule, build_norm_layer
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule

from .frequency_filter import AdaptiveFrequencyFilter
from .inverted_residual import InvertedResidual


class FrequencyMixingBlock(BaseModule):
    """One AFF "transformer" block: ``x + AFF(N2(IR(N1(x))))``.

    The official code applies the channel MLP (an inverted residual) before
    the frequency filter; both carry their own identity path, and checkpoint
    compatibility depends on keeping that order.

    Args:
        channels (int): Input and output channels.
        mlp_ratio (float): Hidden width of the inverted residual relative to
            ``channels``. Defaults to 2.
        num_filter_groups (int): Diagonal blocks of the filter's complex MLP.
            Defaults to 8.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0.
        conv_cfg (dict, optional): Convolution config. Defaults to None.
        norm_cfg (dict): Norm of the inverted residual. Defaults to BN.
        token_norm_cfg (dict): Norm before the MLP and before the filter.
            Defaults to ``GN`` with one group (LayerNorm over C, H, W).
        act_cfg (dict): Activation config. Defaults to SiLU.
        dft_mode (str): DFT mode of the filter (see
            :class:`AdaptiveFrequencyFilter`). Defaults to ``'fft'``.
        with_cp (bool): Use gradient checkpointing. Defaults to False.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 channels: int,
                 mlp_ratio: float = 2.0,
                 num_filter_groups: int = 8,
                 drop_path_rate: float = 0.,
                 conv_cfg: dict | None = None,
                 norm_cfg: dict = dict(type='BN'),
                 token_norm_cfg: dict = dict(type='GN', num_groups=1),
                 act_cfg: dict = dict(type='SiLU'),
                 dft_mode: str = 'fft',
                 with_cp: bool = False,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp
        self.norm1 = build_norm_layer(token_norm_cfg, channels)[1]
        self.mlp = InvertedResidual(
            channels,
            channels,
            stride=1,
            expand_ratio=mlp_ratio,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)
        self.norm2 = build_norm_layer(token_norm_cfg, channels)[1]
        self.filter = AdaptiveFrequencyFilter(
            channels,
            num_groups=num_filter_groups,
            act_cfg=act_cfg,
            dft_mode=dft_mode)
        self.drop_path = DropPath(
            drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm2(self.mlp(self.norm1(x)))
        return x + self.drop_path(self.filter(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        return self._inner_forward(x)


class AFFBlock(BaseModule):
    """AFF block: frequency-mixing blocks, a projection and a local fusion.

    ``fusion(cat([x, conv_proj(norm(blocks(x)))]))``, the AFFNet counterpart
    of the MobileViT block (no unfolding into patches: the filter is global).

    Args:
        channels (int): Input and output channels.
        ffn_channels (int): Hidden width of each block's inverted residual.
        num_blocks (int): Number of :class:`FrequencyMixingBlock`.
        drop_path_rates (list[float], optional): Stochastic depth rate of
            each block. Defaults to None (no drop path).
        with_fusion (bool): Fuse the block input with the projected features
            by a 1x1 convolution. Defaults to True.
        conv_cfg (dict, optional): Convolution config. Defaults to None.
        norm_cfg (dict): Norm of the convolutions. Defaults to BN.
        token_norm_cfg (dict): Norm inside the blocks and after them.
            Defaults to ``GN`` with one group.
        act_cfg (dict): Activation config. Defaults to SiLU.
        init_cfg (dict, optional): Initialization config. Defaults to None.
        **block_kwargs: ``num_filter_groups``, ``dft_mode`` and ``with_cp``
            of each :class:`FrequencyMixingBlock`.
    """

    def __init__(self,
                 channels: int,
                 ffn_channels: int,
                 num_blocks: int,
                 drop_path_rates: list[float] | None = None,
                 with_fusion: bool = True,
                 conv_cfg: dict | None = None,
                 norm_cfg: dict = dict(type='BN'),
                 token_norm_cfg: dict = dict(type='GN', num_groups=1),
                 act_cfg: dict = dict(type='SiLU'),
                 init_cfg: dict | None = None,
                 **block_kwargs) -> None:
        super().__init__(init_cfg=init_cfg)
        drop_path_rates = drop_path_rates or [0.] * num_blocks
        if len(drop_path_rates) != num_blocks:
            raise ValueError(
                f'AFFBlock: {len(drop_path_rates)} drop path rates given for '
                f'{num_blocks} blocks')
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        self.blocks = nn.Sequential(*[
            FrequencyMixingBlock(
                channels, mlp_ratio=ffn_channels / channels,
                drop_path_rate=rate, token_norm_cfg=token_norm_cfg,
                act_cfg=act_cfg, **common, **block_kwargs)
            for rate in drop_path_rates
        ])
        self.norm = build_norm_layer(token_norm_cfg, channels)[1]
        self.conv_proj = ConvModule(channels, channels, 1, act_cfg=None,
                                    **common)
        self.fusion = None
        if with_fusion:
            self.fusion = ConvModule(2 * channels, channels, 1,
                                     act_cfg=act_cfg, inplace=False, **common)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_proj(self.norm(self.blocks(x)))
        if self.fusion is None:
            return out
        # Input first, projected features second: the order of the weights.
        return self.fusion(torch.cat([x, out], dim=1))
