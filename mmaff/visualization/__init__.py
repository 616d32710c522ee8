"""Visualizers (need mmseg), imported lazily through the registry's
``locations`` (``type='mmaff.SegOverlayVisualizer'``); importing this module
also registers the plain name in mmseg's visualizer registry. Without mmseg
it imports but holds the mmseg-free drawing helpers only."""
from mmaff.utils.optional import import_error, missing_getattr

from .legend import add_caption, add_legend, add_titles, enlarge_factor

__all__ = [
    'SegOverlayVisualizer', 'add_caption', 'add_legend', 'add_titles',
    'enlarge_factor'
]
_error = import_error('mmseg')
if _error is None:
    from mmseg.registry import VISUALIZERS as MMSEG_VISUALIZERS

    from mmaff.models import register_alias

    from .seg_visualizer import SegOverlayVisualizer

    register_alias(MMSEG_VISUALIZERS, 'SegOverlayVisualizer',
                   SegOverlayVisualizer)
else:
    from mmaff.registry import VISUALIZERS

    __getattr__ = missing_getattr(__name__, 'mmseg', ['SegOverlayVisualizer'],
                                  _error, VISUALIZERS)
