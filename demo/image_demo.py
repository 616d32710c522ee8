"""Inference on your own images with any mmaff config and checkpoint.

    python demo/image_demo.py IMAGE [IMAGE|FOLDER ...] CONFIG CHECKPOINT
        [--out-dir DIR] [--device cpu|cuda|cuda:N] [--no-prepare]
        [--score-thr T] [--topk K]

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
import sys
from collections.abc import Callable

import numpy as np
import torch

import mmaff  # noqa: F401  (registers AFFNet, applies the compat fixes)
from mmaff import prepare_for_inference
from mmaff.checkpoint import CheckpointError, check_model_fits, read_checkpoint
from mmaff.checkpoint.mmengine_loader import install_checkpoint_loader
from mmaff.utils.config import SCOPE_TASKS, read_config
from mmaff.utils.device import DeviceError, pick_device
from mmaff.visualization.image_files import collect_images, run_on_images


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
        '--no-prepare', action='store_true',
        help='run the plain model instead of its inference form '
        '(mmaff.prepare_for_inference: BatchNorm folded, channels-last; '
        'results equal up to float rounding)')
    # mmdet 2.x's flag: folding is part of the default inference form now
    parser.add_argument('--fuse-conv-bn', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument(
        '--score-thr', type=float, default=0.3,
        help='detection: draw and count boxes scoring at least this')
    parser.add_argument('--topk', type=int, default=5,
                        help='classification: classes listed per image')
    return parser.parse_args(argv)


# --------------------------------------------------------------------------
# One function per task: (args, config, checkpoint) -> the model and a
# function of (image file, its RGB pixels, output file) that runs the model
# through the task's Inferencer (which reads the file with the config's test
# pipeline) and draws the result with the task's overlay (shared with
# tools/deployment/onnx_inference.py), which returns the summary line.


def detection(args, cfg,
              checkpoint: str) -> tuple[torch.nn.Module, Callable]:
    from mmdet.apis import DetInferencer

    from mmaff.visualization.overlays import DetectionOverlay, class_names
    inferencer = DetInferencer(
        model=cfg, weights=checkpoint, device=args.device,
        show_progress=False)
    meta = dict(inferencer.model.dataset_meta or {})
    meta['classes'] = class_names(meta, cfg.model.bbox_head.num_classes)
    overlay = DetectionOverlay(meta, args.score_thr, name='image_demo')

    def run(path: str, image: np.ndarray, out_file: str) -> str:
        result = inferencer(path, return_datasamples=True, no_save_vis=True)
        return overlay(image, result['predictions'][0], out_file)

    return inferencer.model, run


def segmentation(args, cfg,
                 checkpoint: str) -> tuple[torch.nn.Module, Callable]:
    from mmseg.apis import MMSegInferencer

    from mmaff.visualization.overlays import SegmentationOverlay
    inferencer = MMSegInferencer(model=cfg, weights=checkpoint,
                                 device=args.device)
    inferencer.show_progress = False
    overlay = SegmentationOverlay(inferencer.model.dataset_meta,
                                  name='image_demo')

    def run(path: str, image: np.ndarray, out_file: str) -> str:
        return overlay(image, inferencer(path, return_datasamples=True),
                       out_file)

    return inferencer.model, run


def classification(args, cfg,
                   checkpoint: str) -> tuple[torch.nn.Module, Callable]:
    from mmpretrain.apis import ImageClassificationInferencer

    from mmaff.visualization.overlays import ClassificationOverlay
    inferencer = ImageClassificationInferencer(
        model=cfg, pretrained=checkpoint, device=args.device)
    overlay = ClassificationOverlay(inferencer.classes, args.topk)

    def run(path: str, image: np.ndarray, out_file: str) -> str:
        # its __call__ always draws a progress bar over the summary lines
        data = next(iter(inferencer.preprocess([path], batch_size=1)))
        return overlay(image, inferencer.forward(data)[0], out_file)

    return inferencer.model, run


def print_error(error) -> None:
    print(f'error: {error}', file=sys.stderr)


def main(argv=None) -> int:
    args = parse_args(argv)
    # the Inferencers load through mmengine's loader: one-line errors
    install_checkpoint_loader()
    try:
        images = collect_images(args.inputs)
        try:
            args.device = pick_device(args.device)
        except DeviceError as e:
            raise ValueError(f'--device {e.device}: {e.problem}') from e
        cfg = read_config(args.config)
        scope = cfg.get('default_scope')
        if scope not in SCOPE_TASKS:
            raise ValueError(f'config {args.config} has default_scope '
                             f'{scope!r}; image_demo runs mmdet, mmseg and '
                             'mmpretrain configs')
        checkpoint = read_checkpoint(args.checkpoint)
        task = globals()[SCOPE_TASKS[scope]]
        model, infer = task(args, cfg, args.checkpoint)
        # the Inferencers load non-strictly: another model's checkpoint
        # would run with random weights where it does not fit
        check_model_fits(model, checkpoint, args.checkpoint, hint=None)
        if not args.no_prepare:
            # in place: the Inferencer holds this model
            prepare_for_inference(model, inplace=True)
    except (OSError, ValueError, CheckpointError) as e:
        print_error(e)
        return 1
    # an unreadable image is reported, and the others still run
    unreadable = run_on_images(images, args.out_dir, infer, print_error)
    return 1 if unreadable else 0


if __name__ == '__main__':
    sys.exit(main())
