"""Run an exported model on your images in an ONNX runtime.

    python tools/deployment/onnx_inference.py MODEL.onnx CONFIG
        IMAGE [IMAGE|FOLDER ...] [--out-dir outputs]
        [--backend onnxruntime|openvino] [--score-thr 0.3] [--topk 5]
        [--threads N]

MODEL.onnx is an end-to-end export of CONFIG
(``tools/deployment/export_onnx.py CONFIG --postprocess``). Each image is
read with the config's test pipeline and data preprocessor, run in the
runtime and drawn as ``demo/image_demo.py`` draws PyTorch results (boxes,
label map with legend, top-K classes) into ``<out-dir>/<stem>.png``, with
one summary line per image. Boxes and label maps are in the original
image's pixels.

A static export takes one input size: an image the pipeline resizes to
something smaller is padded (bottom and right, as batches are); a larger
one is scaled down to fit, keeping its aspect ratio, and a note says so.
"""
import argparse
import os.path as osp
import sys

import mmaff  # noqa: F401  (registers AFFNet, applies the compat fixes)
from mmaff.deployment.inference import ExportedModel
from mmaff.deployment.runtime import BACKENDS
from mmaff.utils.config import read_config
from mmaff.visualization.image_files import collect_images, run_on_images


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('model', help='ONNX file (export_onnx.py '
                        '--postprocess)')
    parser.add_argument('config', help='its config (or shipped config name)')
    parser.add_argument('inputs', nargs='+',
                        help='image files and/or folders of images')
    parser.add_argument('--out-dir', default='outputs',
                        help='where the overlay PNGs go (default: outputs)')
    parser.add_argument('--backend', choices=BACKENDS,
                        default='onnxruntime')
    parser.add_argument('--threads', type=int, default=None,
                        help='runtime threads (default: the runtime\'s)')
    parser.add_argument(
        '--score-thr', type=float, default=0.3,
        help='detection: draw and count boxes scoring at least this')
    parser.add_argument('--topk', type=int, default=5,
                        help='classification: classes listed per image')
    return parser.parse_args(argv)


def build_overlay(model: ExportedModel, args):
    from mmaff.visualization import overlays
    if model.task == 'detection':
        return overlays.DetectionOverlay(model.meta, args.score_thr,
                                         name='onnx_inference')
    if model.task == 'segmentation':
        return overlays.SegmentationOverlay(model.meta,
                                            name='onnx_inference')
    return overlays.ClassificationOverlay(model.meta.get('classes'),
                                          args.topk)


def print_error(error) -> None:
    print(f'error: {error}', file=sys.stderr)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if not osp.isfile(args.model):
            raise FileNotFoundError(f'model {args.model} does not exist')
        images = collect_images(args.inputs)
        cfg = read_config(args.config)
        model = ExportedModel(args.model, cfg, args.backend, args.threads)
        overlay = build_overlay(model, args)
    except (OSError, ValueError, RuntimeError) as e:
        print_error(e)
        return 1

    def infer(path: str, image, out_file: str) -> str:
        sample = model.predict(path)
        if sample.get('resized_to_fit'):
            print(f'note: {path} scaled to {sample.img_shape[1]}x'
                  f'{sample.img_shape[0]} to fit the exported input size '
                  f'{model.input_shape[1]}x{model.input_shape[0]}')
        return overlay(image, sample, out_file)

    # an unreadable image is reported, and the others still run
    unreadable = run_on_images(images, args.out_dir, infer, print_error)
    return 1 if unreadable else 0


if __name__ == '__main__':
    sys.exit(main())
