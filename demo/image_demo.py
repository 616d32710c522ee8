"""Inference on your own images with any mmaff config and checkpoint.

    python demo/image_demo.py IMAGE [IMAGE|FOLDER ...] CONFIG CHECKPOINT
        [--out-dir DIR] [--device cpu|cuda] [--score-thr T] [--topk K]

The config's ``default_scope`` picks the task: mmdet's ``DetInferencer``
(boxes with class names and scores), mmseg's ``MMSegInferencer`` (coloured
label map with a legend) or mmpretrain's ``ImageClassificationInferencer``
(top-K classes). Writes one overlay PNG per image into ``--out-dir`` and
prints a one-line summary per image. CONFIG may also be the file name of a
config shipped with mmaff. Bad input (a missing or unreadable image, a
missing or bad checkpoint, a checkpoint of another model) stops with one
``error:`` line.
"""
import argparse
import os
import os.path as osp
import sys
from collections.abc import Callable

import numpy as np
import torch

import mmaff  # noqa: F401  (registers AFFNet, applies the compat fixes)
from mmaff.utils.checkpoint import (
    CheckpointError,
    check_model_fits,
    read_checkpoint,
)
from mmaff.utils.runner_setup import read_config

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
TASKS = {'mmdet': 'detection', 'mmseg': 'segmentation',
         'mmpretrain': 'classification'}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('inputs', nargs='+',
                        help='image files and/or folders of images')
    parser.add_argument('config', help='config file (or shipped config name)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-dir', default='outputs',
                        help='where the overlay PNGs go (default: outputs)')
    parser.add_argument(
        '--device', default=None,
        help='cpu, cuda or cuda:N (default: cuda when available, else cpu)')
    parser.add_argument(
        '--score-thr', type=float, default=0.3,
        help='detection: draw and count boxes scoring at least this')
    parser.add_argument('--topk', type=int, default=5,
                        help='classification: classes listed per image')
    return parser.parse_args(argv)


def collect_images(inputs: list[str]) -> list[str]:
    """The image files among ``inputs``: files as given, folders expanded
    to the images in them (sorted).

    Raises:
        FileNotFoundError: For a path that does not exist or a folder
            without images.
    """
    images = []
    for path in inputs:
        if osp.isdir(path):
            found = sorted(
                osp.join(path, name) for name in os.listdir(path)
                if name.lower().endswith(IMAGE_SUFFIXES))
            if not found:
                raise FileNotFoundError(
                    f'folder {path} holds no image '
                    f'({", ".join(IMAGE_SUFFIXES)})')
            images += found
        elif osp.isfile(path):
            images.append(path)
        else:
            raise FileNotFoundError(f'image {path} does not exist')
    return images


def read_image(path: str) -> np.ndarray:
    """The image as RGB uint8.

    Raises:
        ValueError: If it cannot be decoded.
    """
    import cv2
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ValueError(f'cannot read image {path}: not an image file, or '
                         'corrupt')
    return image[:, :, ::-1]


def pick_device(device: str | None) -> str:
    if device is None:
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise ValueError(f'--device {device}: torch sees no CUDA device')
    if not device.startswith(('cpu', 'cuda')):
        raise ValueError(f'--device {device}: use cpu, cuda or cuda:N')
    return device


def output_names(images: list[str]) -> list[str]:
    """``<stem>.png`` per image, numbered where stems repeat."""
    stems = [osp.splitext(osp.basename(path))[0] for path in images]
    names = []
    for i, stem in enumerate(stems):
        names.append(f'{stem}.png' if stems.count(stem) == 1 else
                     f'{stem}_{i}.png')
    return names


def percent(share: float) -> str:
    return f'{100 * share:.1f}%' if share >= 0.0005 else '<0.1%'


def class_names(meta: dict | None, num: int) -> list[str]:
    classes = (meta or {}).get('classes')
    return list(classes) if classes else [str(i) for i in range(num)]


# --------------------------------------------------------------------------
# One function per task: (args, config, checkpoint) -> the model and a
# function of (image file, its RGB pixels, output file) that runs the model
# through the task's Inferencer (which reads the file with the config's test
# pipeline), writes the overlay and returns the summary line.

#: Small images are drawn enlarged to this size, so that the text fits.
MIN_SIZE = 256


def detection(args, cfg,
              checkpoint: str) -> tuple[torch.nn.Module, Callable]:
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(
        model=cfg, weights=checkpoint, device=args.device,
        show_progress=False)
    visualizer = inferencer.visualizer
    classes = class_names(inferencer.model.dataset_meta,
                          cfg.model.bbox_head.num_classes)

    def run(path: str, image: np.ndarray, out_file: str) -> str:
        result = inferencer(path, return_datasamples=True, no_save_vis=True)
        sample = result['predictions'][0]
        visualizer.add_datasample('image', image, sample, draw_gt=False,
                                  pred_score_thr=args.score_thr,
                                  out_file=out_file)
        instances = sample.pred_instances
        instances = instances[instances.scores >= args.score_thr]
        summary = f'{len(instances)} boxes scoring >= {args.score_thr:g}'
        if len(instances):
            names = [classes[int(label)] for label in instances.labels]
            counts = sorted({name: names.count(name)
                             for name in names}.items(),
                            key=lambda item: -item[1])
            best = instances.scores.argsort(descending=True)[:3]
            summary += (' (' + ', '.join(f'{n} {c}' for n, c in counts) +
                        '); best: ' + ', '.join(
                            f'{names[int(i)]} {float(instances.scores[i]):.2f}'
                            for i in best))
        return summary

    return inferencer.model, run


def segmentation(args, cfg,
                 checkpoint: str) -> tuple[torch.nn.Module, Callable]:
    from mmseg.apis import MMSegInferencer

    from mmaff.visualization import SegOverlayVisualizer
    inferencer = MMSegInferencer(model=cfg, weights=checkpoint,
                                 device=args.device)
    inferencer.show_progress = False
    meta = inferencer.model.dataset_meta
    visualizer = SegOverlayVisualizer(name='image_demo', alpha=0.6,
                                      min_size=MIN_SIZE)
    # not through __init__: mmseg 1.2.2 passes classes and palette on to
    # set_dataset_meta swapped
    visualizer.dataset_meta = dict(classes=meta['classes'],
                                   palette=meta['palette'])

    num_classes = len(meta['classes'])
    # Pixels of no class the model knows (ADE20K's "other", VOC's
    # background when it is ignored) still get one of its classes: say so
    # under the picture rather than let the colour pass for an answer.
    caption = [f'each pixel: the likeliest of the {num_classes} classes '
               '(none of them means "other")']

    def run(path: str, image: np.ndarray, out_file: str) -> str:
        import mmcv

        from mmaff.visualization import add_caption
        sample = inferencer(path, return_datasamples=True)
        labels = sample.pred_sem_seg.data[0]
        visualizer.add_datasample('image', image, sample, draw_gt=False)
        mmcv.imwrite(add_caption(visualizer.get_image(), caption)[:, :, ::-1],
                     out_file)
        ids, counts = labels.unique(return_counts=True)
        order = counts.argsort(descending=True)
        shares = [f'{meta["classes"][int(ids[i])]} '
                  f'{percent(float(counts[i]) / labels.numel())}'
                  for i in order]
        return (f'{labels.shape[1]}x{labels.shape[0]} label map, '
                f'{len(shares)} classes: ' + ', '.join(shares[:8]) +
                (', ...' if len(shares) > 8 else ''))

    return inferencer.model, run


def classification(args, cfg,
                   checkpoint: str) -> tuple[torch.nn.Module, Callable]:
    from mmpretrain.apis import ImageClassificationInferencer

    from mmaff.visualization import add_caption, enlarge_factor
    inferencer = ImageClassificationInferencer(
        model=cfg, pretrained=checkpoint, device=args.device)

    def run(path: str, image: np.ndarray, out_file: str) -> str:
        import mmcv
        # its __call__ always draws a progress bar over the summary lines
        data = next(iter(inferencer.preprocess([path], batch_size=1)))
        sample = inferencer.forward(data)[0]
        scores = sample.pred_score.float()
        classes = list(inferencer.classes or range(len(scores)))
        top = scores.topk(min(args.topk, len(scores)))
        lines = [f'{classes[int(i)]} {float(s):.2f}'
                 for s, i in zip(top.values, top.indices)]
        scale = enlarge_factor(image.shape, MIN_SIZE)
        picture = image.repeat(scale, 0).repeat(scale, 1)
        picture = add_caption(
            picture, [f'{k + 1}. {line}' for k, line in enumerate(lines)])
        mmcv.imwrite(picture[:, :, ::-1], out_file)
        return f'top-{len(lines)}: ' + ', '.join(lines)

    return inferencer.model, run


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        images = collect_images(args.inputs)
        args.device = pick_device(args.device)
        cfg = read_config(args.config)
        scope = cfg.get('default_scope')
        if scope not in TASKS:
            raise ValueError(f'config {args.config} has default_scope '
                             f'{scope!r}; image_demo runs mmdet, mmseg and '
                             'mmpretrain configs')
        checkpoint = read_checkpoint(args.checkpoint)
        model, infer = globals()[TASKS[scope]](args, cfg, args.checkpoint)
        # the Inferencers load non-strictly: another model's checkpoint
        # would run with random weights where it does not fit
        check_model_fits(model, checkpoint, args.checkpoint, hint=None)
    except (OSError, ValueError, CheckpointError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    os.makedirs(args.out_dir, exist_ok=True)
    failed = 0
    for path, name in zip(images, output_names(images)):
        try:
            image = read_image(path)
        except ValueError as e:
            # the other images are still worth running
            print(f'error: {e}', file=sys.stderr)
            failed += 1
            continue
        out_file = osp.join(args.out_dir, name)
        print(f'{path}: {infer(path, image, out_file)} -> {out_file}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
