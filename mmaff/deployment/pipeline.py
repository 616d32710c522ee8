"""A config's test-time preprocessing, for running exported models.

:class:`ExportPreprocessor` reads an image file with the config's test
pipeline and normalises it with the model's data preprocessor, exactly as
``tools/test.py`` would, then fits the result to the fixed input size of a
static export.
"""
import copy
import math

import numpy as np
import torch
from mmengine.config import Config

#: Test-pipeline steps that read annotations, which user images lack.
_ANNOTATION_STEPS = ('LoadAnnotations', 'CheckSegLabels')


def _step_name(step: dict) -> str:
    return str(step.get('type', '')).split('.')[-1]


def test_pipeline_of(cfg: Config) -> list[dict]:
    """The config's test pipeline (of its test dataloader) without the
    steps that load annotations."""
    dataset = cfg.test_dataloader.dataset
    # wrappers (RepeatDataset, ConcatDataset...) hold the real one
    while 'pipeline' not in dataset and 'dataset' in dataset:
        dataset = dataset.dataset
    pipeline = dataset.get('pipeline') or cfg.get('test_pipeline')
    if not pipeline:
        raise ValueError('the config has no test pipeline '
                         '(test_dataloader.dataset.pipeline)')
    return [copy.deepcopy(step) for step in pipeline
            if _step_name(step) not in _ANNOTATION_STEPS]


def _round_up(value: float, divisor: int = 32) -> int:
    return int(math.ceil(value / divisor) * divisor)


def default_input_shape(cfg: Config) -> tuple[int, int]:
    """The (H, W) a static export of the config takes by default.

    - a fixed-size crop or resize of the test pipeline (classifiers'
      ``CenterCrop``, SSD's ``Resize(keep_ratio=False)``): that size;
    - a segmentor's data preprocessor size (its training crop);
    - a keep-ratio ``Resize(scale=(long, short))``: landscape
      ``short x long``, rounded up to a multiple of 32 (mmdeploy's static
      detection shapes).
    """
    pipeline = test_pipeline_of(cfg)
    for step in pipeline:
        if _step_name(step) == 'CenterCrop':
            size = step['crop_size']
            return (size, size) if isinstance(size, int) else (size[1],
                                                                size[0])
    preprocessor = cfg.model.get('data_preprocessor') or {}
    if preprocessor.get('size'):
        return tuple(preprocessor['size'])
    for step in pipeline:
        if _step_name(step) == 'Resize' and step.get('scale'):
            scale = step['scale']
            scale = (scale, scale) if isinstance(scale, int) else scale
            if not step.get('keep_ratio', False):
                return scale[1], scale[0]
            return _round_up(min(scale)), _round_up(max(scale))
    raise ValueError('cannot tell the input size from the config\'s test '
                     'pipeline; give it (--shape H W)')


class ExportPreprocessor:
    """Reads images as the config's test pipeline does and fits them to a
    static export's input size.

    An image the pipeline resizes to at most the export size is padded at
    the bottom and right, as the data preprocessor pads batches. A larger
    one is first scaled down, keeping its aspect ratio, until it fits
    (``resized_to_fit`` in its meta says so). A pipeline resize to a fixed
    size (``keep_ratio=False``) resizes to the export size instead.

    Args:
        cfg (Config): The model's config.
        input_shape (tuple[int, int], optional): The export's (H, W); None
            for an export with dynamic H and W (only the pipeline's own
            padding then).
    """

    def __init__(self, cfg: Config,
                 input_shape: tuple[int, int] | None) -> None:
        from mmengine.dataset import Compose
        from mmengine.registry import DefaultScope

        from mmaff.utils.config import build_model_from_config
        self.input_shape = input_shape
        pipeline = test_pipeline_of(cfg)
        for step in pipeline:
            if (_step_name(step) == 'Resize' and input_shape
                    and not step.get('keep_ratio', False)):
                step['scale'] = (input_shape[1], input_shape[0])
        scope = cfg.get('default_scope') or 'mmengine'
        __import__(f'{scope}.datasets')
        with DefaultScope.overwrite_default_scope(scope):
            self.pipeline = Compose(pipeline)
        # only the data preprocessor is needed, but the model is what
        # knows its defaults (mmpretrain's top-level data_preprocessor has
        # no type; ImageClassifier supplies it)
        self.data_preprocessor = build_model_from_config(
            cfg).data_preprocessor

    def _fit(self, data: dict) -> dict:
        import cv2
        image = data['inputs']
        height, width = image.shape[-2:]
        target_h, target_w = self.input_shape
        if height <= target_h and width <= target_w:
            return data
        factor = min(target_h / height, target_w / width)
        size = (max(1, int(width * factor + 0.5)),
                max(1, int(height * factor + 0.5)))
        pixels = cv2.resize(image.permute(1, 2, 0).numpy(), size,
                            interpolation=cv2.INTER_LINEAR)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        data['inputs'] = torch.from_numpy(
            np.ascontiguousarray(pixels.transpose(2, 0, 1)))
        sample = data['data_samples']
        meta = dict(img_shape=(size[1], size[0]), resized_to_fit=True)
        if 'scale_factor' in sample:
            sx, sy = sample.scale_factor
            meta['scale_factor'] = (sx * size[0] / width,
                                    sy * size[1] / height)
        sample.set_metainfo(meta)
        return data

    def __call__(self, path: str) -> tuple[torch.Tensor, object]:
        """The network input for one image file.

        Returns:
            tuple: The (1, 3, H, W) float input and the image's data sample
            (with ``ori_shape``, ``img_shape``, ``scale_factor``...).
        """
        data = self.pipeline(dict(img_path=path))
        if self.input_shape is not None:
            data = self._fit(data)
        batch = self.data_preprocessor(
            dict(inputs=[data['inputs']], data_samples=[data['data_samples']]),
            training=False)
        inputs, samples = batch['inputs'], batch['data_samples']
        if self.input_shape is not None:
            height, width = inputs.shape[-2:]
            target_h, target_w = self.input_shape
            # the data preprocessor pads to a size divisor (or its own
            # size) and pads with its pad value after normalising
            inputs = torch.nn.functional.pad(
                inputs, (0, target_w - width, 0, target_h - height),
                value=0.)
            # mmseg crops the padding off its logits by this
            padding = [0, target_w - width, 0, target_h - height]
            samples[0].set_metainfo(
                dict(batch_input_shape=self.input_shape,
                     pad_shape=self.input_shape, padding_size=padding))
        return inputs, samples[0]
