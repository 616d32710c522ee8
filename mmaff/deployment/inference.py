"""Running an end-to-end ONNX export on image files, with the config's
preprocessing, returning the same data samples as the PyTorch model's
``predict`` (in original-image coordinates)."""
import numpy as np
import torch
from mmengine.config import Config

from mmaff.utils.config import SCOPE_TASKS

from .export import read_metadata
from .pipeline import ExportPreprocessor
from .runtime import RuntimeSession


def dataset_meta(cfg: Config, classes: list[str] | None = None) -> dict:
    """``classes`` and ``palette`` of the config's test set: its
    ``metainfo``, else its dataset class's ``METAINFO``; ``classes`` (from
    a checkpoint) replaces the names when given."""
    from mmengine.registry import DATASETS, DefaultScope
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset and 'metainfo' not in dataset:
        dataset = dataset.dataset
    meta = dict(dataset.get('metainfo') or {})
    if 'classes' not in meta or 'palette' not in meta:
        scope = cfg.get('default_scope') or 'mmengine'
        __import__(f'{scope}.datasets')
        with DefaultScope.overwrite_default_scope(scope):
            dataset_class = DATASETS.get(dataset.type)
        for key, value in getattr(dataset_class, 'METAINFO', {}).items():
            meta.setdefault(key, value)
    if classes:
        meta['classes'] = list(classes)
    if 'classes' in meta and len(meta.get('palette') or []) < len(
            meta['classes']):
        rng = np.random.RandomState(42)
        meta['palette'] = [tuple(int(v) for v in rng.randint(0, 256, 3))
                           for _ in meta['classes']]
    return meta


class ExportedModel:
    """An ONNX file written by ``tools/deployment/export_onnx.py
    --postprocess``, ready to run on image files.

    Args:
        path (str): The ONNX file.
        cfg (Config): The config it was exported from (its test pipeline
            and data preprocessor prepare the images).
        backend (str): ``'onnxruntime'`` or ``'openvino'``.
        threads (int, optional): Runtime threads.

    Raises:
        ValueError: If the file is no end-to-end mmaff export, or of
            another task than the config.
    """

    def __init__(self, path: str, cfg: Config, backend: str = 'onnxruntime',
                 threads: int | None = None) -> None:
        info = read_metadata(path)
        if not info:
            raise ValueError(
                f'{path} holds no mmaff export metadata: export it with '
                'tools/deployment/export_onnx.py --postprocess')
        if not info.get('postprocess'):
            raise ValueError(
                f'{path} was exported without --postprocess (its outputs '
                'are raw head maps); export it again with --postprocess')
        scope = cfg.get('default_scope')
        if SCOPE_TASKS.get(scope) != info['task']:
            raise ValueError(
                f'{path} is a {info["task"]} model, the config a '
                f'{SCOPE_TASKS.get(scope, scope)} one')
        self.task = info['task']
        self.info = info
        self.session = RuntimeSession(path, backend, threads)
        batch = self.session.input_shapes[0][0]
        if isinstance(batch, int) and batch != 1:
            raise ValueError(
                f'{path} was exported for batches of {batch} images; export '
                'it with --batch-size 1 or --dynamic batch')
        static = 'shape' not in info.get('dynamic', [])
        self.input_shape = tuple(info['input_shape']) if static else None
        self.preprocess = ExportPreprocessor(cfg, self.input_shape)
        self.meta = dataset_meta(cfg, info.get('classes'))

    def predict(self, image_path: str):
        """The runtime's result for one image file, as the task's data
        sample in original-image coordinates (what the PyTorch model's
        ``predict`` returns)."""
        inputs, sample = self.preprocess(image_path)
        outputs = self.session(inputs.numpy())
        return getattr(self, f'_{self.task}')(outputs, sample)

    @staticmethod
    def _detection(outputs: list[np.ndarray], sample):
        from mmengine.structures import InstanceData
        dets, labels = (torch.from_numpy(a[0]) for a in outputs)
        found = labels >= 0
        boxes = dets[found, :4]
        # clipped to the image inside the padded input, then back to the
        # original image's pixels as mmdet rescales
        height, width = sample.img_shape[:2]
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        scale = sample.get('scale_factor', (1., 1.))
        boxes = boxes / boxes.new_tensor(tuple(scale) * 2)
        sample.pred_instances = InstanceData(
            bboxes=boxes, scores=dets[found, 4], labels=labels[found])
        return sample

    @staticmethod
    def _segmentation(outputs: list[np.ndarray], sample):
        import cv2
        from mmengine.structures import PixelData
        height, width = sample.img_shape[:2]
        labels = outputs[0][0, :height, :width].astype(np.int32)
        ori_h, ori_w = sample.ori_shape[:2]
        if (height, width) != (ori_h, ori_w):
            labels = cv2.resize(labels, (ori_w, ori_h),
                                interpolation=cv2.INTER_NEAREST)
        sample.pred_sem_seg = PixelData(
            data=torch.from_numpy(labels.astype(np.int64))[None])
        return sample

    @staticmethod
    def _classification(outputs: list[np.ndarray], sample):
        scores = torch.from_numpy(outputs[0][0])
        sample.set_pred_score(scores)
        return sample
