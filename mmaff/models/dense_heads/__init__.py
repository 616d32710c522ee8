"""Detection heads (need mmdet), imported lazily through the registry's
``locations`` (``type='mmaff.SSDHeadWithLossCls'``); importing this module
also registers the plain names in mmdet's model registry. Without mmdet it
imports but holds nothing; asking for a head names the missing package."""
from mmaff import registry

__all__ = ['SSDHeadWithLossCls']
if registry.package_available('mmdet', __name__, __all__, registry.MODELS):
    from .ssd_head import SSDHeadWithLossCls

    registry.register_downstream_aliases(__all__)
