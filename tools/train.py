"""Train any mmaff config (detection, segmentation or classification).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options key=value ...] [--launcher pytorch]

Multi-process: tools/dist_train.sh CONFIG NUM_PROCS (gloo on CPU).
"""
import argparse

from cli_common import config_from_args, exit_on_error, tool_parser

import mmaff  # noqa: F401  (registers AFFNet, applies the compat fixes)
from mmaff.compat import finish_distributed
from mmaff.utils.runner_setup import build_runner, enable_amp


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser('Train a model', ('config', 'config file path'))
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from CKPT, or from the latest checkpoint of the work '
        'dir when no path is given')
    parser.add_argument(
        '--amp', action='store_true', help='mixed precision (CUDA)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by the actual batch size (auto_scale_lr)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    with exit_on_error():
        cfg = config_from_args(args)
        if args.amp:
            enable_amp(cfg)
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in \
                cfg.auto_scale_lr:
            raise SystemExit('error: --auto-scale-lr needs '
                             'auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    runner = build_runner(cfg)
    runner.train()
    finish_distributed()


if __name__ == '__main__':
    main()
