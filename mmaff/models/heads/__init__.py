"""Classification heads (need mmpretrain).

Importing this module registers the heads as ``mmaff.<Name>`` and, under
their plain names, in mmpretrain's model registry.
"""
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

from .. import register_alias
from .dropout_linear_head import DropoutLinearClsHead

register_alias(MMPRETRAIN_MODELS, 'DropoutLinearClsHead', DropoutLinearClsHead)

__all__ = ['DropoutLinearClsHead']
