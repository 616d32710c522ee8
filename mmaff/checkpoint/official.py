"""Conversion of official AFFNet (ml-cvnets / TokenMixers) checkpoints."""
import re
from collections import OrderedDict
from collections.abc import Mapping

import torch

from mmaff.models.backbones import AFFNet

from .fitting import examples


class CheckpointConversionError(ValueError):
    """A checkpoint does not match the AFFNet layout it should have."""


# Applied in order to every official key. Module names of mmaff: the stem,
# ``layers.<stage-1>``, ConvModule's ``conv``/``bn``, the inverted residual's
# ``expand_conv``/``depthwise_conv``/``linear_conv``, an AFF block's
# ``blocks.<j>`` and final ``norm``, and the classifier head ``head.fc``.
_KEY_RULES: list[tuple[str, str]] = [
    (r'^conv_1\.block\.', 'backbone.stem.'),
    (r'^conv_1x1_exp\.block\.', 'backbone.conv_1x1_exp.'),
    (r'^classifier\.fc\.', 'head.fc.'),
    (r'^layer_(\d+)\.', 'backbone.layers.{stage}.'),
    # The last entry of global_rep is the final GroupNorm (weight/bias
    # directly under it); the others are blocks.
    (r'\.global_rep\.\d+\.(weight|bias)$', r'.norm.\1'),
    (r'\.global_rep\.', '.blocks.'),
    (r'(^|\.)block\.exp_1x1\.block\.', r'\1expand_conv.'),
    (r'(^|\.)block\.conv_3x3\.block\.', r'\1depthwise_conv.'),
    (r'(^|\.)block\.red_1x1\.block\.', r'\1linear_conv.'),
    (r'\.(conv_proj|fusion)\.block\.', r'.\1.'),
    (r'\.(stem|conv_1x1_exp|expand_conv|depthwise_conv|linear_conv|'
     r'conv_proj|fusion)\.norm\.', r'.\1.bn.'),
]


def _map_key(key: str) -> str:
    for pattern, replacement in _KEY_RULES:
        if '{stage}' in replacement:
            key = re.sub(
                pattern,
                lambda m, r=replacement: r.format(stage=int(m[1]) - 1), key)
        else:
            key = re.sub(pattern, replacement, key)
    return key


def unwrap_state_dict(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """Take the state dict out of a ``{'state_dict': ...}``,
    ``{'model': ...}`` or ``{'model_ema': ...}`` wrapper (the first found,
    in that order) and strip DataParallel's ``module.`` prefix."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointConversionError(
            f'Expected a state dict, got {type(checkpoint).__name__}')
    for wrapper in ('state_dict', 'model', 'model_ema'):
        inner = checkpoint.get(wrapper)
        if isinstance(inner, Mapping):
            checkpoint = inner
            break
    state_dict = {}
    for key, value in checkpoint.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointConversionError(
                f'Entry {key!r} is a {type(value).__name__}, not a tensor: '
                'this is not a model state dict')
        state_dict[key[len('module.'):] if key.startswith('module.') else
                   key] = value
    if not state_dict:
        raise CheckpointConversionError('The checkpoint holds no tensors')
    return state_dict


def is_converted(state_dict: Mapping) -> bool:
    """Whether all keys already follow the mmaff classifier layout."""
    return all(k.startswith(('backbone.', 'head.')) for k in state_dict)


def infer_arch(state_dict: Mapping) -> str:
    """Name of the AFFNet variant whose stage widths the weights have."""
    converted = is_converted(state_dict)
    widths = []
    for stage in range(1, 6):
        key = (f'backbone.layers.{stage - 1}.0.linear_conv.conv.weight'
               if converted else
               f'layer_{stage}.0.block.red_1x1.block.conv.weight')
        if key not in state_dict:
            raise CheckpointConversionError(
                f'Cannot tell the AFFNet variant: {key!r} is missing')
        widths.append(state_dict[key].shape[0])
    for name, arch in AFFNet.arch_settings.items():
        if [stage[1] for stage in arch['stages']] == widths:
            return name
    raise CheckpointConversionError(
        f'Stage widths {widths} match no AFFNet variant '
        f'({sorted(AFFNet.arch_settings)}); pass arch explicitly')


def reference_shapes(arch: str | dict) -> dict[str, torch.Size]:
    """Keys and shapes of an mmaff AFFNet classifier backbone."""
    backbone = AFFNet(arch=arch, out_indices=-1, init_cfg=None)
    return {
        f'backbone.{k}': v.shape
        for k, v in backbone.state_dict().items()
    }


def check_state_dict(state_dict: Mapping,
                     arch: str | dict,
                     unmapped: list[str] | None = None,
                     sources: Mapping[str, str] | None = None) -> None:
    """Raise :class:`CheckpointConversionError` naming the missing,
    unexpected or mis-shaped entries against the mmaff layout of ``arch``:
    one line with the count and the first few of each kind.

    ``sources`` maps converted keys back to the source keys they came from,
    so messages name what the user's file holds.
    """
    sources = sources or {}

    def name(key: str) -> str:
        return f'{sources[key]} -> {key}' if key in sources else key

    expected = reference_shapes(arch)
    problems = []

    def listed(label: str, items: list[str]) -> None:
        # One line however many: the count and the first few.
        if items:
            problems.append(f'{label} ({len(items)}): {examples(items)}')

    listed('unmapped source keys', list(unmapped or []))
    listed('missing keys', sorted(set(expected) - set(state_dict)))
    listed(
        'unexpected keys',
        sorted(
            name(k) for k in state_dict if k not in expected
            and k not in ('head.fc.weight', 'head.fc.bias')))
    mismatched = [
        f'{name(k)}: {tuple(state_dict[k].shape)} (expected '
        f'{tuple(shape)})'
        for k, shape in expected.items()
        if k in state_dict and state_dict[k].shape != shape
    ]
    head = state_dict.get('head.fc.weight')
    exp_channels = expected['backbone.conv_1x1_exp.conv.weight'][0]
    if head is not None and (head.dim() != 2 or head.shape[1] != exp_channels):
        mismatched.append(f'head.fc.weight: {tuple(head.shape)} (expected '
                          f'(num_classes, {exp_channels}))')
    listed('shape mismatches', mismatched)
    if problems:
        raise CheckpointConversionError(
            f'Checkpoint does not match AFFNet arch {arch!r}: ' +
            '; '.join(problems))


def convert_official_state_dict(
        checkpoint: Mapping,
        arch: str | dict | None = None) -> 'OrderedDict[str, torch.Tensor]':
    """Convert an official AFFNet classifier state dict to mmaff keys.

    The result loads with ``strict=True`` into an mmpretrain
    ``ImageClassifier`` with an AFFNet backbone and a ``LinearClsHead``, and
    into any detector or segmentor through
    ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')``.
    Already converted state dicts are checked and returned unchanged.

    Args:
        checkpoint (Mapping): Official state dict, bare or wrapped in
            ``state_dict``/``model``, keys optionally prefixed ``module.``.
        arch (str | dict, optional): AFFNet arch; inferred from the stage
            widths when None.

    Returns:
        OrderedDict: The converted state dict.

    Raises:
        CheckpointConversionError: Unmapped, missing or unexpected keys, or
            shape mismatches, counted and the first few named in the
            message.
    """
    state_dict = unwrap_state_dict(checkpoint)
    arch = infer_arch(state_dict) if arch is None else arch
    if is_converted(state_dict):
        check_state_dict(state_dict, arch)
        return OrderedDict(state_dict)
    converted = OrderedDict()
    sources = {}
    unmapped = []
    for key, value in state_dict.items():
        new_key = _map_key(key)
        if not new_key.startswith(('backbone.', 'head.')):
            unmapped.append(key)
        elif new_key in converted:
            raise CheckpointConversionError(
                f'Two source keys map to {new_key!r}')
        else:
            converted[new_key] = value
            sources[new_key] = key
    check_state_dict(converted, arch, unmapped, sources)
    return converted
