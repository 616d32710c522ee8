"""Non-maximum suppression as one op that exports to ONNX
``NonMaxSuppression``.

The op returns a keep mask of the same shape as the scores instead of the
kept indices: its output shape is then known at trace time, so the rest of
the post-processing (a ``TopK`` over the kept scores) stays static and the
dynamo exporter needs no data-dependent shapes.
"""
import torch

_LIBRARY = 'mmaff'


@torch.library.custom_op(f'{_LIBRARY}::nms_keep_mask', mutates_args=())
def nms_keep_mask(boxes: torch.Tensor, scores: torch.Tensor,
                  iou_threshold: float,
                  score_threshold: float) -> torch.Tensor:
    """Which boxes survive greedy NMS, per image.

    Boxes scoring at most ``score_threshold`` are dropped first (as ONNX
    ``NonMaxSuppression`` does); of two boxes overlapping by more than
    ``iou_threshold`` the lower-scoring one is dropped. Class-aware NMS
    offsets each class's boxes beforehand (see :func:`offset_by_class`).

    Args:
        boxes (torch.Tensor): (N, K, 4) boxes as x1, y1, x2, y2.
        scores (torch.Tensor): (N, K) scores.
        iou_threshold (float): Overlap above which a box is suppressed.
        score_threshold (float): Boxes must score above it.

    Returns:
        torch.Tensor: (N, K) mask, 1 for kept boxes and 0 otherwise, of the
        scores' dtype.
    """
    from torchvision.ops import nms
    keep = torch.zeros_like(scores)
    for i in range(scores.shape[0]):
        candidates = torch.nonzero(scores[i] > score_threshold).flatten()
        kept = nms(boxes[i, candidates].float(),
                   scores[i, candidates].float(), iou_threshold)
        keep[i, candidates[kept]] = 1
    return keep


@nms_keep_mask.register_fake
def _nms_keep_mask_fake(boxes: torch.Tensor, scores: torch.Tensor,
                        iou_threshold: float,
                        score_threshold: float) -> torch.Tensor:
    return torch.empty_like(scores)


def _nms_keep_mask_onnx(boxes, scores, iou_threshold: float,
                        score_threshold: float):
    """ONNX graph of :func:`nms_keep_mask`: ``NonMaxSuppression`` with one
    class, its selected (batch, class, box) triples scattered into a mask
    of zeros."""
    from onnxscript import opset18 as op
    selected = op.NonMaxSuppression(
        boxes, op.Unsqueeze(scores, [1]),
        op.Constant(value_ints=[2**31 - 1]),
        op.Constant(value_floats=[iou_threshold]),
        op.Constant(value_floats=[score_threshold]))
    batch_and_box = op.Gather(selected, op.Constant(value_ints=[0, 2]),
                              axis=1)
    num_selected = op.Gather(op.Shape(selected), op.Constant(value_ints=[0]),
                             axis=0)
    ones = op.Expand(op.CastLike(op.Constant(value_float=1.0), scores),
                     num_selected)
    zeros = op.Expand(op.CastLike(op.Constant(value_float=0.0), scores),
                      op.Shape(scores))
    return op.ScatterND(zeros, batch_and_box, ones)


#: The ``custom_translation_table`` entries for ``torch.onnx.export``.
NMS_TRANSLATIONS = {
    torch.ops.mmaff.nms_keep_mask.default: _nms_keep_mask_onnx,
}


def offset_by_class(boxes: torch.Tensor, labels: torch.Tensor,
                    extent: float) -> torch.Tensor:
    """Boxes moved apart by class, so that single-class NMS on them is
    NMS per class (the trick of mmcv's ``batched_nms``).

    Args:
        boxes (torch.Tensor): (..., 4) boxes inside ``[0, extent]``.
        labels (torch.Tensor): (...) class indices.
        extent (float): An upper bound of every coordinate.

    Returns:
        torch.Tensor: The moved boxes.
    """
    return boxes + (labels.to(boxes.dtype) * (extent + 1)).unsqueeze(-1)
