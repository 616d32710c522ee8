"""Visualizers (need mmseg), imported lazily through the registry's
``locations`` (``type='mmaff.SegOverlayVisualizer'``); importing this module
also registers the plain name in mmseg's visualizer registry. Without mmseg
it imports but holds the mmseg-free drawing helpers only."""
from mmaff import registry

from .legend import add_caption, add_legend, add_titles, enlarge_factor

__all__ = [
    'SegOverlayVisualizer', 'add_caption', 'add_legend', 'add_titles',
    'enlarge_factor'
]
if registry.package_available('mmseg', __name__, ['SegOverlayVisualizer'],
                              registry.VISUALIZERS):
    from .seg_visualizer import SegOverlayVisualizer

    registry.register_downstream_aliases(['SegOverlayVisualizer'])
