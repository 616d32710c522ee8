"""A segmentor's label map (logits resized to the input, then the likeliest
class per pixel) as one op whose ONNX form each runtime runs fastest.

Resizing 150-class logits to 512x512 and taking the arg-max over classes is
the costliest part of an exported DeepLabv3 on the CPU. ONNX ``Resize`` +
``ArgMax`` over the class axis (the plain export) took 121 ms in
onnxruntime 1.32 and 95 ms in OpenVINO 2026.4 on 2 threads, more than
DeepLabv3-AFFNet-ET's backbone and head. Two forms give the same labels
faster, each in one runtime only:

- ``'channels_last'`` (onnxruntime: 24 ms): ``Transpose`` of the small
  logits, ``Resize`` over H and W of NHWC and ``ArgMax`` over the
  contiguous last axis. OpenVINO runs this ``Resize`` 3x slower (305 ms).
- ``'topk'`` (OpenVINO: 14 ms): ``Resize``, then ``TopK`` with k = 1 over
  classes. onnxruntime's ``TopK`` is slower than its ``ArgMax`` there
  (199 ms). Among exactly tied logits OpenVINO may return another of the
  tied classes than the first (measured: on logits rounded to halves, 0.3 %
  of pixels); real logits are not tied.

:data:`LABEL_MAP_FORMS` says which runtime gets which; the eager op is
mmseg's resize and arg-max in every form.
"""
import torch
import torch.nn.functional as F

#: The ONNX form of the label map for each runtime (measured on
#: (1, 150, 64, 64) logits to 512x512, 2 threads; docs/benchmarks.md).
LABEL_MAP_FORMS = {'onnxruntime': 'channels_last', 'openvino': 'topk'}


@torch.library.custom_op('mmaff::label_map', mutates_args=())
def label_map(logits: torch.Tensor, images: torch.Tensor,
              align_corners: bool, form: str) -> torch.Tensor:
    """The likeliest class per pixel of ``logits`` resized bilinearly to
    ``images``' H and W (mmseg's ``predict``).

    Args:
        logits (torch.Tensor): (N, classes, h, w) logits.
        images (torch.Tensor): The (N, 3, H, W) input; only its size is
            read.
        align_corners (bool): The resize's ``align_corners``.
        form (str): The ONNX form to export, ``'channels_last'`` or
            ``'topk'`` (the same labels).

    Returns:
        torch.Tensor: (N, H, W) int64 labels.
    """
    logits = F.interpolate(logits, size=images.shape[-2:], mode='bilinear',
                           align_corners=align_corners)
    return logits.argmax(dim=1)


@label_map.register_fake
def _label_map_fake(logits: torch.Tensor, images: torch.Tensor,
                    align_corners: bool, form: str) -> torch.Tensor:
    return logits.new_empty((logits.shape[0], *images.shape[-2:]),
                            dtype=torch.long)


def _label_map_onnx(logits, images, align_corners: bool, form: str):
    """ONNX graph of :func:`label_map` in ``form``: ``Resize`` (linear, as
    PyTorch's bilinear) and the likeliest class."""
    from onnxscript import opset18 as op
    resize = dict(
        mode='linear',
        coordinate_transformation_mode='align_corners'
        if align_corners else 'pytorch_half_pixel')
    size = op.Slice(op.Shape(images), [2], [4])
    if form == 'topk':
        sizes = op.Concat(op.Slice(op.Shape(logits), [0], [2]), size, axis=0)
        _, labels = op.TopK(op.Resize(logits, None, None, sizes, **resize),
                            op.Constant(value_ints=[1]), axis=1)
        return op.Squeeze(labels, [1])
    nhwc = op.Transpose(logits, perm=[0, 2, 3, 1])
    shape = op.Shape(nhwc)
    sizes = op.Concat(op.Slice(shape, [0], [1]), size,
                      op.Slice(shape, [3], [4]), axis=0)
    return op.ArgMax(op.Resize(nhwc, None, None, sizes, **resize), axis=3,
                     keepdims=0)


#: The ``custom_translation_table`` entries for ``torch.onnx.export``.
LABEL_MAP_TRANSLATIONS = {
    torch.ops.mmaff.label_map.default: _label_map_onnx,
}
