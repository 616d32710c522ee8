"""Prepacked oneDNN convolutions with the activation fused in, for the
prepared model on the CPU.

aten runs a channels-last float32 convolution through oneDNN, but reorders
the weight into oneDNN's blocked layout on every call and runs the
activation as a second pass over the output. A prepared model's weights
never change, so :func:`prepack_convolutions` reorders each weight once per
input shape and fuses a SiLU or ReLU into the same call: the ops inductor's
CPU freezing uses. They are private torch ops, so this path is gated to the
torch releases it was tested with, and every call falls back to
the plain convolution where the ops are missing, fail, or the call is traced.
"""
from collections import OrderedDict
from functools import lru_cache

import torch
import torch.nn as nn

from mmaff.compat import fix_applies
from mmaff.utils.misc import is_traced

#: Activations oneDNN runs inside the convolution, by its post-op names.
POST_OPS = {nn.SiLU: 'swish', nn.ReLU: 'relu'}
#: Input shapes one convolution keeps a packed weight for (a model sees a
#: handful: its batch sizes times its input sizes).
MAX_PACKED_SHAPES = 8


@lru_cache(maxsize=1)
def onednn_ops() -> tuple | None:
    """The weight prepacking and the fused convolution ops, or None where
    this torch lacks them or is not a release they were tested with."""
    if not torch.backends.mkldnn.is_available() or not fix_applies('oneDNN'):
        return None
    try:
        return (torch.ops.mkldnn._reorder_convolution_weight,
                torch.ops.mkldnn._convolution_pointwise)
    except (AttributeError, RuntimeError):
        return None


class PrepackedConv2d(nn.Module):
    """A convolution and its activation as one oneDNN call on a weight
    prepacked for the input's shape.

    Holds the original ``conv`` and ``activate`` modules (so the state dict
    keeps their keys) and falls back to them for inputs oneDNN does not
    serve here (not float32 channels-last on the CPU), under autograd and
    under graph capture.

    Args:
        conv (nn.Conv2d): The (BatchNorm-folded) convolution.
        activate (nn.Module, optional): The activation after it.
    """

    def __init__(self, conv: nn.Conv2d,
                 activate: nn.Module | None) -> None:
        super().__init__()
        self.conv = conv
        self.activate = activate
        self.post_op = POST_OPS.get(type(activate), 'none')
        self._args = (list(conv.padding), list(conv.stride),
                      list(conv.dilation), conv.groups)
        self._packed: OrderedDict = OrderedDict()
        self._failed = False

    def __getstate__(self) -> dict:
        # packed weights are opaque oneDNN tensors: copies pack anew
        return dict(super().__getstate__(), _packed=OrderedDict())

    def _plain(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x if self.activate is None else self.activate(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the fused op has no autograd: gradients take the plain path
        if (self._failed or is_traced() or x.device.type != 'cpu'
                or torch.is_grad_enabled() and (
                    x.requires_grad or self.conv.weight.requires_grad)
                or x.dtype != torch.float32 or x.dim() != 4
                or self.conv.weight.dtype != torch.float32
                or not x.is_contiguous(memory_format=torch.channels_last)
                or x.is_contiguous()):
            return self._plain(x)
        shape = tuple(x.shape)
        reorder, convolution = onednn_ops()
        try:
            packed = self._packed.get(shape)
            if packed is None:
                weight = self.conv.weight.detach().contiguous(
                    memory_format=torch.channels_last)
                packed = reorder(weight, *self._args, list(shape))
                self._packed[shape] = packed
                if len(self._packed) > MAX_PACKED_SHAPES:
                    self._packed.popitem(last=False)
            out = convolution(x, packed, self.conv.bias, *self._args,
                               self.post_op, [], '')
        except RuntimeError:
            # F.conv2d from now on (and its own error if the input is at
            # fault)
            self._failed = True
            return self._plain(x)
        if self.activate is not None and self.post_op == 'none':
            out = self.activate(out)
        return out


def prepack_convolutions(model: nn.Module) -> int:
    """Replace every ``conv -> act`` mmcv ConvModule whose BatchNorm has
    been folded (or that has none) by a :class:`PrepackedConv2d`.

    Returns:
        int: How many were replaced (0 where the ops are unavailable).
    """
    from mmcv.cnn import ConvModule
    if onednn_ops() is None:
        return 0
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, ConvModule) or not _replaceable(child):
                continue
            act = child.activate if child.with_activation else None
            if act is not None and (act._forward_hooks
                                    or act._forward_pre_hooks):
                continue  # the hooks must see the activation's own call
            setattr(parent, name, PrepackedConv2d(child.conv, act))
            replaced += 1
    return replaced


def _replaceable(module) -> bool:
    """A ``conv -> act`` ConvModule without a norm left (or an Identity
    where ``fuse_conv_bn`` folded it) and without hooks."""
    norm = module.norm if module.with_norm else None
    conv = module.conv
    return (module.order == ('conv', 'norm', 'act')
            and not module.with_explicit_padding
            and type(conv) is nn.Conv2d and conv.padding_mode == 'zeros'
            and not isinstance(conv.padding, str)
            and (norm is None or isinstance(norm, nn.Identity))
            and not (module._forward_hooks or module._forward_pre_hooks))
