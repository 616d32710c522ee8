"""MobileNetV2 inverted residual block as used by AFFNet."""
import torch
import torch.utils.checkpoint as cp
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule


def make_divisible(value: float, divisor: int = 8,
                   min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` without going
    below ``min_value`` or more than 10 % below ``value`` (MobileNetV2 rule,
    also used by the official AFFNet)."""
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


class InvertedResidual(BaseModule):
    """Inverted residual: 1x1 expansion, 3x3 depthwise, 1x1 linear projection.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        stride (int): Stride of the depthwise convolution.
        expand_ratio (float): Hidden width relative to ``in_channels``; the
            expansion convolution is left out when it is 1.
        dilation (int): Dilation of the depthwise convolution. Defaults to 1.
        conv_cfg (dict, optional): Convolution config. Defaults to None.
        norm_cfg (dict): Normalization config. Defaults to BN.
        act_cfg (dict): Activation config. Defaults to SiLU.
        with_cp (bool): Use gradient checkpointing. Defaults to False.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int,
                 expand_ratio: float,
                 dilation: int = 1,
                 conv_cfg: dict | None = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='SiLU'),
                 with_cp: bool = False,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if stride not in (1, 2):
            raise ValueError(f'stride must be 1 or 2, got {stride}')
        self.with_cp = with_cp
        self.use_res_connect = stride == 1 and in_channels == out_channels
        hidden_channels = make_divisible(round(in_channels * expand_ratio))
        # SiLU out of place: under autograd an in-place one clones its
        # input first, one more pass over every activation map per step
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, inplace=False)
        self.expand_conv = None
        if expand_ratio != 1:
            self.expand_conv = ConvModule(
                in_channels, hidden_channels, 1, act_cfg=act_cfg, **common)
        else:
            hidden_channels = in_channels
        self.depthwise_conv = ConvModule(
            hidden_channels,
            hidden_channels,
            3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            groups=hidden_channels,
            act_cfg=act_cfg,
            **common)
        self.linear_conv = ConvModule(
            hidden_channels, out_channels, 1, act_cfg=None, **common)

    def _inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x if self.expand_conv is None else self.expand_conv(x)
        out = self.linear_conv(self.depthwise_conv(out))
        return x + out if self.use_res_connect else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._inner_forward, x, use_reentrant=False)
        return self._inner_forward(x)


__all__ = ["InvertedResidual", "make_divisible"]
