"""Segmentation heads (need mmseg), imported lazily through the registry's
``locations`` (``type='mmaff.AFFNetASPPHead'``); importing this module also
registers the plain names in mmseg's model registry."""
from mmseg.registry import MODELS as MMSEG_MODELS

from .. import register_alias
from .aspp_head import AFFNetASPPHead

register_alias(MMSEG_MODELS, 'AFFNetASPPHead', AFFNetASPPHead)

__all__ = ['AFFNetASPPHead']
