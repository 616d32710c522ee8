"""mmaff models.

Importing this module (e.g. through ``custom_imports``) also registers
``AFFNet`` under its plain name in the model registries of mmdet, mmseg and
mmpretrain, when they are installed, so ``type='AFFNet'`` works under their
``default_scope``. ``type='mmaff.AFFNet'`` works everywhere without that.

The classification head :class:`DropoutLinearClsHead` builds on mmpretrain,
which stays optional: without it the head is ``None`` and not registered.
When available it is registered as ``mmaff.DropoutLinearClsHead`` and, under
its plain name, in mmpretrain's registry.
"""
import importlib

from .backbones import AFFNet, switch_dft_mode
from .layers import AdaptiveFrequencyFilter

try:
    from .heads import DropoutLinearClsHead
except ImportError:  # mmpretrain is not installed (or cannot be imported)
    DropoutLinearClsHead = None

DOWNSTREAM_SCOPES = ('mmdet', 'mmseg', 'mmpretrain')


def _register_alias(registry, name: str, module: type) -> bool:
    """Register ``module`` as ``name`` unless the name is taken.

    Returns:
        bool: Whether ``name`` now resolves to ``module`` in ``registry``.
    """
    existing = registry.module_dict.get(name)
    if existing is None:
        registry.register_module(name=name, module=module)
        existing = module
    return existing is module


def register_downstream_aliases() -> list[str]:
    """Register AFFNet in each installed downstream model registry, and
    ``DropoutLinearClsHead`` in mmpretrain's.

    An existing entry of the same name (another package's AFFNet) is left in
    place rather than overwritten.

    Returns:
        list[str]: Scopes in which ``AFFNet`` now resolves to this class.
    """
    scopes = []
    for scope in DOWNSTREAM_SCOPES:
        try:
            registry = importlib.import_module(f'{scope}.registry').MODELS
        except ImportError:
            continue
        if _register_alias(registry, 'AFFNet', AFFNet):
            scopes.append(scope)
        if scope == 'mmpretrain' and DropoutLinearClsHead is not None:
            _register_alias(registry, 'DropoutLinearClsHead',
                            DropoutLinearClsHead)
    return scopes


register_downstream_aliases()

__all__ = [
    'AFFNet', 'AdaptiveFrequencyFilter', 'DropoutLinearClsHead',
    'register_downstream_aliases', 'switch_dft_mode'
]
