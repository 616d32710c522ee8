"""Reading checkpoint files with errors that say what is wrong, in one line.

``torch.load`` reports a bad file in the words of its internals ("failed
finding central directory", "Unsupported operand 103", a multi-paragraph
weights_only notice). Every failure here becomes a
:class:`~mmaff.checkpoint.errors.CheckpointError` whose message starts with
``checkpoint <path>: `` and names the problem:

- the file does not exist (:class:`CheckpointNotFoundError`, also a
  ``FileNotFoundError``) or is a directory;
- it is truncated or corrupt (empty, zip central directory missing, data
  ending early, entries failing their CRC check);
- it is not a PyTorch checkpoint (an image, a text or HTML file, a plain
  pickle, a TorchScript archive, ...);
- it needs pickle globals outside torch's ``weights_only`` allow-list
  (:class:`UnsafeCheckpointError`, also a ``pickle.UnpicklingError``): they
  are named, with how to allow them when the file is trusted. Nothing here
  ever loads with ``weights_only=False``.
"""
import os.path as osp
import pickle
import re
import zipfile
from collections.abc import Mapping

import torch

from .errors import (
    CheckpointError,
    CheckpointNotFoundError,
    UnsafeCheckpointError,
)

# torch.save's legacy (non-zip) format: a pickled magic number first.
_LEGACY_MAGIC = b'\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19'


def _one_line(text: str, limit: int = 200) -> str:
    """The first non-empty line of ``text``, shortened to ``limit``."""
    line = next((s.strip() for s in str(text).splitlines() if s.strip()),
                '')
    return line if len(line) <= limit else line[:limit - 3] + '...'


def _size(path: str) -> str:
    return f'{osp.getsize(path):,} bytes'


def _looks_like(head: bytes) -> str:
    """What a file that is no checkpoint seems to be, from its first
    bytes."""
    signatures = [
        (b'\xff\xd8\xff', 'a JPEG image'),
        (b'\x89PNG\r\n\x1a\n', 'a PNG image'),
        (b'GIF8', 'a GIF image'),
        (b'\x1f\x8b', 'a gzip file (unpack it first)'),
        (b'7z\xbc\xaf', 'a 7-zip archive (unpack it first)'),
        (b'\x93NUMPY', 'a NumPy .npy file'),
        (b'\x89HDF', 'an HDF5 file (Keras / h5py weights)'),
    ]
    for magic, name in signatures:
        if head.startswith(magic):
            return name
    if len(head) >= 10 and head[8:10] == b'{"':
        return ('a safetensors file (read it with '
                'safetensors.torch.load_file and save the dict with '
                'torch.save)')
    if head.startswith(b'\x80'):
        return 'a plain pickle (torch.save writes a zip archive)'
    # 64 bytes may end inside a multi-byte character: ignore the last 3
    text = head.decode('utf-8', errors='replace')
    if '\ufffd' not in text[:-3] and all(
            c.isprintable() or c in '\t\r\n\ufffd' for c in text):
        start = text.lstrip().lower()
        if start.startswith(('<!doctype html', '<html', '<?xml', '<head')):
            return 'an HTML/XML page (a failed download?)'
        return f'a text file starting with {_one_line(text, 40)!r}'
    return f'of an unknown format (first bytes {head[:8].hex(" ")})'


def file_problem(path: str) -> tuple[str, type] | None:
    """What a cheap look at the file finds wrong with it as a checkpoint,
    with the error class to raise; None if nothing (the file may still fail
    to load)."""
    if not osp.exists(path):
        return 'does not exist', CheckpointNotFoundError
    if osp.isdir(path):
        return 'is a directory, not a checkpoint file', CheckpointError
    try:
        with open(path, 'rb') as f:
            head = f.read(64)
    except OSError as e:
        return f'cannot be opened ({e.strerror or e})', CheckpointError
    if not head:
        return ('is truncated: the file is empty (0 bytes), e.g. a save '
                'that was interrupted'), CheckpointError
    if head.startswith(b'PK'):
        return _zip_problem(path)
    if head.startswith(_LEGACY_MAGIC):
        return None  # torch's pre-1.6 format; only loading can check it
    if zipfile.is_zipfile(path):
        # found by the central directory at the end
        return ('is corrupt: a zip archive whose start is damaged '
                f'({_size(path)}); copy it again or use another checkpoint'), \
            CheckpointError
    return f'is not a PyTorch checkpoint: it is {_looks_like(head)}', \
        CheckpointError


def _zip_problem(path: str) -> tuple[str, type] | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        # The central directory sits at the very end: any cut removes it.
        return (f'is truncated or corrupt: the zip central directory is '
                f'missing ({_size(path)}); the save or copy that wrote it '
                'was probably interrupted'), CheckpointError
    if not any(n.endswith('/data.pkl') and n.count('/') == 1 for n in names):
        return ('is a zip archive but not a PyTorch checkpoint (it has no '
                'data.pkl)'), CheckpointError
    if any(n.endswith('/constants.pkl') for n in names):
        return ('is a TorchScript archive, not a checkpoint: load it with '
                'torch.jit.load'), CheckpointError
    return None


def _corrupt_zip(path: str) -> str | None:
    """What is damaged in a zip checkpoint whose central directory is
    intact: the first entry failing its CRC check, or the zip error; None
    if every entry passes (or the file is no zip)."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        return f'its zip data is damaged ({_one_line(e) or type(e).__name__})'
    return None if bad is None else f'zip entry {bad} fails its CRC check'


def _unsafe_globals(path: str, message: str) -> list[str]:
    """The globals of the checkpoint that ``weights_only`` loading rejects.

    Asks torch (which also counts :func:`torch.serialization.
    add_safe_globals`) and falls back to the names in torch's message.
    """
    get = getattr(torch.serialization, 'get_unsafe_globals_in_checkpoint',
                  None)
    if get is not None:
        try:
            return sorted(get(path))
        except Exception:  # noqa: BLE001 - legacy format; use the message
            pass
    return sorted(set(re.findall(r'GLOBAL ([\w.]+) was not an allowed',
                                 message)))


def _weights_only_detail(message: str) -> str:
    """The reason inside torch's multi-paragraph weights_only notice."""
    match = re.search(r'WeightsUnpickler error:\s*(.+)', message)
    return _one_line(match.group(1)) if match else _one_line(message)


def describe_failure(path: str, exc: BaseException) -> CheckpointError:
    """The :class:`CheckpointError` for a failed ``torch.load`` of
    ``path``.

    Args:
        path (str): The file that failed to load.
        exc (BaseException): What ``torch.load`` (or mmengine's loader)
            raised.

    Returns:
        CheckpointError: The error to raise (``from exc``).
    """
    path = osp.expanduser(str(path))
    found = file_problem(path)
    if found is not None:
        problem, cls = found
        return cls(path, problem)
    message = str(exc)
    corrupt = None
    if isinstance(exc, pickle.UnpicklingError) and \
            'weights only' in message.lower():
        names = _unsafe_globals(path, message)
        if names:
            return UnsafeCheckpointError(
                path,
                f'needs pickle globals outside torch\'s weights_only '
                f'allow-list: {", ".join(names)}. If you trust the file, '
                'allow them before loading with torch.serialization.'
                f'add_safe_globals([{", ".join(names)}]) (e.g. in a module '
                "of the config's custom_imports); mmaff never loads with "
                'weights_only=False', names)
        corrupt = _corrupt_zip(path)
        if corrupt is None:
            return UnsafeCheckpointError(
                path, 'cannot be loaded with weights_only=True: '
                f'{_weights_only_detail(message)}')
    corrupt = corrupt or _corrupt_zip(path)
    if corrupt is not None:
        return CheckpointError(
            path, f'is corrupt: {corrupt} ({_size(path)}); copy it again or '
            'use another checkpoint')
    if isinstance(exc, EOFError) or re.search(
            r'unexpected EOF|pickle data was truncated|Ran out of input',
            message):
        return CheckpointError(
            path, f'is truncated: the data ends early ({_size(path)}); the '
            'save or copy that wrote it was probably interrupted')
    if 'PytorchStreamReader' in message:
        detail = message.split('. This is an internal miniz error')[0]
        return CheckpointError(path, f'is corrupt: {_one_line(detail)}')
    if 'Invalid magic number' in message:
        return CheckpointError(
            path, 'is not a PyTorch checkpoint: it is a pickle without '
            "torch.save's header")
    return CheckpointError(
        path, f'cannot be read: {type(exc).__name__}: {_one_line(message)}')


def check_checkpoint_file(path: str) -> None:
    """Raise :class:`CheckpointError` if a cheap look at ``path`` (no
    unpickling) shows it is no usable checkpoint: missing, a directory,
    empty or truncated, or another kind of file.

    Tools call it before building a Runner so that a bad file fails in a
    second; a file that passes can still fail to load.

    Args:
        path (str): Checkpoint file; URLs and other non-local paths (with
            ``://``) are not checked.

    Raises:
        CheckpointError: Naming the file and the problem.
    """
    if '://' in str(path):
        return
    found = file_problem(osp.expanduser(str(path)))
    if found is not None:
        problem, cls = found
        raise cls(path, problem)


def read_checkpoint(path: str, map_location='cpu') -> dict:
    """Load a checkpoint file with ``weights_only=True``.

    Args:
        path (str): Checkpoint file.
        map_location: As for :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        dict: The checkpoint (a state dict or a runner checkpoint).

    Raises:
        CheckpointError: If it cannot be read, or holds no dict; the message
            names the file and the problem.
    """
    path = osp.expanduser(str(path))
    # First the cheap checks: torch.load warns before it fails on some files
    # (TorchScript archives).
    check_checkpoint_file(path)
    try:
        checkpoint = torch.load(
            path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure gets described
        raise describe_failure(path, e) from e
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(
            path, f'holds a {type(checkpoint).__name__}, not a dict (a state '
            'dict or a runner checkpoint)')
    return checkpoint
