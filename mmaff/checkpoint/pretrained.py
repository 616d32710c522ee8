"""ImageNet weights for an AFFNet backbone from any of the files users have.

:func:`load_pretrained_backbone` is what ``init_cfg=dict(type='Pretrained',
checkpoint=FILE_OR_URL, prefix='backbone.')`` does on an
:class:`~mmaff.models.AFFNet`. It reads

- an official checkpoint as published (TokenMixers / ml-cvnets keys, bare or
  under ``state_dict`` / ``model`` / ``model_ema``, ``module.`` prefixes
  allowed): detected from its keys and converted on load with the
  converter's checks;
- a converted mmaff file (``tools/model_converters/
  affnet_official_to_mmaff.py``);
- a runner checkpoint of an mmaff classifier, detector or segmentor.

Every file is checked before anything is loaded: another AFFNet variant's
weights stop with one line naming both, missing or mis-shaped weights with
one line counting them. A local path is read with ``weights_only=True`` (the
globals mmengine writes into runner checkpoints are allowed by
:mod:`mmaff.compat`, F2). An ``http(s)://`` checkpoint is downloaded once
into torch.hub's cache (``<torch hub dir>/checkpoints/<file name>``, where
mmengine's loader keeps it too) and read the same way; a download is
checked before it is kept, so a broken one (cut short, an HTML page, a
wrong hash in a ``name-<sha256 prefix>.pth`` name) gives one line and
leaves nothing in the cache. Other schemes (``s3://``, ``open-mmlab://``,
...) go through mmengine's ``CheckpointLoader``.
"""
import hashlib
import os
import os.path as osp
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlparse

import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.logging import print_log

from .errors import CheckpointError, CheckpointMismatchError
from .fitting import check_model_fits, examples
from .official import (
    CheckpointConversionError,
    convert_official_state_dict,
    infer_arch,
    is_converted,
)
from .reading import read_checkpoint

#: Display names of the variants, as the paper has them.
ARCH_NAMES = {'et': 'AFFNet-ET', 't': 'AFFNet-T', 'base': 'AFFNet'}
#: Where the paper's authors publish the ImageNet weights (OneDrive links).
OFFICIAL_README = ('https://github.com/microsoft/TokenMixers/tree/main/'
                   'Adaptive%20Frequency%20Filters')
#: Where the detection and segmentation configs look for each variant's
#: ImageNet weights: the official file saved under this name.
DEFAULT_WEIGHTS = {
    'et': 'checkpoints/affnet-et_in1k.pt',
    't': 'checkpoints/affnet-t_in1k.pt',
    'base': 'checkpoints/affnet_in1k.pt',
}
# torch.hub's published-name form: <name>-<first hex digits of sha256>.<ext>
_HASH_IN_NAME = re.compile(r'-([0-9a-f]{8,64})\.[^.]+$')
_CHUNK = 1 << 20


def _is_url(path) -> bool:
    return str(path).startswith(('http://', 'https://'))


def _download(url: str, dst: str) -> str:
    """Write ``url`` to ``dst``; return its sha256. Raises
    :class:`CheckpointError` naming the URL when the server refuses or the
    body ends before its Content-Length (urllib does not check that)."""
    request = urllib.request.Request(url, headers={'User-Agent': 'mmaff'})
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(request, timeout=60) as response, \
                open(dst, 'wb') as f:
            expected = response.headers.get('Content-Length')
            while chunk := response.read(_CHUNK):
                f.write(chunk)
                digest.update(chunk)
                received += len(chunk)
    except urllib.error.HTTPError as e:
        raise CheckpointError(
            url, f'cannot be downloaded: HTTP {e.code} {e.reason}') from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, 'reason', None) or e
        raise CheckpointError(url, f'cannot be downloaded: {reason}') from e
    if expected is not None and received != int(expected):
        raise CheckpointError(
            url, f'download is broken: it ended after {received:,} of '
            f'{int(expected):,} bytes')
    return digest.hexdigest()


def download_checkpoint(url: str, map_location='cpu') -> tuple[dict, str]:
    """The checkpoint at ``url``, from torch.hub's cache or downloaded into
    it.

    A download goes to a temporary file next to the cached one and is
    renamed to it only when it reads as a checkpoint (and matches the
    sha256 prefix its name may carry). In a distributed run rank 0
    downloads, the others wait for it.

    Args:
        url (str): ``http://`` or ``https://`` address.
        map_location: As for :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        tuple[dict, str]: The checkpoint and the cached file.

    Raises:
        CheckpointError: One line naming the URL (or the cached file, when
            a file already in the cache does not read).
    """
    model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(urlparse(url).path))
    rank, world_size = get_dist_info()
    failure = None
    if rank == 0 and not osp.exists(cached):
        try:
            _fetch_into_cache(url, cached, map_location)
        except CheckpointError as e:
            failure = e
    if world_size > 1:
        barrier()  # also when rank 0 failed: the others must not hang
    if failure is not None:
        raise failure
    if not osp.exists(cached):
        raise CheckpointError(url, 'cannot be downloaded: rank 0 failed')
    return read_checkpoint(cached, map_location), cached


def _fetch_into_cache(url: str, cached: str, map_location) -> None:
    os.makedirs(osp.dirname(cached), exist_ok=True)
    tmp = f'{cached}.{os.getpid()}.part'
    print(f'Downloading: "{url}" to {cached}', file=sys.stderr)
    try:
        sha256 = _download(url, tmp)
        named = _HASH_IN_NAME.search(osp.basename(cached))
        if named and not sha256.startswith(named[1]):
            raise CheckpointError(
                url, f'download is broken: its sha256 starts with '
                f'{sha256[:len(named[1])]}, its name says {named[1]}')
        try:
            read_checkpoint(tmp, map_location)
        except CheckpointError as e:
            raise CheckpointError(
                url, f'download is broken: it {e.problem}') from e
        os.replace(tmp, cached)
    except CheckpointError as e:
        raise CheckpointError(
            e.path, f'{e.problem}; nothing was kept in {osp.dirname(cached)}'
        ) from e
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def fetch_checkpoint(filename: str, map_location='cpu') -> dict:
    """Read a checkpoint from a local path or URL (see the module
    docstring)."""
    filename = str(filename)
    if _is_url(filename):
        return download_checkpoint(filename, map_location)[0]
    if '://' in filename:
        from mmengine.runner.checkpoint import CheckpointLoader
        return CheckpointLoader.load_checkpoint(filename, map_location)
    return read_checkpoint(filename, map_location)


def _missing_hint(path: str) -> str:
    """What to do about a missing default weights file."""
    for arch, default in DEFAULT_WEIGHTS.items():
        if osp.normpath(path).endswith(osp.normpath(default)):
            return (f'. Download {ARCH_NAMES[arch]}\'s ImageNet weights '
                    f'from {OFFICIAL_README} and save the file there (no '
                    'conversion needed), pass another file or URL with '
                    '--cfg-options model.backbone.init_cfg.checkpoint=..., '
                    'or checkpoint=None to train from scratch')
    return ''


def backbone_weights(checkpoint: Mapping, path: str,
                     prefix: str | None) -> tuple[dict, str]:
    """The backbone's state dict in a checkpoint, with where it came from.

    Args:
        checkpoint (Mapping): What :func:`fetch_checkpoint` returned.
        path (str): The file or URL, for messages.
        prefix (str, optional): Take the entries under this prefix
            (stripped), as mmengine's ``PretrainedInit`` does; official
            files are classifiers, whose backbone is always taken.

    Returns:
        tuple[dict, str]: The state dict and ``'official'`` or ``'mmaff'``.
    """
    state_dict = checkpoint
    # mmengine writes 'state_dict'; official files come bare or wrapped
    for wrapper in ('state_dict', 'model', 'model_ema'):
        if isinstance(checkpoint.get(wrapper), Mapping):
            state_dict = checkpoint[wrapper]
            break
    state_dict = {
        k[len('module.'):] if k.startswith('module.') else k: v
        for k, v in state_dict.items()
    }
    layout = 'mmaff'
    if not is_converted(state_dict) and any(
            k.startswith(('conv_1.', 'layer_1.')) for k in state_dict):
        try:
            state_dict = convert_official_state_dict(state_dict)
        except CheckpointConversionError as e:
            raise CheckpointError(path, f'is an official AFFNet checkpoint '
                                  f'that does not convert: {e}') from e
        layout, prefix = 'official', 'backbone.'
    if not prefix:
        return state_dict, layout
    prefix = prefix if prefix.endswith('.') else prefix + '.'
    found = {
        k[len(prefix):]: v
        for k, v in state_dict.items() if k.startswith(prefix)
    }
    if not found:
        starts = sorted({k.split('.', 1)[0] + '.' for k in state_dict})
        raise CheckpointError(
            path, f"has no weights under init_cfg's prefix '{prefix}' (its "
            f'keys start with {examples(starts)}); use one of those, or no '
            'prefix for weights of the module alone')
    return found, layout


def read_backbone_weights(path: str,
                          prefix: str | None,
                          map_location='cpu') -> tuple[dict, str]:
    """:func:`fetch_checkpoint`, then :func:`backbone_weights`; a missing
    default weights file says where to get it."""
    try:
        loaded = fetch_checkpoint(path, map_location)
    except CheckpointError as e:
        if not osp.exists(path) and not _is_url(path):
            raise type(e)(e.path, e.problem + _missing_hint(path)) from e
        raise
    return backbone_weights(loaded, path, prefix)


def _arch(state_dict: Mapping) -> str | None:
    """The variant whose stage widths a backbone state dict has; None for
    other widths."""
    try:
        return infer_arch({f'backbone.{k}': v for k, v in state_dict.items()})
    except CheckpointConversionError:
        return None


def load_pretrained_backbone(backbone: torch.nn.Module,
                             checkpoint: str,
                             prefix: str | None = 'backbone.',
                             map_location='cpu') -> None:
    """Load ImageNet (or any AFFNet) weights into an AFFNet backbone.

    Args:
        backbone (torch.nn.Module): An :class:`~mmaff.models.AFFNet`.
        checkpoint (str): Local path or URL (see the module docstring).
        prefix (str, optional): Where the backbone sits in the checkpoint's
            state dict. Defaults to ``'backbone.'``.
        map_location: As for :func:`torch.load`. Defaults to ``'cpu'``.

    Raises:
        CheckpointError: If the file cannot be read, has nothing under
            ``prefix`` or is an official file that does not convert.
        CheckpointMismatchError: If it holds another variant's weights, or
            weights that do not fit the backbone.
    """
    path = str(checkpoint)
    state_dict, layout = read_backbone_weights(path, prefix, map_location)
    own, theirs = _arch(backbone.state_dict()), _arch(state_dict)
    if own and theirs and own != theirs:
        raise CheckpointMismatchError(
            path, f'holds {ARCH_NAMES[theirs]} weights but the backbone is '
            f"{ARCH_NAMES[own]} (arch='{own}'): use {ARCH_NAMES[own]}'s "
            f"weights, or set model.backbone.arch='{theirs}'")
    if getattr(backbone, 'conv_1x1_exp', True) is None:
        # the expansion conv is built only when its output is asked for
        state_dict = {
            k: v
            for k, v in state_dict.items()
            if not k.startswith('conv_1x1_exp.')
        }
    check_model_fits(backbone, {'state_dict': state_dict}, path,
                     revise_keys=(), hint=None)
    backbone.load_state_dict(state_dict, strict=False)
    name = ARCH_NAMES.get(own, 'AFFNet')
    print_log(
        f'Loaded {len(state_dict)} {name} backbone tensors from {path}'
        f'{" (official layout, converted)" if layout == "official" else ""}',
        logger='current')
