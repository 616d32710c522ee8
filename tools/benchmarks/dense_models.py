"""The dense models the deployment benchmark compares, as mm configs.

- SSDLite at 320x320 (COCO, 80 classes): AFFNet-ET / -T / AFFNet from
  ``configs/detection``, MobileViT-XXS / -XS / -S in the same neck and head
  (the stride-16 and stride-32 stages, before the final expansion conv, as
  AFFNet's SSDLite and ml-cvnets' MobileViT SSD tap them), and mmdet's
  SSDLite-MobileNetV2.
- DeepLabv3 at 512x512 (ADE20K, 150 classes): AFFNet-ET / -T / AFFNet at
  output stride 8 from ``configs/segmentation``, mmseg's
  DeepLabv3-MobileNetV2-d8, and DeepLabv3-MobileViT-XXS / -XS / -S at output
  stride 8 in AFFNet's head layout (mmpretrain's MobileViT has no dilation:
  :class:`BenchMobileViT` adds it the way ml-cvnets' DeepLabv3-MobileViT
  does).

:class:`BenchMobileViT` lives here, with the benchmarks, not in the library:
it exists for these comparisons only.
"""
import copy
import os.path as osp

import torch.nn as nn
from mmengine.config import Config
from mmengine.hub import get_config
from mmpretrain.models import MobileViT
from mmpretrain.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@MODELS.register_module(force=True)
class BenchMobileViT(MobileViT):
    """mmpretrain's MobileViT with an output stride and an optional final
    expansion conv.

    At ``output_stride`` 16 the last stage, at 8 the last two, keep their
    resolution: the stride-2 depthwise conv of the stage's first inverted
    residual gets stride 1 and the dilation so far, and the 3x3 convs of its
    MobileViT block the doubled dilation (ml-cvnets' DeepLabv3-MobileViT;
    the 2x2 patches of the transformer are not dilated there either).
    Parameters are those of the plain model.

    Args:
        output_stride (int): 8, 16 or 32. Defaults to 32.
        with_expansion (bool): Pass the last stage through the final 1x1
            expansion conv, as mmpretrain's MobileViT always does. Defaults
            to True.
        **kwargs: :class:`mmpretrain.models.MobileViT`'s arguments.
    """

    def __init__(self,
                 *args,
                 output_stride: int = 32,
                 with_expansion: bool = True,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if output_stride not in (8, 16, 32):
            raise ValueError(
                f'output_stride must be 8, 16 or 32, got {output_stride}')
        self.output_stride = output_stride
        self.with_expansion = with_expansion
        dilated = {8: (3, 4), 16: (4, ), 32: ()}[output_stride]
        dilation = 1
        for index in dilated:
            stage = self.layers[index]
            depthwise = stage[0].conv[1].conv
            assert depthwise.stride == (2, 2), depthwise
            _dilate(depthwise, dilation, stride=1)
            dilation *= 2
            for block in stage[1:]:
                for module in block.modules():
                    if isinstance(module, nn.Conv2d) and \
                            module.kernel_size[0] > 1:
                        _dilate(module, dilation)

    def forward(self, x):
        x = self.stem(x)
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i == len(self.layers) - 1 and self.with_expansion:
                x = self.conv_1x1_exp(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


def _dilate(conv: nn.Conv2d, dilation: int, stride: int | None = None):
    """Give ``conv`` (odd kernel) ``dilation`` with 'same' padding."""
    conv.dilation = (dilation, dilation)
    conv.padding = (dilation * (conv.kernel_size[0] // 2), ) * 2
    if stride is not None:
        conv.stride = (stride, stride)


# MobileViT variants: mmpretrain arch, channels of the stride-16 and
# stride-32 stages (before the expansion conv)
MOBILEVITS = {
    'MobileViT-XXS': ('xx_small', (64, 80)),
    'MobileViT-XS': ('x_small', (80, 96)),
    'MobileViT-S': ('small', (128, 160)),
}
SSD_AFFNET = {
    'AFFNet-ET': 'configs/detection/ssdlite_affnet-et_8xb24-600e_coco.py',
    'AFFNet-T': 'configs/detection/ssdlite_affnet-t_8xb24-600e_coco.py',
    'AFFNet': 'configs/detection/ssdlite_affnet_8xb24-600e_coco.py',
}
SEG_AFFNET = {
    'AFFNet-ET': 'configs/segmentation/'
    'deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512.py',
    'AFFNet-T': 'configs/segmentation/'
    'deeplabv3_affnet-t-d8_4xb4-80k_ade20k-512x512.py',
    'AFFNet': 'configs/segmentation/'
    'deeplabv3_affnet-d8_4xb4-80k_ade20k-512x512.py',
}
SSD_MOBILENETV2 = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'
SEG_MOBILENETV2 = ('mmseg::mobilenet_v2/'
                   'mobilenet-v2-d8_deeplabv3_4xb4-160k_ade20k-512x512.py')


def _ours(path: str) -> Config:
    cfg = Config.fromfile(osp.join(ROOT, path))
    # random weights: the timing does not depend on them
    cfg.model.backbone.init_cfg = None
    return cfg


def _mobilevit(name: str, output_stride: int, out_indices: tuple) -> dict:
    arch, _ = MOBILEVITS[name]
    return dict(
        type='mmpretrain.BenchMobileViT',
        arch=arch,
        out_indices=out_indices,
        output_stride=output_stride,
        with_expansion=False)


def ssdlite_config(name: str) -> Config:
    """The SSDLite config of backbone ``name`` (a key of SSD_AFFNET or
    MOBILEVITS, or ``'MobileNetV2'``)."""
    if name in SSD_AFFNET:
        return _ours(SSD_AFFNET[name])
    if name == 'MobileNetV2':
        return copy.deepcopy(get_config(SSD_MOBILENETV2))
    cfg = _ours(SSD_AFFNET['AFFNet-ET'])
    channels = MOBILEVITS[name][1]
    cfg.model.backbone = _mobilevit(name, 32, (3, 4))
    out_channels = channels + (512, 256, 256, 128)
    cfg.model.neck.in_channels = channels
    cfg.model.neck.out_channels = out_channels
    cfg.model.bbox_head.in_channels = out_channels
    return cfg


def deeplabv3_config(name: str) -> Config:
    """The DeepLabv3 (ADE20K, output stride 8) config of backbone ``name``
    (a key of SEG_AFFNET or MOBILEVITS, or ``'MobileNetV2'``)."""
    if name in SEG_AFFNET:
        return _ours(SEG_AFFNET[name])
    if name == 'MobileNetV2':
        cfg = copy.deepcopy(get_config(SEG_MOBILENETV2))
        cfg.model.pretrained = None
        return cfg
    cfg = _ours(SEG_AFFNET['AFFNet-ET'])
    cfg.model.backbone = _mobilevit(name, 8, (4, ))
    cfg.model.decode_head.in_channels = MOBILEVITS[name][1][1]
    return cfg


def dense_configs(task: str, names: list[str]) -> dict[str, Config]:
    """``{display name: config}`` of ``task`` ('detection' or
    'segmentation')."""
    if task == 'detection':
        return {f'SSDLite-{n}': ssdlite_config(n) for n in names}
    return {f'DeepLabv3-{n}': deeplabv3_config(n) for n in names}
