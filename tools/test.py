"""Evaluate a checkpoint with any mmaff config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE.pkl]
        [--show-dir DIR] [--cfg-options key=value ...] [--launcher pytorch]
"""
import argparse
import os.path as osp

from cli_common import config_from_args, exit_on_error, tool_parser

import mmaff  # noqa: F401  (registers AFFNet, applies the compat fixes)
from mmaff.compat import finish_distributed
from mmaff.utils.runner_setup import build_runner, enable_visualization


def parse_args(argv=None) -> argparse.Namespace:
    parser = tool_parser('Test a checkpoint', ('config', 'config file path'),
                         ('checkpoint', 'checkpoint file'))
    parser.add_argument(
        '--out', help='dump the raw predictions to this pickle file')
    parser.add_argument(
        '--show-dir', help='write prediction drawings to this directory')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'error: checkpoint {args.checkpoint} does not '
                         'exist')
    with exit_on_error():
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
    runner.test()
    finish_distributed()


if __name__ == '__main__':
    main()
