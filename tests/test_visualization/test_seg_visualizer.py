"""mmaff.visualization: segmentation pictures that show what is scored."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData

from mmaff.visualization import add_caption, add_legend, add_titles

CLASSES = ('circle', 'square', 'triangle')
PALETTE = [(220, 40, 40), (40, 200, 40), (40, 60, 220)]


def is_grey(pixels: np.ndarray) -> bool:
    pixels = pixels.astype(int)
    return bool((pixels.max(-1) - pixels.min(-1) <= 2).all())


@pytest.fixture
def visualizer(request):
    from mmseg.registry import VISUALIZERS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    built = VISUALIZERS.build(
        dict(type='mmaff.SegOverlayVisualizer', name=request.node.name,
             alpha=0.6))
    built.dataset_meta = dict(classes=CLASSES, palette=PALETTE)
    return built


def sample(gt: np.ndarray | None, pred: np.ndarray):
    from mmseg.structures import SegDataSample
    data = SegDataSample()
    if gt is not None:
        data.gt_sem_seg = PixelData(data=torch.from_numpy(gt)[None])
    data.pred_sem_seg = PixelData(data=torch.from_numpy(pred)[None])
    return data


def test_ignored_pixels_are_the_same_neutral_grey_in_both_maps(visualizer):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
    gt = np.full((40, 48), 255, dtype=np.int64)  # ignored ("other")
    gt[10:30, 10:30] = 0
    # the model calls everything "triangle", also the ignored background
    pred = np.full((40, 48), 2, dtype=np.int64)
    visualizer.add_datasample('x', image, sample(gt, pred))
    picture = visualizer.get_image()
    header = 20  # one row of titles
    gt_panel = picture[header:header + 40, :48]
    pred_panel = picture[header:header + 40, 48:96]
    ignored = gt == 255
    assert picture.shape[1] == 96
    np.testing.assert_array_equal(gt_panel[ignored], pred_panel[ignored])
    assert is_grey(gt_panel[ignored])
    # scored pixels keep their colours: circle in the gt, triangle predicted
    inside = ~ignored
    assert not is_grey(gt_panel[inside]) and not is_grey(pred_panel[inside])
    assert (gt_panel[inside][:, 0] > gt_panel[inside][:, 2]).mean() > 0.9
    assert (pred_panel[inside][:, 2] > pred_panel[inside][:, 0]).mean() > 0.9
    # legend below: the two classes drawn and "ignored"
    assert picture.shape[0] > header + 40


def test_prediction_alone_has_no_grey_and_a_legend(visualizer):
    image = np.full((32, 32, 3), 90, dtype=np.uint8)
    pred = np.zeros((32, 32), dtype=np.int64)
    pred[:, 16:] = 1
    visualizer.add_datasample('y', image, sample(None, pred), draw_gt=False)
    picture = visualizer.get_image()
    assert picture.shape[1] == 32 and picture.shape[0] > 32
    assert not is_grey(picture[:32].reshape(-1, 3))


def test_legend_caption_and_titles_grow_the_picture():
    image = np.zeros((20, 120, 3), dtype=np.uint8)
    legend = add_legend(image, [(name, color)
                                for name, color in zip(CLASSES, PALETTE)] * 3)
    # nine entries do not fit on one 120-pixel row
    assert legend.shape[0] >= 20 + 2 * 16
    np.testing.assert_array_equal(legend[:20], image)
    swatch_colors = {tuple(int(v) for v in px)
                     for px in legend[20:].reshape(-1, 3)}
    assert set(map(tuple, PALETTE)) <= swatch_colors
    caption = add_caption(image, ['a long line of words ' * 3])
    assert caption.shape[0] >= 20 + 3 * 16  # wrapped
    titled = add_titles([image, image], ['a', 'b'])
    assert titled.shape == (20 + 20, 240, 3)
