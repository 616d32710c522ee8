"""Segmentation heads (need mmseg), imported lazily through the registry's
``locations`` (``type='mmaff.AFFNetASPPHead'``); importing this module also
registers the plain names in mmseg's model registry. Without mmseg it
imports but holds nothing; asking for a head names the missing package."""
from mmaff import registry

__all__ = ['AFFNetASPPHead']
if registry.package_available('mmseg', __name__, __all__, registry.MODELS):
    from .aspp_head import AFFNetASPPHead

    registry.register_downstream_aliases(__all__)
