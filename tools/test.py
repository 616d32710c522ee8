"""Evaluate a checkpoint with any mmaff config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE.pkl]
        [--show-dir DIR] [--device cpu|cuda|cuda:N] [--no-prepare] [--compile]
        [--cfg-options key=value ...] [--launcher pytorch]
"""
import argparse

from cli_common import (
    build_runner,
    config_from_args,
    device_option,
    enable_visualization,
    exit_on_checkpoint_error,
    exit_on_error,
    place_runner_model,
    tool_parser,
)

import mmaff  # noqa: F401  (registers AFFNet, applies the compat fixes)
from mmaff.checkpoint import check_checkpoint_file, install_checkpoint_loader
from mmaff.compat import finish_distributed
from mmaff.engine.hooks import CheckpointFitHook, PrepareForInferenceHook


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser('Test a checkpoint', ('config', 'config file path'),
                         ('checkpoint', 'checkpoint file'))
    parser.add_argument(
        '--out', help='dump the raw predictions to this pickle file')
    parser.add_argument(
        '--show-dir', help='write prediction drawings to this directory')
    parser.add_argument(
        '--no-prepare', action='store_true',
        help='test the plain model instead of its inference form '
        '(mmaff.prepare_for_inference: BatchNorm folded, channels-last; '
        'results equal up to float rounding)')
    parser.add_argument(
        '--compile', action='store_true',
        help='also torch.compile the prepared backbone and neck')
    # mmdet 2.x's flag: folding is part of the default inference form now
    parser.add_argument('--fuse-conv-bn', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument(
        '--device',
        help='cpu, cuda or cuda:N for a single-process run (default: the '
        'first GPU when there is one, else cpu)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.compile and args.no_prepare:
        raise SystemExit('error: --compile needs the prepared model; drop '
                         '--no-prepare')
    # a checkpoint that fails to load gives a one-line error
    # (exit_on_checkpoint_error)
    install_checkpoint_loader()
    with exit_on_error():
        # A missing, truncated or foreign file fails here, in a second,
        # before the data and the model are built.
        check_checkpoint_file(args.checkpoint)
        device = None if args.device is None else device_option(args.device)
        cfg = config_from_args(args)
        if args.show_dir:
            enable_visualization(cfg, args.show_dir)
    cfg.load_from = args.checkpoint
    if args.out:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise SystemExit('error: --out must be a .pkl file')
        evaluator = cfg.test_evaluator
        evaluators = list(evaluator) if isinstance(evaluator, list) else \
            [evaluator]
        evaluators.append(dict(type='DumpResults', out_file_path=args.out))
        cfg.test_evaluator = evaluators
    runner = build_runner(cfg)
    if device is not None:
        with exit_on_error():
            place_runner_model(runner, device)
    # mmengine loads load_from with strict=False, so a checkpoint of another
    # model would be evaluated with random weights where it does not fit.
    runner.register_hook(CheckpointFitHook(args.checkpoint))
    if not args.no_prepare:
        runner.register_hook(PrepareForInferenceHook(compile=args.compile))
    with exit_on_checkpoint_error():
        runner.test()
    finish_distributed()


if __name__ == '__main__':
    main()
