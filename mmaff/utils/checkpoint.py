"""Checkpoint reading with errors that say what is wrong, in one line.

``torch.load`` reports a bad file in the words of its internals ("failed
finding central directory", "Unsupported operand 103", a multi-paragraph
weights_only notice). Every failure here becomes a :class:`CheckpointError`
whose message starts with ``checkpoint <path>: `` and names the problem:

- the file does not exist (:class:`CheckpointNotFoundError`, also a
  ``FileNotFoundError``) or is a directory;
- it is truncated or corrupt (empty, zip central directory missing, data
  ending early, entries failing their CRC check);
- it is not a PyTorch checkpoint (an image, a text or HTML file, a plain
  pickle, a TorchScript archive, ...);
- it needs pickle globals outside torch's ``weights_only`` allow-list
  (:class:`UnsafeCheckpointError`, also a ``pickle.UnpicklingError``): they
  are named, with how to allow them when the file is trusted. Nothing here
  ever loads with ``weights_only=False``;
- it does not fit the model (:class:`CheckpointMismatchError`): missing
  and unexpected keys, shape mismatches.

:func:`install_checkpoint_loader` (run on ``import mmaff``) routes mmengine's
own local-file loading (``load_from``, ``resume``, ``init_cfg=Pretrained``,
the Inferencers) through the same descriptions.
"""
import functools
import logging
import os
import os.path as osp
import pickle
import re
import zipfile
from collections.abc import Mapping

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

#: How many keys a mismatch message lists per kind before "...".
NUM_EXAMPLES = 3

#: Hint of :func:`check_model_fits` for evaluation and ``load_from``.
LOAD_HINT = ('Use a checkpoint of this config; load converted or partial '
             "weights through the backbone's init_cfg=dict("
             "type='Pretrained', checkpoint=..., prefix='backbone.')")
#: Hint for ``--resume``.
RESUME_HINT = 'Resume needs a checkpoint written by a run of this config'

# Runner checkpoints of mmengine's CheckpointHook (filename_tmpl defaults).
_RUNNER_CHECKPOINT = re.compile(r'^(epoch|iter)_(\d+)\.pth$')
# torch.save's legacy (non-zip) format: a pickled magic number first.
_LEGACY_MAGIC = b'\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19'


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used; the message is one line,
    ``checkpoint <path>: <problem>``.

    Args:
        path (str): The checkpoint file.
        problem (str): What is wrong with it.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f'checkpoint {path}: {problem}')

    def __reduce__(self):
        # Exceptions pickle their args; ours take (path, problem).
        return type(self), (self.path, self.problem)


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist (also a ``FileNotFoundError``, as
    mmengine's loader raised)."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The checkpoint needs globals outside torch's ``weights_only``
    allow-list (also a ``pickle.UnpicklingError``, as torch raised).

    Args:
        path (str): The checkpoint file.
        problem (str): What is wrong with it.
        globals_ (list[str], optional): The disallowed globals.
    """

    def __init__(self, path: str, problem: str,
                 globals_: list[str] | None = None) -> None:
        super().__init__(path, problem)
        self.globals = list(globals_ or [])

    def __reduce__(self):
        return type(self), (self.path, self.problem, self.globals)


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's state dict does not fit the model.

    Args:
        path (str): The checkpoint file.
        problem (str): What is wrong with it.
        missing (list[str], optional): Model keys the checkpoint lacks.
        unexpected (list[str], optional): Checkpoint keys the model lacks.
        mismatched (list[tuple], optional): ``(key, checkpoint shape,
            model shape)`` of the entries whose shapes differ.
    """

    def __init__(self,
                 path: str,
                 problem: str,
                 missing: list[str] | None = None,
                 unexpected: list[str] | None = None,
                 mismatched: list[tuple] | None = None) -> None:
        super().__init__(path, problem)
        self.missing = list(missing or [])
        self.unexpected = list(unexpected or [])
        self.mismatched = list(mismatched or [])

    def __reduce__(self):
        return type(self), (self.path, self.problem, self.missing,
                            self.unexpected, self.mismatched)


# --------------------------------------------------------------------------
# What is wrong with a file


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


def _file_problem(path: str) -> tuple[str, type] | None:
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
    found = _file_problem(path)
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
    found = _file_problem(osp.expanduser(str(path)))
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


# --------------------------------------------------------------------------
# Does it fit the model


def _examples(keys: list[str]) -> str:
    shown = ', '.join(keys[:NUM_EXAMPLES])
    return shown + (', ...' if len(keys) > NUM_EXAMPLES else '')


def _count(n: int, what: str) -> str:
    return f'{n} {what}{"" if n == 1 else "es" if what.endswith("h") else "s"}'


def _state_dict(checkpoint: Mapping, path: str) -> Mapping:
    """The state dict of a checkpoint as mmengine finds it: its
    ``state_dict`` entry, else the checkpoint itself."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(
            path, f'holds a {type(checkpoint).__name__}, not a dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(
            path, f"its 'state_dict' is a {type(state_dict).__name__}, "
            'not a dict')
    return state_dict


def _dotted(prefix: str) -> str:
    """A key prefix as mmengine matches it, ending in a dot."""
    return prefix if prefix.endswith('.') else prefix + '.'


def check_model_fits(model: torch.nn.Module,
                     checkpoint: Mapping,
                     path: str,
                     prefix: str = '',
                     revise_keys: list | tuple = ((r'^module\.', ''), ),
                     hint: str | None = LOAD_HINT) -> None:
    """Raise :class:`CheckpointMismatchError` unless the checkpoint's state
    dict fits ``model`` exactly: the same keys, each with the model's shape.

    The state dict is found as mmengine's ``load_checkpoint`` finds it: the
    ``state_dict`` entry if there is one, else the checkpoint itself, keys
    changed by ``revise_keys`` (``module.`` stripped by default). BN's
    ``num_batches_tracked`` may be missing, as mmengine allows.

    Args:
        model (torch.nn.Module): The model, or a wrapper around it (DDP).
        checkpoint (Mapping): What :func:`read_checkpoint` returned, or a
            bare state dict.
        path (str): The checkpoint's file, for the message.
        prefix (str): Use only the entries under this prefix (stripped), as
            ``init_cfg=dict(type='Pretrained', prefix=...)`` does. Defaults
            to ``''``.
        revise_keys (list | tuple): ``(pattern, replacement)`` pairs applied
            to every key with :func:`re.sub`. Defaults to stripping
            ``module.``.
        hint (str, optional): What to do instead, appended to the message.
            Defaults to :data:`LOAD_HINT`.

    Raises:
        CheckpointMismatchError: With the counts of missing and unexpected
            keys, a few of each, and the first shape mismatches
            (key, checkpoint shape, model shape).
    """
    state_dict = _state_dict(checkpoint, path)
    for pattern, replacement in revise_keys:
        state_dict = {
            re.sub(pattern, replacement, k): v
            for k, v in state_dict.items()
        }
    if prefix:
        prefix = _dotted(prefix)
        state_dict = {
            k[len(prefix):]: v
            for k, v in state_dict.items() if k.startswith(prefix)
        }
    module = model.module if is_model_wrapper(model) else model
    expected = module.state_dict()
    missing = [
        k for k in expected
        if k not in state_dict and not k.endswith('num_batches_tracked')
    ]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = []
    for key, value in expected.items():
        if key not in state_dict:
            continue
        loaded = state_dict[key]
        if not isinstance(loaded, torch.Tensor):
            mismatched.append((key, type(loaded).__name__, tuple(value.shape)))
        elif loaded.shape != value.shape:
            mismatched.append((key, tuple(loaded.shape), tuple(value.shape)))
    if not (missing or unexpected or mismatched):
        return
    problems = []
    if missing:
        problems.append(f'{_count(len(missing), "missing key")} '
                        f'({_examples(missing)})')
    if unexpected:
        problems.append(f'{_count(len(unexpected), "unexpected key")} '
                        f'({_examples(unexpected)})')
    if mismatched:
        shown = ', '.join(f'{k}: checkpoint {c}, model {m}'
                          for k, c, m in mismatched[:NUM_EXAMPLES])
        more = ', ...' if len(mismatched) > NUM_EXAMPLES else ''
        problems.append(f'{_count(len(mismatched), "shape mismatch")} '
                        f'({shown}{more})')
    under = f' under {prefix!r}' if prefix else ''
    message = (f'does not fit the model ({type(module).__name__}){under}: '
               + '; '.join(problems))
    if hint:
        message += f'. {hint}'
    raise CheckpointMismatchError(path, message, missing, unexpected,
                                  mismatched)


class CheckpointFitHook(Hook):
    """Make the Runner refuse a ``load_from`` / ``resume`` checkpoint that
    does not fit its model (mmengine loads with ``strict=False`` and only
    logs the mismatch), on every rank.

    Runs first among the ``after_load_checkpoint`` hooks, before e.g.
    EMAHook uses the state dict.

    Args:
        path (str): The checkpoint the Runner will load, for the message.
        hint (str, optional): What to do instead, appended to the message.
            Defaults to :data:`LOAD_HINT`.
    """

    priority = 'HIGHEST'

    def __init__(self, path: str, hint: str | None = LOAD_HINT) -> None:
        self.path = path
        self.hint = hint

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        check_model_fits(runner.model, checkpoint, self.path, hint=self.hint)


# --------------------------------------------------------------------------
# Auto-resume


def find_resumable_checkpoint(work_dir: str) -> str | None:
    """The checkpoint ``--resume`` (without a path) should continue from.

    mmengine resumes from the file named in ``<work_dir>/last_checkpoint``,
    which its CheckpointHook writes after each save. When that file is
    missing, truncated or empty (a crash between or during the two writes,
    a node losing unflushed data, ``max_keep_ckpts`` having removed it),
    this falls back to the newest complete ``epoch_N.pth`` / ``iter_N.pth``
    next to it (one whose zip archive is whole), with a warning.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        str | None: The checkpoint; None if there is no ``last_checkpoint``
        (a new run).

    Raises:
        CheckpointError: If ``last_checkpoint`` names an unusable file and
            no other complete checkpoint is there.
    """
    save_file = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(save_file):
        return None
    with open(save_file) as f:
        named = f.read().strip()
    if '://' in named:
        return named  # remote storage: mmengine's loader checks it
    if named:
        found = _file_problem(named)
        if found is None:
            return named
        problem = found[0]
        folder = osp.dirname(named) or work_dir
    else:
        problem = 'is empty (its write was interrupted)'
        folder = work_dir
    kind = _RUNNER_CHECKPOINT.match(osp.basename(named))
    candidates = []
    for name in os.listdir(folder) if osp.isdir(folder) else []:
        match = _RUNNER_CHECKPOINT.match(name)
        if match is None or osp.join(folder, name) == named:
            continue
        same_kind = kind is None or match[1] == kind[1]
        candidates.append((same_kind, int(match[2]), name))
    # Newest first. One newer than the named file can exist when the run
    # was killed between saving it and updating last_checkpoint; a complete
    # zip means torch.save finished writing it.
    for _, _, name in sorted(candidates, reverse=True):
        candidate = osp.join(folder, name)
        if _file_problem(candidate) is None:
            what = f'names {named}, which {problem}' if named else problem
            print_log(
                f'{save_file} {what}; resuming from {candidate}, the newest '
                'complete checkpoint there',
                logger='current',
                level=logging.WARNING)
            return candidate
    if named:
        raise CheckpointError(
            named, f'{problem} (named by {save_file}), and {folder} holds no '
            'other complete checkpoint to resume from')
    raise CheckpointError(
        save_file, f'{problem}, and {folder} holds no complete checkpoint '
        'to resume from')


# --------------------------------------------------------------------------
# mmengine's loader


def install_checkpoint_loader() -> bool:
    """Make mmengine's local-file checkpoint loader raise
    :class:`CheckpointError` instead of torch's raw errors.

    The loader registered for local paths (mmengine's ``load_from_local``)
    is wrapped, not replaced: it still does the loading, so what loads and
    what it returns, ``weights_only`` included, stay exactly mmengine's;
    only a failure is turned into a :class:`CheckpointError` (a
    ``FileNotFoundError`` for a missing file, an ``UnpicklingError`` for
    disallowed globals, as before). Safe to call more than once.

    Returns:
        bool: Whether the wrapper was installed now.
    """
    from mmengine.runner import checkpoint as mm_checkpoint
    loader_cls = mm_checkpoint.CheckpointLoader
    # The loader for local paths ('' matches every path; longer prefixes
    # such as 'http://' are tried first).
    original = getattr(loader_cls, '_schemes', {}).get(
        '', getattr(mm_checkpoint, 'load_from_local', None))
    if original is None or getattr(original, '_mmaff_errors', False):
        return False

    # ``wraps`` keeps the name: mmengine logs "Loads checkpoint by local
    # backend" from it.
    @functools.wraps(original)
    def load_from_local(filename, map_location):
        try:
            return original(filename, map_location)
        except Exception as e:  # noqa: BLE001 - every failure is described
            raise describe_failure(filename, e) from e

    load_from_local._mmaff_errors = True
    loader_cls.register_scheme('', load_from_local, force=True)
    return True


# --------------------------------------------------------------------------
# init_cfg=Pretrained with a prefix


def _pretrained_inits(cfg) -> list[Mapping]:
    """The ``init_cfg`` entries of type ``Pretrained`` anywhere in a model
    config (dicts and lists, nested)."""
    found = []
    if isinstance(cfg, Mapping):
        init = cfg.get('init_cfg')
        for entry in init if isinstance(init, (list, tuple)) else [init]:
            if isinstance(entry, Mapping) and \
                    entry.get('type') == 'Pretrained':
                found.append(entry)
        for key, value in cfg.items():
            if key != 'init_cfg':
                found += _pretrained_inits(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            found += _pretrained_inits(value)
    return found


def check_pretrained_prefixes(model_cfg: Mapping) -> None:
    """Check each ``init_cfg=dict(type='Pretrained', checkpoint=FILE,
    prefix=P)`` of a model config whose checkpoint is a local file: it must
    read, and hold weights under ``P``. mmengine would otherwise stop deep
    in the run with ``AssertionError: P is not in the pretrained model``.

    Args:
        model_cfg (Mapping): The ``model`` entry of a config.

    Raises:
        CheckpointError: If a file cannot be read or has nothing under its
            prefix (the message lists how its keys start).
    """
    for init in _pretrained_inits(model_cfg):
        path, prefix = init.get('checkpoint'), init.get('prefix')
        if not path or not prefix or '://' in str(path):
            continue
        state_dict = _state_dict(read_checkpoint(path), path)
        prefix = _dotted(prefix)
        if not any(str(key).startswith(prefix) for key in state_dict):
            starts = sorted({str(key).split('.', 1)[0] + '.'
                             for key in state_dict})
            raise CheckpointError(
                path, f"has no weights under init_cfg's prefix '{prefix}' "
                f'(its keys start with {_examples(starts)}); use one of '
                'those, or no prefix for weights of the module alone')
