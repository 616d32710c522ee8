"""Models with their post-processing, as single-input modules for export.

Each wrapper turns an mm model into ``images -> final results`` so that an
exported graph gives what a user draws or evaluates, not head maps:

- :class:`DetectorEndToEnd`: boxes in input pixels, scores and labels after
  the score threshold and NMS, padded to a fixed number per image.
- :class:`SegmentorEndToEnd`: the label map at the input size.
- :class:`ClassifierEndToEnd`: class probabilities.

Their eager forward is the reference the exported graph is checked against,
and equals mmdet / mmseg / mmpretrain's own ``predict`` on the same input
tensor (ties in scores aside).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .label_map import LABEL_MAP_FORMS, label_map
from .nms import nms_keep_mask, offset_by_class

#: Output names of the exported graphs, per task.
OUTPUT_NAMES = {
    'detection': ['dets', 'labels'],
    'segmentation': ['label_map'],
    'classification': ['probs'],
}


def task_of(model: nn.Module) -> str:
    """``'detection'``, ``'segmentation'`` or ``'classification'``.

    Raises:
        ValueError: For a model of none of these kinds.
    """
    if hasattr(model, 'bbox_head'):
        return 'detection'
    if hasattr(model, 'decode_head'):
        return 'segmentation'
    if hasattr(model, 'head') or type(model).__name__ == 'ImageClassifier':
        return 'classification'
    raise ValueError(f'{type(model).__name__} is neither a detector (no '
                     'bbox_head), a segmentor (no decode_head) nor a '
                     'classifier (no head)')


def decode_boxes(coder, priors: torch.Tensor, deltas: torch.Tensor,
                 max_shape: tuple[int, int]) -> torch.Tensor:
    """``coder.decode`` of one flat list of boxes, as a tensor.

    mmdet's ``DeltaXYWHBBoxCoder.decode`` switches to its ONNX-only batched
    path whenever ``torch.onnx.is_in_onnx_export()``, and that path imports
    a module mmdet 3 no longer has: the dynamo exporter's first (non-strict)
    capture then fails and its strict fallback traces the model with the
    export flag off, losing every export-only form of the model. Its
    single-image function computes the same boxes without the switch.
    """
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
    if type(coder) is DeltaXYWHBBoxCoder:
        from mmdet.models.task_modules.coders.delta_xywh_bbox_coder import (
            delta2bbox,
        )
        return delta2bbox(priors, deltas, coder.means, coder.stds, max_shape,
                          16 / 1000, coder.clip_border, coder.add_ctr_clamp,
                          coder.ctr_clamp)
    boxes = coder.decode(priors, deltas, max_shape=max_shape)
    return getattr(boxes, 'tensor', boxes)


class DetectorEndToEnd(nn.Module):
    """A one-stage dense detector (SSD, RetinaNet, ...) with its test-time
    post-processing, for a batch of equally sized inputs.

    Follows mmdet's ``BaseDenseHead.predict_by_feat``: per level the
    ``nms_pre`` best (anchor, class) pairs, their boxes decoded and clipped
    to the input, boxes of no area and scores at most ``score_thr``
    dropped, NMS per class, the ``max_det`` best kept.

    Args:
        model (nn.Module): An mmdet single-stage detector.
        score_thr (float, optional): Defaults to the model's
            ``test_cfg.score_thr``.
        max_det (int, optional): Detections per image. Defaults to the
            model's ``test_cfg.max_per_img``.

    Outputs of ``forward(images)``:
        - ``dets``: (N, max_det, 5) float, x1, y1, x2, y2 in input pixels
          and the score, best first. Rows past the image's detections are
          zeros.
        - ``labels``: (N, max_det) int64 class indices, -1 in those rows.
    """

    def __init__(self, model: nn.Module, score_thr: float | None = None,
                 max_det: int | None = None) -> None:
        super().__init__()
        head = model.bbox_head
        cfg = head.test_cfg
        if cfg is None or 'nms' not in cfg:
            raise ValueError('the detector has no test_cfg.nms to export')
        if cfg.nms.get('type', 'nms') != 'nms':
            raise ValueError(f'test_cfg.nms.type={cfg.nms.type!r}: only '
                             "plain 'nms' exports")
        if getattr(head.bbox_coder, 'encode_size', 4) != 4:
            raise ValueError('only heads that decode 4-number box deltas '
                             'export')
        self.model = model
        self.score_thr = float(cfg.get('score_thr', 0.)
                               if score_thr is None else score_thr)
        self.max_det = int(cfg.get('max_per_img', 100)
                           if max_det is None else max_det)
        if self.max_det <= 0:
            raise ValueError(f'max_det must be positive, got {max_det}')
        self.nms_pre = int(cfg.get('nms_pre', -1))
        self.iou_thr = float(cfg.nms.iou_threshold)
        self.min_bbox_size = cfg.get('min_bbox_size', -1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cls_scores, bbox_preds = self.model(images, mode='tensor')
        return self.postprocess(cls_scores, bbox_preds, images.shape[-2:])

    def postprocess(self, cls_scores: list[torch.Tensor],
                    bbox_preds: list[torch.Tensor],
                    input_shape: tuple[int, int]) -> tuple[torch.Tensor, ...]:
        """``dets`` and ``labels`` from the head's maps per level.

        Args:
            cls_scores (list[torch.Tensor]): (N, A * classes, h, w) each.
            bbox_preds (list[torch.Tensor]): (N, A * 4, h, w) each.
            input_shape (tuple[int, int]): The input's (H, W).
        """
        head = self.model.bbox_head
        n = cls_scores[0].shape[0]
        height, width = input_shape
        priors = head.prior_generator.grid_priors(
            [c.shape[-2:] for c in cls_scores], dtype=cls_scores[0].dtype,
            device=cls_scores[0].device)
        boxes, scores, labels = [], [], []
        for cls_score, bbox_pred, level_priors in zip(
                cls_scores, bbox_preds, priors):
            cls_score = cls_score.permute(0, 2, 3, 1).reshape(
                n, -1, head.cls_out_channels)
            if head.use_sigmoid_cls:
                cls_score = cls_score.sigmoid()
            else:
                # the last channel is the background
                cls_score = cls_score.softmax(-1)[..., :-1]
            num_classes = cls_score.shape[-1]
            flat = cls_score.reshape(n, -1)
            k = flat.shape[1] if self.nms_pre <= 0 else min(
                self.nms_pre, flat.shape[1])
            level_scores, pairs = flat.topk(k, dim=1)
            anchors = torch.div(pairs, num_classes, rounding_mode='floor')
            deltas = bbox_pred.permute(0, 2, 3, 1).reshape(n, -1, 4)
            deltas = deltas.gather(1, anchors.unsqueeze(-1).expand(-1, -1, 4))
            boxes.append(decode_boxes(
                head.bbox_coder, level_priors[anchors].reshape(-1, 4),
                deltas.reshape(-1, 4), (height, width)).reshape(n, -1, 4))
            scores.append(level_scores)
            labels.append(pairs - anchors * num_classes)
        boxes = torch.cat(boxes, dim=1)
        scores = torch.cat(scores, dim=1)
        labels = torch.cat(labels, dim=1)
        if self.min_bbox_size >= 0:
            size = self.min_bbox_size
            valid = ((boxes[..., 2] - boxes[..., 0] > size)
                     & (boxes[..., 3] - boxes[..., 1] > size))
            scores = scores * valid.to(scores.dtype)
        keep = nms_keep_mask(
            offset_by_class(boxes, labels, max(height, width)), scores,
            self.iou_thr, self.score_thr)
        kept_scores, order = (scores * keep).topk(
            min(self.max_det, scores.shape[1]), dim=1)
        dets = torch.cat([
            boxes.gather(1, order.unsqueeze(-1).expand(-1, -1, 4)),
            kept_scores.unsqueeze(-1)
        ], dim=-1)
        found = kept_scores > 0
        dets = dets * found.unsqueeze(-1).to(dets.dtype)
        labels = torch.where(found, labels.gather(1, order),
                             torch.full_like(order, -1))
        return dets, labels


class SegmentorEndToEnd(nn.Module):
    """An mmseg encoder-decoder that returns the label map at the input
    size: the logits resized as the decode head does, then the likeliest
    class per pixel (the head's threshold for a one-channel head).

    Args:
        model (nn.Module): An mmseg segmentor.
        label_map_form (str, optional): Export the resize and arg-max in
            this form of :mod:`mmaff.deployment.label_map` (the same labels,
            faster in one runtime). Defaults to None: as PyTorch traces
            them.

    Outputs of ``forward(images)``:
        - ``label_map``: (N, H, W) int64.
    """

    def __init__(self, model: nn.Module,
                 label_map_form: str | None = None) -> None:
        super().__init__()
        self.model = model
        forms = set(LABEL_MAP_FORMS.values())
        if label_map_form is not None and label_map_form not in forms:
            raise ValueError(f'unknown label map form {label_map_form!r}; '
                             f'choose from {sorted(forms)}')
        self.label_map_form = label_map_form

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        head = self.model.decode_head
        logits = self.model(images, mode='tensor')
        if logits.shape[1] > 1 and self.label_map_form is not None:
            return label_map(logits, images, head.align_corners,
                             self.label_map_form)
        logits = F.interpolate(logits, size=images.shape[-2:],
                               mode='bilinear',
                               align_corners=head.align_corners)
        if logits.shape[1] == 1:
            return (logits.sigmoid() > head.threshold).long()[:, 0]
        return logits.argmax(dim=1)


class ClassifierEndToEnd(nn.Module):
    """An mmpretrain classifier that returns class probabilities: softmax,
    or sigmoid for multi-label heads (as their ``predict`` does).

    Args:
        model (nn.Module): An mmpretrain image classifier.

    Outputs of ``forward(images)``:
        - ``probs``: (N, num_classes) float.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.multi_label = 'MultiLabel' in type(
            getattr(model, 'head', None)).__name__

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.model(images, mode='tensor')
        if self.multi_label:
            return logits.sigmoid()
        return logits.softmax(dim=1)


def end_to_end(model: nn.Module,
               backend: str | None = None,
               **detector_kwargs) -> nn.Module:
    """The end-to-end wrapper for ``model``'s task (see :func:`task_of`).

    Args:
        model (nn.Module): An mm detector, segmentor or classifier.
        backend (str, optional): The runtime the wrapper is exported for,
            which picks the faster of equivalent graphs (see
            :data:`~mmaff.deployment.label_map.LABEL_MAP_FORMS`).
            Defaults to None: the plain graph.
        **detector_kwargs: ``score_thr`` and ``max_det`` of
            :class:`DetectorEndToEnd`.
    """
    task = task_of(model)
    if task == 'detection':
        return DetectorEndToEnd(model, **detector_kwargs)
    if task == 'segmentation':
        return SegmentorEndToEnd(model, LABEL_MAP_FORMS.get(backend))
    return ClassifierEndToEnd(model)
