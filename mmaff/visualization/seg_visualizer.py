"""A segmentation visualizer whose pictures do not hide what is scored."""
import numpy as np
import torch
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from mmaff.registry import VISUALIZERS

from .legend import add_legend, add_titles, enlarge_factor

#: colour of the pixels the data set ignores, in the legend as well
IGNORE_COLOR = (128, 128, 128)


def neutral(picture: np.ndarray, image: np.ndarray,
            mask: np.ndarray) -> np.ndarray:
    """``picture`` with the pixels of ``mask`` shown as a grey, washed-out
    copy of ``image``: visibly no class, but the content still readable."""
    out = picture.copy()
    gray = image[mask].astype(np.float32).mean(axis=-1, keepdims=True)
    out[mask] = (0.35 * gray + 0.65 * np.array(IGNORE_COLOR)).astype(
        np.uint8)
    return out


@VISUALIZERS.register_module()
class SegOverlayVisualizer(SegLocalVisualizer):
    """mmseg's ``SegLocalVisualizer`` with two changes that keep a picture
    from misleading.

    - Pixels the data set ignores (``ignore_index`` in the ground truth,
      e.g. ADE20K's "other" with ``reduce_zero_label``) are not scored, and
      a model trained without them still assigns them one of its classes.
      They are drawn the same neutral grey in the ground truth and in the
      prediction, instead of dark in one and coloured in the other.
    - Titles over the ground-truth and prediction panels, and a legend
      naming the colour of every class drawn (and of "ignored"), instead
      of names written into the map.

    Args:
        name (str): Instance name (mmengine's visualizers are managed
            instances). Defaults to 'visualizer'.
        ignore_index (int): Ground-truth value of ignored pixels.
            Defaults to 255 (mmseg's).
        show_input (bool): Put the input image, undrawn, first.
            Defaults to False.
        min_size (int): Enlarge smaller images (nearest, by a whole
            factor) until their longer side has this many pixels, so that
            titles and legend fit. Defaults to 0: drawn at the image size.
        **kwargs: ``SegLocalVisualizer``'s arguments (``name``,
            ``vis_backends``, ``save_dir``, ``classes``, ``palette``,
            ``alpha``...).
    """

    # mmengine's visualizers are instances managed by `name`, which the
    # signature must therefore name.
    def __init__(self,
                 name: str = 'visualizer',
                 ignore_index: int = 255,
                 show_input: bool = False,
                 min_size: int = 0,
                 **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.ignore_index = ignore_index
        self.show_input = show_input
        self.min_size = min_size

    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: SegDataSample | None = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: str | None = None,
                       step: int = 0,
                       with_labels: bool = False) -> None:
        """Draw the ground truth and/or prediction of ``data_sample`` on
        ``image`` and show, save or log it as
        ``SegLocalVisualizer.add_datasample`` does.

        Args:
            name (str): Picture name (for the vis backends).
            image (np.ndarray): RGB image the maps belong to.
            data_sample (SegDataSample, optional): Holds ``gt_sem_seg``
                and/or ``pred_sem_seg``.
            draw_gt (bool): Draw the ground truth. Defaults to True.
            draw_pred (bool): Draw the prediction. Defaults to True.
            show (bool): Show in a window. Defaults to False.
            wait_time (float): Seconds the window stays. Defaults to 0.
            out_file (str, optional): Write the picture there instead of
                to the vis backends.
            step (int): Global step for the vis backends. Defaults to 0.
            with_labels (bool): Also write class names into the map
                (mmseg's way). Defaults to False: the legend names them.
        """
        classes = self.dataset_meta.get('classes')
        palette = self.dataset_meta.get('palette')
        if data_sample is None or classes is None or palette is None:
            raise ValueError('SegOverlayVisualizer needs a data sample and '
                             'dataset_meta with classes and palette')
        maps = {}
        if draw_gt and 'gt_sem_seg' in data_sample:
            maps['ground truth'] = data_sample.gt_sem_seg.data[0]
        if draw_pred and 'pred_sem_seg' in data_sample:
            maps['prediction'] = data_sample.pred_sem_seg.data[0]
        if not maps:
            raise ValueError('nothing to draw: the data sample has no '
                             'gt_sem_seg / pred_sem_seg (or drawing is off)')
        gt = data_sample.gt_sem_seg.data[0] if 'gt_sem_seg' in data_sample \
            else None
        factor = enlarge_factor(image.shape, self.min_size)
        if factor > 1:

            def enlarge(label_map: torch.Tensor) -> torch.Tensor:
                return label_map.repeat_interleave(
                    factor, 0).repeat_interleave(factor, 1)

            image = image.repeat(factor, 0).repeat(factor, 1)
            maps = {key: enlarge(m) for key, m in maps.items()}
            gt = enlarge(gt) if gt is not None else None
        ignored = None
        if gt is not None and all(m.shape == gt.shape
                                  for m in maps.values()):
            ignored = (gt == self.ignore_index).cpu().numpy()
        panels, present = [], set()
        for label_map in maps.values():
            label_map = label_map.cpu()
            if ignored is not None:
                label_map = label_map.masked_fill(
                    torch.from_numpy(ignored), self.ignore_index)
            present |= {
                int(i)
                for i in label_map.unique() if 0 <= int(i) < len(classes)
            }
            panel = self._draw_sem_seg(image, self._pixel_data(label_map),
                                       classes, palette, with_labels)
            if ignored is not None and ignored.any():
                panel = neutral(panel, image, ignored)
            panels.append(panel)
        titles = list(maps)
        if self.show_input:
            panels.insert(0, image)
            titles.insert(0, 'image')
        picture = add_titles(panels, titles) if len(panels) > 1 else \
            panels[0]
        entries = [(classes[i], palette[i]) for i in sorted(present)]
        if ignored is not None and ignored.any():
            entries.append(('ignored (not scored)', IGNORE_COLOR))
        picture = add_legend(picture, entries)
        self.set_image(picture)
        if show:
            self.show(picture, win_name=name, wait_time=wait_time)
        if out_file is not None:
            import mmcv
            mmcv.imwrite(mmcv.rgb2bgr(picture), out_file)
        else:
            self.add_image(name, picture, step)

    @staticmethod
    def _pixel_data(label_map: torch.Tensor):
        from mmengine.structures import PixelData
        return PixelData(data=label_map[None])
