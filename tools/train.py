"""Train any mmaff config (detection, segmentation or classification).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]]
        [--amp [--amp-dtype float16|bfloat16]] [--cfg-options key=value ...]
        [--launcher pytorch]

Multi-process: tools/dist_train.sh CONFIG NUM_PROCS (NCCL on GPUs, gloo on
CPU). A single-process run of a SyncBN config trains with BN.
"""
import argparse

from cli_common import (
    AMP_DTYPES,
    build_runner,
    config_from_args,
    enable_amp,
    exit_on_checkpoint_error,
    exit_on_error,
    tool_parser,
)
from mmengine.runner.checkpoint import find_latest_checkpoint

import mmaff  # noqa: F401  (registers AFFNet, applies the compat fixes)
from mmaff.checkpoint import (
    RESUME_HINT,
    check_checkpoint_file,
    check_pretrained_prefixes,
    find_resumable_checkpoint,
    install_checkpoint_loader,
)
from mmaff.compat import finish_distributed
from mmaff.engine.hooks import CheckpointFitHook


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
        '--amp', action='store_true',
        help='mixed precision on CUDA (the AFF filters stay float32)')
    parser.add_argument(
        '--amp-dtype', choices=AMP_DTYPES,
        help='what --amp computes in (default: float16, with a dynamic '
        'loss scale)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by the actual batch size (auto_scale_lr)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    # load_from, resume and init_cfg=Pretrained files that fail to load
    # give one-line errors (exit_on_checkpoint_error)
    install_checkpoint_loader()
    with exit_on_error():
        cfg = config_from_args(args)
        if args.amp:
            enable_amp(cfg, args.amp_dtype or 'float16')
        elif args.amp_dtype:
            raise ValueError('--amp-dtype is only used with --amp')
        # before the data and the model are built; mmengine would fail
        # there with a bare AssertionError
        check_pretrained_prefixes(cfg.model)
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
    resume_from = cfg.get('load_from') if cfg.get('resume') else None
    with exit_on_error():
        if cfg.get('resume') and cfg.get('load_from') is None:
            # Auto-resume (--resume, or resume=True in the config). None: a
            # new run, as mmengine has it.
            resume_from = find_resumable_checkpoint(cfg.work_dir)
            if resume_from is not None and \
                    resume_from != find_latest_checkpoint(cfg.work_dir):
                # last_checkpoint names a truncated or deleted file: resume
                # from the newest complete one instead (a warning says so)
                cfg.load_from = resume_from
        if cfg.get('load_from'):
            check_checkpoint_file(cfg.load_from)
    runner = build_runner(cfg)
    if resume_from is not None:
        # mmengine resumes with strict=False: another model's checkpoint is
        # only logged as a mismatch, and training goes on with the layers
        # that did not fit left as initialised.
        runner.register_hook(CheckpointFitHook(resume_from, hint=RESUME_HINT))
    with exit_on_checkpoint_error():
        runner.train()
    finish_distributed()


if __name__ == '__main__':
    main()
