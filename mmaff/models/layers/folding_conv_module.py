"""A ConvModule that folds its BatchNorm into the convolution at inference."""
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch.nn.modules.batchnorm import _BatchNorm

from .tracing import is_traced

#: Activations oneDNN can run inside the convolution, by its post-op names.
_FUSED_ACTIVATIONS = {nn.SiLU: 'swish', nn.ReLU: 'relu'}


class FoldKey(NamedTuple):
    """What an :class:`InferencePlan`'s folded weight and its activation
    handling depend on (everything but the input's size)."""
    channels_last: bool
    dtype: torch.dtype
    device: torch.device
    #: the activation runs (ConvModule's ``activate`` argument)
    activate: bool
    #: the activation has hooks, so it must run as its own module call
    act_hooked: bool
    bn_training: bool
    #: (version, storage) of every source tensor, None for absent ones
    sources: tuple


class InferencePlan(NamedTuple):
    """How :class:`FoldingConvModule` runs an input of a given layout while
    its sources keep the state they had when the plan was made."""
    #: ((input shape, strides), :class:`FoldKey`): one tuple, so that the
    #: hot path compares it once
    state: tuple
    weight: torch.Tensor
    bias: torch.Tensor | None
    conv_args: tuple
    #: oneDNN: the prepacked weight and the call, else None
    packed: torch.Tensor | None
    onednn_call: Callable | None
    onednn_args: tuple
    post_op: str
    #: the activation module still to run after the convolution
    act: nn.Module | None


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
    The folded weight and bias are cached (in an :class:`InferencePlan`)
    and rebuilt when a source tensor is written in place (its version
    counter moves) or replaced, when the dtype or memory format of the
    input changes, and on every ``train()`` / ``eval()`` call and
    ``load_state_dict``; a new input size only repacks. Weights written
    through
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
        **kwargs: As for :class:`mmcv.cnn.ConvModule`, except that a SiLU
            activation defaults to ``inplace=False``.
    """

    def __init__(self, *args, fold_bn_in_eval: bool = True, **kwargs) -> None:
        act_cfg = kwargs.get('act_cfg')
        if isinstance(act_cfg, dict) and act_cfg.get('type') == 'SiLU':
            # Under autograd an in-place SiLU first clones its input (its
            # backward needs it): one more pass over every activation map
            # per training step. Out of place costs nothing extra, and
            # inference runs the activation inside the convolution anyway.
            kwargs.setdefault('inplace', False)
        super().__init__(*args, **kwargs)
        self.fold_bn_in_eval = fold_bn_in_eval
        self._folded: InferencePlan | None = None
        self._foldable: bool | None = None
        self._onednn_failed = False

    def train(self, mode: bool = True) -> 'FoldingConvModule':
        self._folded = None
        self._foldable = None
        return super().train(mode)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._folded = None
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

    def _bn_folds(self, x: torch.Tensor) -> bool:
        """Whether the BatchNorm (if any) can be folded for ``x``: it uses
        running statistics, and ``x`` is not empty."""
        bn = self._batch_norm()
        return ((bn is None or not bn.training
                 and bn.running_mean is not None) and x.numel() > 0)

    def _batch_norm(self) -> _BatchNorm | None:
        norm = self._modules[self.norm_name] if self.with_norm else None
        return norm if isinstance(norm, _BatchNorm) else None

    def _sources(self, bn: _BatchNorm | None) -> tuple:
        """The tensors the folded weight is made of (``bn`` is
        :meth:`_batch_norm`)."""
        # the modules' own dicts: Module.__getattr__ costs more than the
        # small convolutions this module mostly runs
        conv = self._modules['conv']._parameters
        if bn is None:
            return conv['weight'], conv.get('bias')
        return (conv['weight'], conv.get('bias'), bn._parameters.get('weight'),
                bn._parameters.get('bias'), bn._buffers.get('running_mean'),
                bn._buffers.get('running_var'))

    def _state(self, x: torch.Tensor, activate: bool) -> tuple | None:
        """What an :class:`InferencePlan` depends on, or None for inference
        tensors (made under ``torch.inference_mode``), whose missing
        version counters cannot tell when they change."""
        bn = self._batch_norm()
        channels_last = x.dim() == 4 and not x.is_contiguous() and \
            x.is_contiguous(memory_format=torch.channels_last)
        act = self._modules['activate'] if activate else None
        hooked = act is not None and bool(act._forward_hooks
                                          or act._forward_pre_hooks)
        try:
            return (x.shape, x.stride()), FoldKey(
                channels_last, x.dtype, x.device, activate, hooked,
                bn is not None and bn.training,
                tuple(None if t is None else (t._version, t.data_ptr())
                      for t in self._sources(bn)))
        except RuntimeError:
            return None

    def _fold(self, dtype: torch.dtype,
              channels_last: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The convolution's weight and bias with the BatchNorm folded in."""
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
        weight = weight.to(dtype)
        if shift is not None:
            shift = shift.detach().to(dtype)
        return weight, shift

    def _make_plan(self, x: torch.Tensor, state: tuple,
                   previous: InferencePlan | None) -> InferencePlan:
        """Fold the BatchNorm (unless ``previous`` holds it folded from the
        same sources: a new input size only repacks) and, where oneDNN
        serves the input, prepack the folded weight and pick the activation
        post-op."""
        conv, key = self.conv, state[1]
        if previous is not None and previous.state[1] == key:
            weight, shift = previous.weight, previous.bias
        else:
            weight, shift = self._fold(x.dtype, key.channels_last)
        act = self.activate if key.activate else None
        onednn_args = (list(conv.padding), list(conv.stride),
                       list(conv.dilation), conv.groups)
        packed, call, post_op = None, None, 'none'
        ops = onednn_conv_ops()
        # channels-last only: oneDNN would hand an NCHW input's result back
        # channels-last
        if (ops is not None and key.channels_last and not self._onednn_failed
                and torch_picks_onednn(x, conv)):
            try:
                packed = ops[0](weight, *onednn_args, list(x.shape))
                call = ops[1]
            except RuntimeError:
                self._onednn_failed = True
            if call is not None and act is not None and not key.act_hooked:
                post_op = _FUSED_ACTIVATIONS.get(type(act), 'none')
                if post_op != 'none':
                    act = None
        return InferencePlan(state, weight, shift,
                             (conv.stride, conv.padding, conv.dilation,
                              conv.groups), packed, call, onednn_args,
                             post_op, act)

    def _run_plan(self, x: torch.Tensor, plan: InferencePlan) -> torch.Tensor:
        out, act = None, plan.act
        if plan.onednn_call is not None:
            try:
                out = plan.onednn_call(x, plan.packed, plan.bias,
                                       *plan.onednn_args, plan.post_op, [],
                                       '')
            except RuntimeError:
                # F.conv2d from now on (and its own error if the input is
                # at fault), with the activation the post-op would have run
                self._onednn_failed = True
                self._folded = None
                act = self.activate if plan.state[1].activate else None
        if out is None:
            out = F.conv2d(x, plan.weight, plan.bias, *plan.conv_args)
        return out if act is None else act(out)

    def forward(self,
                x: torch.Tensor,
                activate: bool = True,
                norm: bool = True) -> torch.Tensor:
        if (norm and self.fold_bn_in_eval and not self.training
                and not torch.is_grad_enabled() and self._layers_foldable()
                and not is_traced()):
            state = self._state(x, activate and self.with_activation)
            if state is not None:
                plan = self._folded
                if plan is None or plan.state != state:
                    if not self._bn_folds(x):
                        return super().forward(x, activate, norm)
                    plan = self._folded = self._make_plan(x, state, plan)
                return self._run_plan(x, plan)
        return super().forward(x, activate, norm)
