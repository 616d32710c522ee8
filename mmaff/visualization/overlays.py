"""The pictures and one-line summaries of inference results, one class per
task, shared by ``demo/image_demo.py`` (PyTorch) and
``tools/deployment/onnx_inference.py`` (exported models), so that both draw
the same thing for the same result.

Each takes the image as RGB pixels and the task's data sample
(``DetDataSample`` with ``pred_instances``, ``SegDataSample`` with
``pred_sem_seg``, mmpretrain's ``DataSample`` with ``pred_score``), writes
the picture and returns the summary.
"""
import numpy as np

from .legend import add_caption, enlarge_factor

#: Small images are drawn enlarged to this size, so that the text fits.
MIN_SIZE = 256


def percent(share: float) -> str:
    return f'{100 * share:.1f}%' if share >= 0.0005 else '<0.1%'


def class_names(meta: dict | None, num: int) -> list[str]:
    """The dataset meta's class names, or the indices as names."""
    classes = (meta or {}).get('classes')
    return list(classes) if classes else [str(i) for i in range(num)]


class DetectionOverlay:
    """Boxes with class names and scores (mmdet's ``DetLocalVisualizer``).

    Args:
        meta (dict): Dataset meta with ``classes`` (and ``palette``).
        score_thr (float): Boxes scoring at least this are drawn and
            counted.
        name (str): Visualizer instance name (mmengine keeps one per name).
    """

    def __init__(self, meta: dict, score_thr: float,
                 name: str = 'detection_overlay') -> None:
        from mmdet.visualization import DetLocalVisualizer
        self.visualizer = DetLocalVisualizer.get_instance(name)
        self.visualizer.dataset_meta = meta
        self.classes = list(meta['classes'])
        self.score_thr = score_thr

    def __call__(self, image: np.ndarray, sample, out_file: str) -> str:
        self.visualizer.add_datasample('image', image, sample, draw_gt=False,
                                       pred_score_thr=self.score_thr,
                                       out_file=out_file)
        instances = sample.pred_instances
        instances = instances[instances.scores >= self.score_thr]
        summary = f'{len(instances)} boxes scoring >= {self.score_thr:g}'
        if len(instances):
            names = [self.classes[int(label)] for label in instances.labels]
            counts = sorted({name: names.count(name)
                             for name in names}.items(),
                            key=lambda item: -item[1])
            best = instances.scores.argsort(descending=True)[:3]
            summary += (' (' + ', '.join(f'{n} {c}' for n, c in counts) +
                        '); best: ' + ', '.join(
                            f'{names[int(i)]} {float(instances.scores[i]):.2f}'
                            for i in best))
        return summary


class SegmentationOverlay:
    """The coloured label map over the image with a legend
    (:class:`~mmaff.visualization.SegOverlayVisualizer`) and a caption
    saying what the colours claim.

    Args:
        meta (dict): Dataset meta with ``classes`` and ``palette``.
        name (str): Visualizer instance name.
    """

    def __init__(self, meta: dict, name: str = 'segmentation_overlay') -> None:
        from .seg_visualizer import SegOverlayVisualizer
        self.visualizer = SegOverlayVisualizer.get_instance(
            name, alpha=0.6, min_size=MIN_SIZE)
        # not through __init__: mmseg 1.2.2 passes classes and palette on
        # to set_dataset_meta swapped
        self.visualizer.dataset_meta = dict(classes=meta['classes'],
                                            palette=meta['palette'])
        self.classes = list(meta['classes'])
        # Pixels of no class the model knows (ADE20K's "other", VOC's
        # background when it is ignored) still get one of its classes: say
        # so under the picture rather than let the colour pass for an
        # answer.
        self.caption = [
            f'each pixel: the likeliest of the {len(self.classes)} classes '
            '(none of them means "other")'
        ]

    def __call__(self, image: np.ndarray, sample, out_file: str) -> str:
        import mmcv
        labels = sample.pred_sem_seg.data[0]
        self.visualizer.add_datasample('image', image, sample, draw_gt=False)
        mmcv.imwrite(
            add_caption(self.visualizer.get_image(), self.caption)[:, :, ::-1],
            out_file)
        ids, counts = labels.unique(return_counts=True)
        order = counts.argsort(descending=True)
        shares = [f'{self.classes[int(ids[i])]} '
                  f'{percent(float(counts[i]) / labels.numel())}'
                  for i in order]
        return (f'{labels.shape[1]}x{labels.shape[0]} label map, '
                f'{len(shares)} classes: ' + ', '.join(shares[:8]) +
                (', ...' if len(shares) > 8 else ''))


class ClassificationOverlay:
    """The image (enlarged when small) with its top-K classes under it.

    Args:
        classes (list[str], optional): Class names; None for the indices.
        topk (int): Classes listed.
    """

    def __init__(self, classes: list[str] | None, topk: int) -> None:
        self.classes = list(classes) if classes else None
        self.topk = topk

    def __call__(self, image: np.ndarray, sample, out_file: str) -> str:
        import mmcv
        scores = sample.pred_score.float()
        classes = self.classes or [str(i) for i in range(len(scores))]
        top = scores.topk(min(self.topk, len(scores)))
        lines = [f'{classes[int(i)]} {float(s):.2f}'
                 for s, i in zip(top.values, top.indices)]
        scale = enlarge_factor(image.shape, MIN_SIZE)
        picture = image.repeat(scale, 0).repeat(scale, 1)
        picture = add_caption(
            picture, [f'{k + 1}. {line}' for k, line in enumerate(lines)])
        mmcv.imwrite(picture[:, :, ::-1], out_file)
        return f'top-{len(lines)}: ' + ', '.join(lines)
