"""Convert an official AFFNet checkpoint (microsoft/TokenMixers) to mmaff.

Usage:
    python tools/model_converters/affnet_official_to_mmaff.py SRC DST \
        [--arch et]

The result holds ``{'meta': ..., 'state_dict': ...}`` with ``backbone.*`` and
``head.fc.*`` keys: load it into the mmpretrain classifier configs, or into
detectors / segmentors with ``init_cfg=dict(type='Pretrained',
checkpoint=DST, prefix='backbone.')``. Exits non-zero with one ``error:``
line when SRC cannot be read (missing, truncated, not a checkpoint, ...) or
does not match the AFFNet layout (offending keys counted, the first named).
"""
import argparse
import os
import os.path as osp
import sys

import torch


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='official checkpoint (.pt / .pth)')
    parser.add_argument('dst', help='where to write the mmaff checkpoint')
    parser.add_argument(
        '--arch',
        default=None,
        help='et, t or base (inferred from the weights by default)')
    parser.add_argument(
        '--force', action='store_true', help='overwrite DST if it exists')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmaff.checkpoint import (
        CheckpointConversionError,
        CheckpointError,
        convert_official_state_dict,
        infer_arch,
        read_checkpoint,
        unwrap_state_dict,
    )
    if osp.exists(args.dst) and not args.force and \
            osp.abspath(args.dst) != osp.abspath(args.src):
        print(f'error: {args.dst} exists; pass --force to overwrite it',
              file=sys.stderr)
        return 2
    try:
        # Official files are bare tensors: the safe loader reads them.
        checkpoint = read_checkpoint(args.src)
    except CheckpointError as e:
        # "cannot read checkpoint SRC: <problem>"
        print(f'error: cannot read {e}', file=sys.stderr)
        return 1
    try:
        arch = args.arch or infer_arch(unwrap_state_dict(checkpoint))
        state_dict = convert_official_state_dict(checkpoint, arch)
    except CheckpointConversionError as e:
        print(f'error: checkpoint {args.src}: {e}', file=sys.stderr)
        return 1
    num_params = sum(v.numel() for k, v in state_dict.items()
                     if not k.endswith(('running_mean', 'running_var',
                                        'num_batches_tracked')))
    meta = dict(arch=arch, converted_from=osp.basename(args.src))
    # Written next to DST, then renamed over it: an interrupted run leaves
    # no truncated DST (nor a truncated SRC when converting in place).
    tmp = f'{args.dst}.tmp-{os.getpid()}'
    try:
        torch.save(dict(meta=meta, state_dict=state_dict), tmp)
        os.replace(tmp, args.dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    print(f'converted {len(state_dict)} tensors ({num_params:,} parameters) '
          f'of AFFNet arch {arch!r} to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
