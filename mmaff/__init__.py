"""mmaff: AFFNet (Adaptive Frequency Filters) for OpenMMLab 2.0."""
from . import compat
from .version import __version__

compat.apply_all()

from . import models  # noqa: E402  (registers AFFNet and its aliases)
from .deployment.prepare import prepare_for_inference  # noqa: E402

__all__ = ['__version__', 'compat', 'models', 'prepare_for_inference']
