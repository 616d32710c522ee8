"""mmaff models.

Importing this module (e.g. through ``custom_imports``) also registers
``AFFNet`` under its plain name in the model registries of mmdet, mmseg and
mmpretrain, when they are installed, so ``type='AFFNet'`` works under their
``default_scope``. ``type='mmaff.AFFNet'`` works everywhere without that.
"""
import importlib

from .backbones import AFFNet
from .layers import AdaptiveFrequencyFilter

DOWNSTREAM_SCOPES = ('mmdet', 'mmseg', 'mmpretrain')


def register_downstream_aliases() -> list[str]:
    """Register AFFNet in each installed downstream model registry.

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
        existing = registry.module_dict.get('AFFNet')
        if existing is None:
            registry.register_module(name='AFFNet', module=AFFNet)
            existing = AFFNet
        if existing is AFFNet:
            scopes.append(scope)
    return scopes


register_downstream_aliases()

__all__ = ['AFFNet', 'AdaptiveFrequencyFilter', 'register_downstream_aliases']
