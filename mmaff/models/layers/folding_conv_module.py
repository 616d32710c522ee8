"""A ConvModule that folds its BatchNorm into the convolution at inference."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch.nn.modules.batchnorm import _BatchNorm

from .tracing import is_traced


class FoldingConvModule(ConvModule):
    """mmcv's ConvModule that, at inference, runs convolution + BatchNorm as
    one convolution with the BatchNorm folded in.

    Inference means: the module in eval mode, autograd off, eager execution
    (not tracing, exporting or compiling, which see the plain layers), a
    ``conv -> norm -> act`` order and a BatchNorm with running statistics.
    The folded weight and bias are cached and rebuilt when a source tensor
    is written in place (its version counter moves) or replaced, when the
    dtype or memory format of the input changes, and on every ``train()`` /
    ``eval()`` call and ``load_state_dict``. Weights written through
    ``.data`` bypass version counters: call ``model.eval()`` after doing so
    (mmengine's EMA hook swaps weights before its loops call it).

    Parameters, buffers and state-dict keys are those of ``ConvModule``;
    the outputs equal the unfolded ones up to float rounding.

    Args:
        *args: As for :class:`mmcv.cnn.ConvModule`.
        fold_bn_in_eval (bool): Fold at inference. Defaults to True.
        **kwargs: As for :class:`mmcv.cnn.ConvModule`.
    """

    def __init__(self, *args, fold_bn_in_eval: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fold_bn_in_eval = fold_bn_in_eval
        self._folded: tuple | None = None

    def train(self, mode: bool = True) -> 'FoldingConvModule':
        self._folded = None
        return super().train(mode)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._folded = None
        super()._load_from_state_dict(*args, **kwargs)

    def _can_fold(self, x: torch.Tensor) -> bool:
        norm = self.norm if self.with_norm else None
        return (self.fold_bn_in_eval and not self.training
                and not torch.is_grad_enabled()
                and self.order == ('conv', 'norm', 'act')
                and not self.with_explicit_padding
                and isinstance(self.conv, nn.Conv2d)
                and self.conv.padding_mode == 'zeros'
                and isinstance(norm, _BatchNorm) and not norm.training
                and norm.running_mean is not None and x.numel() > 0
                and not is_traced())

    def _sources(self) -> tuple:
        bn = self.norm
        return (self.conv.weight, self.conv.bias, bn.weight, bn.bias,
                bn.running_mean, bn.running_var)

    def _folded_weights(self, x: torch.Tensor) -> tuple | None:
        channels_last = x.dim() == 4 and not x.is_contiguous() and \
            x.is_contiguous(memory_format=torch.channels_last)
        try:
            key = tuple(None if t is None else
                        (t._version, t.data_ptr(), t.dtype, t.device)
                        for t in self._sources()) + (x.dtype, channels_last)
        except RuntimeError:
            # inference tensors (made under torch.inference_mode) have no
            # version counter: nothing tells when they change
            return None
        if self._folded is not None and self._folded[0] == key:
            return self._folded[1:]
        conv, bn = self.conv, self.norm
        scale = torch.rsqrt(bn.running_var + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight
        shift = -bn.running_mean * scale
        if conv.bias is not None:
            shift = shift + conv.bias * scale
        if bn.bias is not None:
            shift = shift + bn.bias
        weight = conv.weight * scale.reshape(-1, 1, 1, 1)
        if channels_last:
            weight = weight.contiguous(memory_format=torch.channels_last)
        self._folded = (key, weight.to(x.dtype), shift.to(x.dtype))
        return self._folded[1:]

    def forward(self,
                x: torch.Tensor,
                activate: bool = True,
                norm: bool = True) -> torch.Tensor:
        if norm and self._can_fold(x):
            folded = self._folded_weights(x)
            if folded is not None:
                conv = self.conv
                x = F.conv2d(x, folded[0], folded[1], conv.stride,
                             conv.padding, conv.dilation, conv.groups)
                if activate and self.with_activation:
                    x = self.activate(x)
                return x
        return super().forward(x, activate, norm)
