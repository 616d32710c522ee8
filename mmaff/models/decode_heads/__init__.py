"""Segmentation heads (need mmseg), imported lazily through the registry's
``locations`` (``type='mmaff.AFFNetASPPHead'``); importing this module also
registers the plain names in mmseg's model registry. Without mmseg it
imports but holds nothing; asking for a head names the missing package."""
from mmaff.utils.optional import import_error, missing_getattr

__all__ = ['AFFNetASPPHead']
_error = import_error('mmseg')
if _error is None:
    from mmseg.registry import MODELS as MMSEG_MODELS

    from .. import register_alias
    from .aspp_head import AFFNetASPPHead

    register_alias(MMSEG_MODELS, 'AFFNetASPPHead', AFFNetASPPHead)
else:
    from mmaff.registry import MODELS

    __getattr__ = missing_getattr(__name__, 'mmseg', __all__, _error,
                                  MODELS)
