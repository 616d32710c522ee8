"""Classification heads (need mmpretrain).

Importing this module registers the heads as ``mmaff.<Name>`` and, under
their plain names, in mmpretrain's model registry. Without mmpretrain it
imports but holds nothing; asking for a head names the missing package.
"""
from mmaff import registry

__all__ = ['DropoutLinearClsHead']
if registry.package_available('mmpretrain', __name__, __all__,
                              registry.MODELS):
    from .dropout_linear_head import DropoutLinearClsHead

    registry.register_downstream_aliases(__all__)
