"""mmdeploy (1.3.x) rewriters that let mmdeploy's ``torch2onnx`` convert
mmaff detectors and segmentors on torch 2.14.

Imported by the deploy configs in ``configs/deploy/mmdeploy/`` (through
their ``custom_imports``), never by ``import mmaff``: it needs mmdeploy,
which mmaff does not depend on. Both rewriters are active only inside
mmdeploy's ``RewriterContext``, i.e. while mmdeploy exports to ONNX.

* ``torch.onnx.export``: mmdeploy 1.3.1 calls it without ``dynamo``, and
  torch 2.14 defaults to the dynamo exporter (``torch.export``), which
  mmdeploy's rewriters were not written for: its single-stage detector
  forward calls ``torch._shape_as_tensor`` and ``int()`` on the result,
  which fail under ``torch.export`` ("data is not allocated yet"), and its
  NMS (``ONNXNMSop``) is an ``autograd.Function`` whose ``symbolic()`` only
  the TorchScript exporter calls: ``torch.export`` traces its ``forward``
  into mmcv's C++ ``nms`` instead. The rewriter passes ``dynamo=False``
  unless the caller chose.
* ``AdaptiveFrequencyFilter.forward``: the TorchScript exporter has no rule
  for ``aten::fft_rfft2``/``fft_irfft2``, so filters in ``'fft'`` mode are
  exported with their ``'matmul'`` DFTs (real DFT matrices for the traced
  H x W; the same function up to float rounding). The graph then has
  MatMul instead of ``DFT``; ``torch.outer`` in the DFT matrices needs
  opset >= 12 (the deploy configs use 17).
"""
from mmdeploy.core import FUNCTION_REWRITER
from mmdeploy.utils import IR


@FUNCTION_REWRITER.register_rewriter('torch.onnx.export', ir=IR.ONNX)
def torch_onnx_export__torchscript(*args, **kwargs):
    """``torch.onnx.export`` with the TorchScript exporter by default."""
    ctx = FUNCTION_REWRITER.get_context()
    kwargs.setdefault('dynamo', False)
    return ctx.origin_func(*args, **kwargs)


@FUNCTION_REWRITER.register_rewriter(
    'mmaff.models.layers.frequency_filter.AdaptiveFrequencyFilter.forward',
    ir=IR.ONNX)
def adaptive_frequency_filter__forward__matmul(self, x):
    """The filter with matrix DFTs, whatever its ``dft_mode``."""
    ctx = FUNCTION_REWRITER.get_context()
    mode = self.dft_mode
    if mode == 'matmul':
        return ctx.origin_func(self, x)
    self.dft_mode = 'matmul'
    try:
        return ctx.origin_func(self, x)
    finally:
        self.dft_mode = mode
