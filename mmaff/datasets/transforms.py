"""Data transforms."""
import warnings

import numpy as np
from mmcv.transforms import BaseTransform

from mmaff.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CheckSegLabels(BaseTransform):
    """Check a loaded semantic segmentation label map and fail with a clear
    message naming the file.

    Without it, mmseg 1.2.2 handles bad label files like this:

    - label size differs from the image: training either crashes in the data
      preprocessor (``RuntimeError: stack expects each tensor to be equal
      size``) or silently trains on misaligned labels, depending on the
      random resize and crop; validation crashes in ``IoUMetric`` with
      ``IndexError: The shape of the mask ... does not match``;
    - class ids >= ``num_classes`` (other than ``ignore_index``): training
      crashes in the loss with ``IndexError: Target N is out of bounds``;
      ``IoUMetric`` silently drops those pixels;
    - colour (3-channel) label PNGs: crashes deep in the pipeline.

    None of those messages names the file. Put this transform right after
    ``LoadAnnotations`` (in mmseg's test pipelines that comes after
    ``Resize``, which leaves the labels alone, so the labels are still
    compared with the original image size ``ori_shape``). It checks, after
    ``reduce_zero_label`` has been applied:

    - the label map is 2-D and has the original image's height and width;
    - every value is in ``[0, num_classes)`` or equals ``ignore_index``.

    A missing label file needs no check: ``LoadAnnotations`` raises
    ``FileNotFoundError`` with its path. Without labels at all (inference
    pipelines, where mmseg's APIs drop ``LoadAnnotations`` and there is no
    ``seg_map_path``) the transform passes the results through.

    Required keys: ``gt_seg_map``, ``seg_map_path``, ``ori_shape`` (set by
    ``LoadImageFromFile``). Modified keys: ``gt_seg_map`` (only with
    ``invalid='ignore'``).

    Args:
        num_classes (int): Number of classes the model predicts.
        ignore_index (int): Label value the loss and metric ignore.
            Defaults to 255.
        invalid (str): What to do with out-of-range class ids: ``'raise'``
            a ``ValueError`` (default) or ``'ignore'``: set them to
            ``ignore_index`` with a warning naming the file. Size and
            channel mismatches always raise.
    """

    def __init__(self,
                 num_classes: int,
                 ignore_index: int = 255,
                 invalid: str = 'raise') -> None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f'num_classes must be a positive int, got {num_classes!r}')
        if invalid not in ('raise', 'ignore'):
            raise ValueError(
                f"invalid must be 'raise' or 'ignore', got {invalid!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.invalid = invalid

    def transform(self, results: dict) -> dict:
        if 'gt_seg_map' not in results:
            if results.get('seg_map_path') is None:
                # inference (mmseg's APIs drop LoadAnnotations): no labels
                return results
            raise KeyError('CheckSegLabels needs a loaded label map '
                           '(gt_seg_map): put it after LoadAnnotations')
        seg = results['gt_seg_map']
        path = results.get('seg_map_path', '<unknown label file>')
        img_path = results.get('img_path', '<unknown image>')
        if seg.ndim != 2:
            raise ValueError(
                f'Label map {path} has shape {seg.shape}: expected a '
                'single-channel (H, W) image of class ids. Colour-coded '
                'labels must be converted to class-index PNGs first.')
        ori_shape = results.get('ori_shape')
        if ori_shape is not None and tuple(seg.shape) != tuple(
                ori_shape[:2]):
            raise ValueError(
                f'Label map {path} is {seg.shape[0]}x{seg.shape[1]} (HxW) '
                f'but its image {img_path} is {ori_shape[0]}x'
                f'{ori_shape[1]}: a label map must have the size of its '
                'image')
        bad = (seg >= self.num_classes) & (seg != self.ignore_index)
        if bad.any():
            values = np.unique(seg[bad]).tolist()
            message = (
                f'Label map {path} has class ids {values} on '
                f'{int(bad.sum())} pixels, outside 0..{self.num_classes - 1}'
                f' (num_classes={self.num_classes}) and not ignore_index='
                f'{self.ignore_index}')
            if results.get('reduce_zero_label'):
                message += (' (after reduce_zero_label: the file holds '
                            f'{[v + 1 for v in values]})')
            if self.invalid == 'raise':
                raise ValueError(
                    message + ". Fix the file, the model's num_classes, or "
                    "use CheckSegLabels(invalid='ignore')")
            warnings.warn(message + f'; set to {self.ignore_index}',
                          stacklevel=2)
            seg = seg.copy()
            seg[bad] = self.ignore_index
            results['gt_seg_map'] = seg
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index}, '
                f"invalid='{self.invalid}')")
