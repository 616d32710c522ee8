"""Whether a checkpoint fits a model: :func:`check_model_fits` (the same
keys with the model's shapes) and :func:`check_pretrained_prefixes` (each
``init_cfg=Pretrained`` with a ``prefix`` has weights under it)."""
import re
from collections.abc import Mapping

import torch
from mmengine.model import is_model_wrapper

from .errors import CheckpointError, CheckpointMismatchError

#: How many keys a mismatch message lists per kind before "...".
NUM_EXAMPLES = 3

#: Hint of :func:`check_model_fits` for evaluation and ``load_from``.
LOAD_HINT = ('Use a checkpoint of this config; load converted or partial '
             "weights through the backbone's init_cfg=dict("
             "type='Pretrained', checkpoint=..., prefix='backbone.')")
#: Hint for resuming a run.
RESUME_HINT = 'Resume needs a checkpoint written by a run of this config'


def examples(items: list[str]) -> str:
    """The first :data:`NUM_EXAMPLES` of ``items``, comma-separated, with
    ``...`` if there are more."""
    shown = ', '.join(items[:NUM_EXAMPLES])
    return shown + (', ...' if len(items) > NUM_EXAMPLES else '')


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
                        f'({examples(missing)})')
    if unexpected:
        problems.append(f'{_count(len(unexpected), "unexpected key")} '
                        f'({examples(unexpected)})')
    if mismatched:
        shown = examples([f'{k}: checkpoint {c}, model {m}'
                          for k, c, m in mismatched])
        problems.append(f'{_count(len(mismatched), "shape mismatch")} '
                        f'({shown})')
    under = f' under {prefix!r}' if prefix else ''
    message = (f'does not fit the model ({type(module).__name__}){under}: '
               + '; '.join(problems))
    if hint:
        message += f'. {hint}'
    raise CheckpointMismatchError(path, message, missing, unexpected,
                                  mismatched)


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
    read, and hold weights under ``P`` (an official AFFNet file, converted
    on load, always has a backbone). mmengine would otherwise stop deep in
    the run with ``AssertionError: P is not in the pretrained model``.

    Args:
        model_cfg (Mapping): The ``model`` entry of a config.

    Raises:
        CheckpointError: If a file cannot be read or has nothing under its
            prefix (the message lists how its keys start).
    """
    # pretrained.py builds on this module
    from .pretrained import read_backbone_weights
    for init in _pretrained_inits(model_cfg):
        path, prefix = init.get('checkpoint'), init.get('prefix')
        if path and prefix and '://' not in str(path):
            read_backbone_weights(path, prefix)
