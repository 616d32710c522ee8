"""Export an mmaff model to ONNX and check it against PyTorch.

    python tools/deployment/export_onnx.py CONFIG [--checkpoint CKPT]
        [--postprocess [--score-thr T] [--max-det K]] [--shape H [W]]
        [--batch-size N] [--dynamic batch shape] [--backend onnxruntime]
        [--dft fft|matmul] [--out model.onnx]

Without ``--postprocess`` it exports the tensor forward (classifier logits,
detector head maps, segmentor logits; ``--backbone-only`` for the backbone
features). With it, what users ship: detectors give final detections
(``dets`` (N, max_det, 5): boxes in input pixels and scores after the score
threshold and NMS, padded with zeros; ``labels`` (N, max_det), -1 in the
padding), segmentors the label map at the input size (``label_map``
(N, H, W)), classifiers probabilities (``probs`` (N, classes)).

The input size defaults to the config's test size (see
``mmaff.deployment.pipeline.default_input_shape``); static unless
``--dynamic`` names the batch and/or H x W. The exported model runs in the
runtime on a random input and is compared with PyTorch before the tool
reports success.

``--dft`` defaults to the mode that runs fastest in ``--backend``
(``matmul``: real DFT matrices, no ``DFT`` op); ``fft`` keeps torch.fft
as ONNX ``DFT`` (the dynamo exporter only), which dynamic H x W needs.
A segmentor's ``--postprocess`` label map takes ``--backend``'s faster
form too (channels-last resize and arg-max for onnxruntime, ``TopK`` for
OpenVINO; the same labels, see ``mmaff.deployment.label_map``).
"""
import argparse
import os.path as osp
import sys
import traceback

import numpy as np
import torch
from mmengine.config import DictAction

import mmaff  # noqa: F401  (registers AFFNet)
from mmaff.checkpoint import CheckpointError, read_checkpoint
from mmaff.checkpoint.mmengine_loader import install_checkpoint_loader
from mmaff.deployment.export import (
    DYNAMIC_AXES,
    FASTEST_DFT_MODE,
    check_exporter,
    choose_dft_mode,
    export_onnx,
    flatten_outputs,
)
from mmaff.deployment.inference import dataset_meta
from mmaff.deployment.matching import DetectionMatch, match_detections
from mmaff.deployment.pipeline import default_input_shape
from mmaff.models import DFT_MODES
from mmaff.utils.config import build_model_from_config, read_config


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config file (or shipped config name)')
    parser.add_argument('--checkpoint', help='weights to load (optional)')
    parser.add_argument(
        '--postprocess', action='store_true',
        help='export the end-to-end model: detections after NMS, label '
        'maps, probabilities')
    parser.add_argument('--score-thr', type=float, default=None,
                        help='detectors: default the config\'s '
                        'test_cfg.score_thr')
    parser.add_argument('--max-det', type=int, default=None,
                        help='detectors: detections per image; default the '
                        'config\'s test_cfg.max_per_img')
    parser.add_argument('--shape', type=int, nargs='+', default=None,
                        help='input H [W]; default the config\'s test size')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--dynamic', nargs='+', choices=DYNAMIC_AXES,
                        default=[], help='let the batch and/or H x W vary')
    parser.add_argument('--backend', choices=sorted(FASTEST_DFT_MODE),
                        default='onnxruntime',
                        help='runtime to target and to check with')
    parser.add_argument('--dft', choices=DFT_MODES, default=None,
                        help='default: the faster mode in --backend')
    parser.add_argument('--out', default=None, help='ONNX file to write')
    parser.add_argument('--opset', type=int, default=18)
    parser.add_argument('--exporter', choices=['dynamo', 'torchscript'],
                        default='dynamo')
    parser.add_argument('--backbone-only', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--atol', type=float, default=1e-4,
                        help='fail if the runtime output differs more')
    return parser.parse_args(argv)


def class_names(cfg, checkpoint: str | None) -> list[str] | None:
    """The classes the checkpoint was trained on (its meta), else those of
    the config's test set, for the export's metadata."""
    if checkpoint:
        meta = read_checkpoint(checkpoint).get('meta') or {}
        classes = (meta.get('dataset_meta') or {}).get('classes')
        if classes:
            return list(classes)
    try:
        return dataset_meta(cfg).get('classes')
    except (AttributeError, KeyError):
        return None  # a config without a test set


def compare(task: str, postprocess: bool, actual: list[np.ndarray],
            expected: list[np.ndarray], atol: float) -> tuple[float, str]:
    """The largest difference between runtime and PyTorch outputs and a
    description of it. Label outputs count differing entries instead."""
    if not postprocess or task == 'classification':
        diff = max(float(np.abs(a - e).max())
                   for a, e in zip(actual, expected))
        return diff, f'max abs diff {diff:.3e}'
    if task == 'segmentation':
        share = float((actual[0] != expected[0]).mean())
        return share, f'{100 * share:.3f}% of pixels differ'
    # Detections come out in any order among equal scores, and float
    # rounding picks between tied overlapping boxes: each runtime detection
    # needs a PyTorch one of its label within atol (box and score) in the
    # same image, or one whose score ties its own.
    (dets, labels), (ref_dets, ref_labels) = actual, expected
    match = DetectionMatch(0, 0, 0, 0.)
    for image in range(dets.shape[0]):
        match += match_detections(dets[image], labels[image],
                                  ref_dets[image], ref_labels[image], atol,
                                  atol)
    text = (f'largest gap to a matching PyTorch detection '
            f'{match.worst_gap:.3e} ({match.twins} matched, {match.ties} on '
            f'tied scores, {match.unexplained} unmatched)')
    return (np.inf if match.unexplained else match.worst_gap), text


def main(argv=None) -> int:
    args = parse_args(argv)
    # --checkpoint is loaded by mmengine's loader: one-line errors
    install_checkpoint_loader()
    try:
        if args.shape is not None and len(args.shape) not in (1, 2):
            raise ValueError('--shape takes H or H W')
        if args.backbone_only and args.postprocess:
            raise ValueError('--backbone-only and --postprocess exclude each '
                             'other')
        if args.dft is None:
            dft, why = choose_dft_mode(args.backend, tuple(args.dynamic))
        else:
            dft, why = args.dft, 'as asked'
        # before the config and model are read: fails fast
        check_exporter(args.exporter, {dft})
        cfg = read_config(args.config, args.cfg_options)
        shape = (tuple((args.shape * 2)[:2]) if args.shape else
                 default_input_shape(cfg))
        model = build_model_from_config(cfg, args.checkpoint)
        print(f'DFT mode {dft}: {why}')
        out = args.out or osp.splitext(osp.basename(args.config))[0] + \
            ('_end2end' if args.postprocess else '') + f'_{dft}.onnx'
        classes = class_names(cfg, args.checkpoint)
        export_args = (model, out, shape)
        export_kwargs = dict(
            batch_size=args.batch_size, postprocess=args.postprocess,
            backbone_only=args.backbone_only, dynamic=tuple(args.dynamic),
            dft_mode=dft, opset=args.opset, exporter=args.exporter,
            backend=args.backend,
            classes=classes, score_thr=args.score_thr, max_det=args.max_det)
    except (OSError, ValueError, CheckpointError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    try:
        module, inputs = export_onnx(*export_args, **export_kwargs)
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 (the exporters raise anything)
        # the exporter's own report first, the one-line summary last
        traceback.print_exc()
        message = str(e).strip().splitlines()
        print(f'error: the ONNX export failed: {type(e).__name__}: '
              f'{message[0] if message else ""}', file=sys.stderr)
        return 1
    from mmaff.deployment.end_to_end import task_of
    from mmaff.deployment.runtime import RuntimeSession
    with torch.no_grad():
        expected = [t.numpy() for t in flatten_outputs(module(inputs))]
    session = RuntimeSession(out, args.backend)
    actual = session(inputs.numpy())
    if len(actual) != len(expected):
        print(f'error: {args.backend} returned {len(actual)} outputs, '
              f'PyTorch {len(expected)}', file=sys.stderr)
        return 1
    import onnx
    ops = sorted({n.op_type for n in onnx.load(out).graph.node})
    print(f'exported {out} ({args.exporter} exporter, opset {args.opset}, '
          f'dft={dft}, input {tuple(inputs.shape)}'
          f'{", dynamic " + " ".join(args.dynamic) if args.dynamic else ""})')
    print('outputs: ' + ', '.join(
        f'{name} {tuple(a.shape)} {a.dtype}'
        for name, a in zip(session.output_names, actual)))
    print(f'ONNX ops: {", ".join(ops)}')
    task = task_of(model)
    diff, text = compare(task, args.postprocess, actual, expected, args.atol)
    print(f'{args.backend} vs PyTorch: {text} over {len(actual)} output(s)')
    limit = 0.001 if args.postprocess and task == 'segmentation' else \
        args.atol
    if diff > limit:
        print(f'error: difference above {limit}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
