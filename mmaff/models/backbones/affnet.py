"""AFFNet backbone."""
from collections.abc import Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmaff.registry import MODELS

from ..layers import AFFBlock, InvertedResidual
from ..layers.dft import check_dft_mode
from ..layers.frequency_filter import check_nchw

DEFAULT_INIT_CFG = [
    dict(type='Kaiming', layer=['Conv2d']),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
]


@MODELS.register_module()
class AFFNet(BaseModule):
    """AFFNet backbone.

    `Adaptive Frequency Filters As Efficient Global Token Mixers
    <https://arxiv.org/abs/2307.14008>`_ (ICCV 2023): the MobileViT-v1
    macro-architecture with every MobileViT block replaced by an
    :class:`AFFBlock`, whose token mixer is a global, input-adaptive filter
    applied in the frequency domain. Modified from the official code
    (microsoft/TokenMixers, MIT license).

    Inputs follow the official weights' convention: RGB in ``[0, 1]`` without
    mean/std normalisation, i.e. a data preprocessor with
    ``mean=[0, 0, 0], std=[255, 255, 255], to_rgb=True``.

    Any input size works (every layer is size-agnostic); a stage whose input
    is smaller than its stride gives a 1x1 map. NaN or Inf anywhere in an
    image spreads to the whole feature map from the first AFF stage on,
    because the filter mixes all positions.

    Output indices 0-4 are the five stages (strides 2, 4, 8, 16, 32 at
    ``output_stride=32``); index 5 is the final 1x1 expansion convolution,
    built only when it is requested.

    Args:
        arch (str | dict): ``'et'``, ``'t'``, ``'base'`` (aliases
            ``'affnet-et'``, ``'affnet-t'``, ``'affnet'``) or a dict with the
            keys of :attr:`arch_settings` values. Defaults to ``'base'``.
        in_channels (int): Channels of the input image. Defaults to 3.
        out_indices (int | Sequence[int]): Outputs to return, see above.
            Defaults to -1 (the expansion convolution).
        frozen_stages (int): Freeze the stem and the first ``frozen_stages``
            stages (-1: nothing). Defaults to -1.
        output_stride (int): 32, 16 or 8. Below 32 the stride-2 convolution
            of the last stage(s) becomes stride 1 and later depthwise
            convolutions are dilated (for DeepLabv3). Defaults to 32.
        num_filter_groups (int): Diagonal blocks of the filters' complex MLP.
            Defaults to 8.
        drop_path_rate (float): Stochastic depth rate, growing linearly over
            the AFF blocks. Defaults to 0.
        dft_mode (str): How the filters compute their DFTs: ``'fft'``
            (torch.fft) or ``'matmul'`` (real matrix products, for export to
            runtimes without an FFT op). Outputs are the same either way;
            switch a built model with :func:`mmaff.models.set_dft_mode`.
            Defaults to ``'fft'``.
        conv_cfg (dict, optional): Convolution config. Defaults to None.
        norm_cfg (dict): Norm of the convolutions. Defaults to BN.
        token_norm_cfg (dict): Norm inside the AFF blocks. Defaults to
            ``GN`` with one group (LayerNorm over C, H, W).
        act_cfg (dict): Activation config. Defaults to SiLU.
        norm_eval (bool): Keep BN layers in eval mode while training.
            Defaults to False.
        with_cp (bool): Use gradient checkpointing. Defaults to False.
        channels_last (bool): Convert the input to the channels-last memory
            format, which every layer keeps (oneDNN's convolutions are faster
            on it, in training too); values, shapes and checkpoints are those
            of the contiguous run. Defaults to True.
        init_cfg (dict | list[dict], optional): Initialization config.
            ``dict(type='Pretrained', checkpoint=FILE_OR_URL,
            prefix='backbone.')`` loads ImageNet weights: an official file
            as published, a converted one or a runner checkpoint, checked
            against the arch (:func:`mmaff.checkpoint.
            load_pretrained_backbone`); ``checkpoint=None`` there keeps the
            default initialisation.
    """

    # Stage columns:
    #   ['mobilenetv2', out_channels, stride, num_blocks, expand_ratio]
    #   ['aff', out_channels, stride, ffn_channels, num_aff_blocks,
    #    expand_ratio of the stride-2 inverted residual]
    # The expansion convolution has min(4 * last channels, 960) channels.
    arch_settings = {
        'et': {
            'stem_channels': 16,
            'stages': [
                ['mobilenetv2', 32, 1, 1, 2],
                ['mobilenetv2', 48, 2, 3, 2],
                ['aff', 64, 2, 128, 2, 2],
                ['aff', 104, 2, 208, 4, 2],
                ['aff', 144, 2, 288, 3, 2],
            ],
        },
        't': {
            'stem_channels': 16,
            'stages': [
                ['mobilenetv2', 32, 1, 1, 4],
                ['mobilenetv2', 48, 2, 3, 4],
                ['aff', 96, 2, 192, 2, 4],
                ['aff', 160, 2, 320, 4, 4],
                ['aff', 192, 2, 384, 3, 4],
            ],
        },
        'base': {
            'stem_channels': 16,
            'stages': [
                ['mobilenetv2', 32, 1, 1, 4],
                ['mobilenetv2', 64, 2, 3, 4],
                ['aff', 128, 2, 256, 2, 4],
                ['aff', 256, 2, 512, 4, 4],
                ['aff', 320, 2, 640, 3, 4],
            ],
        },
    }
    arch_aliases = {'affnet-et': 'et', 'affnet-t': 't', 'affnet': 'base'}
    max_expand_channels = 960

    def __init__(self,
                 arch: str | dict = 'base',
                 in_channels: int = 3,
                 out_indices: int | Sequence[int] = -1,
                 frozen_stages: int = -1,
                 output_stride: int = 32,
                 num_filter_groups: int = 8,
                 drop_path_rate: float = 0.,
                 dft_mode: str = 'fft',
                 conv_cfg: dict | None = None,
                 norm_cfg: dict = dict(type='BN'),
                 token_norm_cfg: dict = dict(type='GN', num_groups=1),
                 act_cfg: dict = dict(type='SiLU'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 channels_last: bool = True,
                 init_cfg: dict | list[dict] | None = DEFAULT_INIT_CFG
                 ) -> None:
        super().__init__(init_cfg=init_cfg)
        arch = self._parse_arch(arch)
        self.num_stages = len(arch['stages'])
        # The stages plus the expansion convolution.
        num_outputs = self.num_stages + 1
        self.out_indices = self._parse_out_indices(out_indices, num_outputs)
        if not -1 <= frozen_stages <= num_outputs:
            raise ValueError(f'frozen_stages must be in [-1, {num_outputs}], '
                             f'got {frozen_stages}')
        if output_stride not in (8, 16, 32):
            raise ValueError(
                f'output_stride must be 8, 16 or 32, got {output_stride}')
        check_dft_mode(dft_mode)
        self.in_channels = in_channels
        self.frozen_stages = frozen_stages
        self.output_stride = output_stride
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.channels_last = channels_last
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self.stem = ConvModule(
            in_channels,
            arch['stem_channels'],
            3,
            stride=2,
            padding=1,
            inplace=False,
            **common)
        self.layers = nn.ModuleList()
        self.out_channels = []
        self._make_layers(
            arch,
            drop_path_rate,
            common,
            aff_cfg=dict(
                num_filter_groups=num_filter_groups,
                token_norm_cfg=token_norm_cfg,
                dft_mode=dft_mode))

        channels = self.out_channels[-1]
        expand_channels = min(4 * channels, self.max_expand_channels)
        self.out_channels.append(expand_channels)
        self.conv_1x1_exp = None
        if self.num_stages in self.out_indices:
            self.conv_1x1_exp = ConvModule(
                channels, expand_channels, 1, inplace=False, **common)
        self._freeze_stages()

    @classmethod
    def _parse_arch(cls, arch: str | dict) -> dict:
        if isinstance(arch, str):
            key = cls.arch_aliases.get(arch.lower(), arch.lower())
            if key not in cls.arch_settings:
                valid = sorted(cls.arch_settings) + sorted(cls.arch_aliases)
                raise ValueError(
                    f'Unknown AFFNet arch {arch!r}; choose from {valid} or '
                    'pass a dict with keys stem_channels and stages')
            return cls.arch_settings[key]
        if not isinstance(arch, dict):
            raise TypeError(
                f'arch must be a str or a dict, got {type(arch).__name__}')
        essential_keys = {'stem_channels', 'stages'}
        if set(arch) != essential_keys:
            raise ValueError(f'A custom AFFNet arch needs exactly the keys '
                             f'{sorted(essential_keys)}, got {sorted(arch)}')
        lengths = {'mobilenetv2': 5, 'aff': 6}
        for stage in arch['stages']:
            if not stage or stage[0] not in lengths:
                raise ValueError(f'Unknown stage type in {stage!r}; use '
                                 f'{sorted(lengths)}')
            if len(stage) != lengths[stage[0]]:
                raise ValueError(
                    f'Stage {stage!r} needs {lengths[stage[0]]} entries, see '
                    'AFFNet.arch_settings')
        if not arch['stages']:
            raise ValueError('A custom AFFNet arch needs at least one stage')
        return arch

    @staticmethod
    def _parse_out_indices(out_indices: int | Sequence[int],
                           num_outputs: int) -> list[int]:
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        if not isinstance(out_indices, Sequence) or not out_indices:
            raise ValueError('out_indices must be an int or a non-empty '
                             f'sequence of ints, got {out_indices!r}')
        parsed = []
        for index in out_indices:
            if not isinstance(index, int) or not (-num_outputs <= index <
                                                  num_outputs):
                raise ValueError(
                    f'Invalid out_indices entry {index!r}: valid indices are '
                    f'0-{num_outputs - 2} (stages) and {num_outputs - 1} (the '
                    'final expansion conv), or negatives from -1')
            parsed.append(index % num_outputs)
        if len(set(parsed)) != len(parsed):
            raise ValueError(f'Duplicate entries in out_indices {out_indices}')
        return sorted(parsed)

    def _make_layers(self, arch: dict, drop_path_rate: float, common: dict,
                     aff_cfg: dict) -> None:
        """Build the stages of ``arch`` into :attr:`layers` and their widths
        into :attr:`out_channels`, dispatching on the stage type."""
        stages = arch['stages']
        num_aff_blocks = sum(s[4] for s in stages if s[0] == 'aff')
        # One rate per AFF block, consumed stage by stage.
        drop_path_rates = torch.linspace(0, drop_path_rate,
                                         num_aff_blocks).tolist()
        channels = arch['stem_channels']
        current_stride, dilation = 2, 1
        for kind, out_channels, stride, *settings in stages:
            # Past the output stride, strides turn into dilation: the stage
            # keeps the dilation it had, later stages get twice as much.
            stage_dilation = dilation
            if stride > 1 and current_stride * stride > self.output_stride:
                dilation *= stride
                stride = 1
            current_stride *= stride
            if kind == 'mobilenetv2':
                layer = self._make_mobilenetv2_layer(
                    channels, out_channels, stride, *settings,
                    stage_dilation, self.with_cp, common)
            else:
                num_blocks = settings[1]
                layer = self._make_aff_layer(
                    channels, out_channels, stride, *settings,
                    stage_dilation, drop_path_rates[:num_blocks],
                    self.with_cp, common, **aff_cfg)
                drop_path_rates = drop_path_rates[num_blocks:]
            self.layers.append(layer)
            self.out_channels.append(out_channels)
            channels = out_channels

    @staticmethod
    def _make_mobilenetv2_layer(in_channels: int, out_channels: int,
                                stride: int, num_blocks: int,
                                expand_ratio: float, dilation: int,
                                with_cp: bool, common: dict) -> nn.Sequential:
        return nn.Sequential(*[
            InvertedResidual(in_channels if i == 0 else out_channels,
                             out_channels, stride if i == 0 else 1,
                             expand_ratio, dilation=dilation,
                             with_cp=with_cp, **common)
            for i in range(num_blocks)
        ])

    @staticmethod
    def _make_aff_layer(in_channels: int, out_channels: int, stride: int,
                        ffn_channels: int, num_blocks: int,
                        expand_ratio: float, dilation: int,
                        drop_path_rates: list[float], with_cp: bool,
                        common: dict, num_filter_groups: int,
                        token_norm_cfg: dict,
                        dft_mode: str) -> nn.Sequential:
        """A strided inverted residual, then one :class:`AFFBlock` of
        ``num_blocks`` frequency-mixing blocks."""
        if out_channels % num_filter_groups:
            raise ValueError(
                f'AFF stage width {out_channels} is not divisible '
                f'by num_filter_groups={num_filter_groups}')
        return nn.Sequential(
            InvertedResidual(
                in_channels,
                out_channels,
                stride,
                expand_ratio,
                dilation=dilation,
                with_cp=with_cp,
                **common),
            AFFBlock(
                out_channels,
                ffn_channels,
                num_blocks,
                drop_path_rates=drop_path_rates,
                token_norm_cfg=token_norm_cfg,
                num_filter_groups=num_filter_groups,
                dft_mode=dft_mode,
                with_cp=with_cp,
                **common))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        check_nchw(x, self.in_channels, 'AFFNet')
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.stem(x)
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs.append(x)
        if self.conv_1x1_exp is not None:
            outs.append(self.conv_1x1_exp(x))
        return tuple(outs)

    def _frozen_modules(self) -> list[nn.Module]:
        modules = [self.stem] + list(self.layers)
        if self.conv_1x1_exp is not None:
            modules.append(self.conv_1x1_exp)
        return modules[:self.frozen_stages + 1] if self.frozen_stages >= 0 \
            else []

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def init_weights(self) -> None:
        init_cfg = self.init_cfg
        cfgs = init_cfg if isinstance(init_cfg, list) else [init_cfg]
        pretrained = [c for c in cfgs if c and c.get('type') == 'Pretrained']
        if not pretrained:
            return super().init_weights()
        # Official files need converting and every file is checked against
        # the arch, which mmengine's PretrainedInit does not do.
        self.init_cfg = [c for c in cfgs if c not in pretrained] or \
            DEFAULT_INIT_CFG
        try:
            super().init_weights()
        finally:
            self.init_cfg = init_cfg
        if pretrained[-1].get('checkpoint') is not None:
            from mmaff.checkpoint.pretrained import load_pretrained_backbone
            load_pretrained_backbone(
                self, pretrained[-1]['checkpoint'],
                pretrained[-1].get('prefix'),
                pretrained[-1].get('map_location', 'cpu'))

    def train(self, mode: bool = True) -> 'AFFNet':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self
