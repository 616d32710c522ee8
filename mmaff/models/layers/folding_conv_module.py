"""A ConvModule that folds its BatchNorm into the convolution at inference."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch.nn.modules.batchnorm import _BatchNorm

from .tracing import is_traced

#: Activations oneDNN can run inside the convolution, by its post-op names.
_FUSED_ACTIVATIONS = {nn.SiLU: 'swish', nn.ReLU: 'relu'}


def onednn_conv_ops() -> tuple | None:
    """torch's oneDNN convolution with a fused post-op and its weight
    prepacking (the ops inductor's CPU freezing uses), or None where this
    torch build lacks them."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return (torch.ops.mkldnn._reorder_convolution_weight,
                torch.ops.mkldnn._convolution_pointwise)
    except (AttributeError, RuntimeError):
        return None


def torch_picks_onednn(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    """Whether ``F.conv2d`` itself would run ``conv`` on ``x`` with oneDNN
    (the ``use_mkldnn`` rule of aten's convolution): elsewhere torch's
    native kernels are the faster ones, so they are left to it."""
    one_by_one = conv.kernel_size == (1, 1)
    return (x.device.type == 'cpu' and x.dtype == torch.float32
            and x.dim() == 4 and torch.backends.mkldnn.enabled
            and not isinstance(conv.padding, str)
            and (conv.stride != (1, 1) or conv.dilation != (1, 1)
                 or x.shape[0] >= 16 or not one_by_one
                 or torch.get_num_threads() > 1)
            and (conv.groups > 1 or min(conv.kernel_size) > 3
                 or x.shape[0] > 1 or x.numel() > 20480))


class FoldingConvModule(ConvModule):
    """mmcv's ConvModule that, at inference, runs convolution + BatchNorm as
    one convolution with the BatchNorm folded in.

    Inference means: the module in eval mode, autograd off, eager execution
    (not tracing, exporting or compiling, which see the plain layers), a
    ``conv -> norm -> act`` order and a BatchNorm with running statistics,
    or no norm at all (also after mmcv's ``fuse_conv_bn`` has folded it and
    left an ``Identity``: then there is nothing to fold and only the
    oneDNN call below applies).
    The folded weight and bias are cached and rebuilt when a source tensor
    is written in place (its version counter moves) or replaced, when the
    dtype or memory format of the input changes, and on every ``train()`` /
    ``eval()`` call and ``load_state_dict``. Weights written through
    ``.data`` bypass version counters: call ``model.eval()`` after doing so
    (mmengine's EMA hook swaps weights before its loops call it).

    For a channels-last input where torch itself would run the convolution
    with oneDNN (float32 on the CPU, see :func:`torch_picks_onednn`; the
    AFFNet default), the folded weight is also
    prepacked into oneDNN's blocked layout for the input's shape, and a
    SiLU or ReLU activation (without hooks) runs inside the same call as a
    post-op: no weight reorder per call, and no second pass over a large
    activation map. Where those ops are missing or fail, ``F.conv2d`` runs.

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
        self._foldable: bool | None = None
        self._packed: tuple | None = None
        self._onednn_failed = False

    def train(self, mode: bool = True) -> 'FoldingConvModule':
        self._folded = None
        self._foldable = None
        self._packed = None
        return super().train(mode)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._folded = None
        self._packed = None
        super()._load_from_state_dict(*args, **kwargs)

    def _layers_foldable(self) -> bool:
        """Whether the layers as configured allow folding (settled once per
        ``train()`` / ``eval()`` call: a model's hot path calls this module
        hundreds of times per image)."""
        if self._foldable is None:
            norm = self.norm if self.with_norm else None
            self._foldable = (
                self.order == ('conv', 'norm', 'act')
                and not self.with_explicit_padding
                and isinstance(self.conv, nn.Conv2d)
                and self.conv.padding_mode == 'zeros'
                and (norm is None or isinstance(norm, nn.Identity) or
                     isinstance(norm, _BatchNorm)
                     and norm.track_running_stats))
        return self._foldable

    def _can_fold(self, x: torch.Tensor) -> bool:
        if not (self.fold_bn_in_eval and not self.training
                and not torch.is_grad_enabled() and self._layers_foldable()):
            return False
        bn = self._batch_norm()
        return ((bn is None or not bn.training
                 and bn.running_mean is not None)
                and x.numel() > 0 and not is_traced())

    def _batch_norm(self) -> _BatchNorm | None:
        norm = self._modules[self.norm_name] if self.with_norm else None
        return norm if isinstance(norm, _BatchNorm) else None

    def _sources(self) -> tuple:
        # the modules' own dicts: Module.__getattr__ costs more than the
        # small convolutions this module mostly runs
        conv = self._modules['conv']._parameters
        bn = self._batch_norm()
        if bn is None:
            return conv['weight'], conv.get('bias')
        return (conv['weight'], conv.get('bias'), bn._parameters.get('weight'),
                bn._parameters.get('bias'), bn._buffers.get('running_mean'),
                bn._buffers.get('running_var'))

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
        conv, bn = self.conv, self._batch_norm()
        weight, shift = conv.weight.detach(), conv.bias
        if bn is not None:
            scale = torch.rsqrt(bn.running_var + bn.eps)
            if bn.weight is not None:
                scale = scale * bn.weight
            shift = -bn.running_mean * scale
            if conv.bias is not None:
                shift = shift + conv.bias * scale
            if bn.bias is not None:
                shift = shift + bn.bias
            weight = weight * scale.reshape(-1, 1, 1, 1)
        if channels_last:
            weight = weight.contiguous(memory_format=torch.channels_last)
        if shift is not None:
            shift = shift.detach().to(x.dtype)
        self._folded = (key, weight.to(x.dtype), shift,
                        (conv.stride, conv.padding, conv.dilation,
                         conv.groups))
        self._packed = None
        return self._folded[1:]

    def _onednn_forward(self, x: torch.Tensor, weight: torch.Tensor,
                        bias: torch.Tensor | None,
                        activate: bool) -> torch.Tensor | None:
        """The folded convolution (and activation) as one oneDNN call with
        a prepacked weight, or None where that is not available."""
        ops = onednn_conv_ops()
        if ops is None:
            return None
        reorder, pointwise = ops
        conv, act = self.conv, self.activate if activate else None
        post_op = 'none'
        if act is not None and not (act._forward_hooks
                                    or act._forward_pre_hooks):
            post_op = _FUSED_ACTIVATIONS.get(type(act), 'none')
        args = (list(conv.padding), list(conv.stride), list(conv.dilation),
                conv.groups)
        try:
            if self._packed is None or self._packed[0] != x.shape:
                self._packed = (x.shape,
                                reorder(weight, *args, list(x.shape)))
            out = pointwise(x, self._packed[1], bias, *args, post_op, [],
                            '')
        except RuntimeError:
            self._onednn_failed = True
            self._packed = None
            return None
        if act is not None and post_op == 'none':
            out = act(out)
        return out

    def forward(self,
                x: torch.Tensor,
                activate: bool = True,
                norm: bool = True) -> torch.Tensor:
        if norm and self._can_fold(x):
            folded = self._folded_weights(x)
            if folded is not None:
                activate = activate and self.with_activation
                # channels-last only: oneDNN would hand an NCHW input's
                # result back channels-last
                if (not self._onednn_failed and not x.is_contiguous()
                        and x.is_contiguous(memory_format=torch.channels_last)
                        and torch_picks_onednn(x, self.conv)):
                    out = self._onednn_forward(x, folded[0], folded[1],
                                               activate)
                    if out is not None:
                        return out
                x = F.conv2d(x, folded[0], folded[1], *folded[2])
                return self.activate(x) if activate else x
        return super().forward(x, activate, norm)
