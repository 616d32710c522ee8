"""Convert an official AFFNet checkpoint (microsoft/TokenMixers) to mmaff.

Usage:
    python tools/model_converters/affnet_official_to_mmaff.py SRC DST \
        [--arch et] [--force]

The result holds ``{'meta': ..., 'state_dict': ...}`` with ``backbone.*`` and
``head.fc.*`` keys. It is written in OpenMMLab's published-name form,
``<DST stem>-<first 8 hex digits of its sha256>.pth`` next to DST (as
mmpretrain's ``tools/model_converters/publish_model.py`` names files), e.g.
DST ``affnet-et_in1k.pth`` gives ``affnet-et_in1k-1a2b3c4d.pth``; when DST is
an existing directory the file is named after the variant inside it
(``affnet-et_in1k``, ``affnet-t_in1k`` or ``affnet_in1k``). That is the form
``torch.hub.load_state_dict_from_url(..., check_hash=True)`` verifies, so the
file can be published under its name as it is. The final path and the full
sha256 (a line ``sha256 <64 hex digits>``) are printed.

The file is written to a temporary name and renamed, so an interrupted run
leaves no truncated checkpoint; an existing file is never replaced without
``--force``. Load the result into the mmpretrain classifier configs, or into
detectors / segmentors with ``init_cfg=dict(type='Pretrained',
checkpoint=FILE, prefix='backbone.')`` (which also take the official file
as published, converting it on load). Exits non-zero with one ``error:``
line when SRC cannot be read (missing, truncated, not a checkpoint, ...) or
does not match the AFFNet layout (offending keys counted, the first named).
"""
import argparse
import hashlib
import os
import os.path as osp
import sys

import torch

# File stems of the ImageNet-1k classifiers, after mmpretrain's
# `<model>_in1k` naming; used when DST is a directory.
PUBLISHED_STEMS = {
    'et': 'affnet-et_in1k',
    't': 'affnet-t_in1k',
    'base': 'affnet_in1k',
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='official checkpoint (.pt / .pth)')
    parser.add_argument(
        'dst',
        help='name stem and folder of the mmaff checkpoint (written as '
        '<stem>-<sha256[:8]>.pth), or an existing folder')
    parser.add_argument(
        '--arch',
        default=None,
        help='et, t or base (inferred from the weights by default)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='overwrite the output file if it exists')
    return parser.parse_args(argv)


def file_sha256(path: str) -> str:
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def output_stem(dst: str, arch: str) -> str:
    """Path of the output file without its ``-<hash>.pth`` ending."""
    if osp.isdir(dst):
        return osp.join(dst, PUBLISHED_STEMS.get(arch, f'affnet-{arch}_in1k'))
    stem, ext = osp.splitext(dst)
    # Only checkpoint extensions are dropped: a stem such as
    # 'affnet-et_in1k.v2' keeps its dot part.
    return stem if ext in ('.pth', '.pt') else dst


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
    stem = output_stem(args.dst, arch)
    folder = osp.dirname(stem) or '.'
    if not osp.isdir(folder):
        print(f'error: {folder} is not a directory', file=sys.stderr)
        return 2
    # The name holds the file's hash, known only once it is written: write
    # a temporary file in the same folder (so the rename is atomic), hash
    # it, then rename it. An interrupted run leaves no truncated checkpoint
    # under a published name.
    tmp = f'{stem}.tmp-{os.getpid()}'
    try:
        torch.save(dict(meta=meta, state_dict=state_dict), tmp)
        sha256 = file_sha256(tmp)
        final = f'{stem}-{sha256[:8]}.pth'
        if osp.exists(final) and not args.force and \
                osp.abspath(final) != osp.abspath(args.src):
            print(f'error: {final} exists; pass --force to overwrite it',
                  file=sys.stderr)
            return 2
        os.replace(tmp, final)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    print(f'converted {len(state_dict)} tensors ({num_params:,} parameters) '
          f'of AFFNet arch {arch!r} to {final}')
    print(f'sha256 {sha256}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
