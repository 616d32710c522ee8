"""Classification heads (need mmpretrain).

Importing this module registers the heads as ``mmaff.<Name>`` and, under
their plain names, in mmpretrain's model registry. Without mmpretrain it
imports but holds nothing; asking for a head names the missing package.
"""
from mmaff.utils.optional import import_error, missing_getattr

__all__ = ['DropoutLinearClsHead']
_error = import_error('mmpretrain')
if _error is None:
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

    from .. import register_alias
    from .dropout_linear_head import DropoutLinearClsHead

    register_alias(MMPRETRAIN_MODELS, 'DropoutLinearClsHead',
                   DropoutLinearClsHead)
else:
    from mmaff.registry import MODELS

    __getattr__ = missing_getattr(__name__, 'mmpretrain', __all__, _error,
                                  MODELS)
