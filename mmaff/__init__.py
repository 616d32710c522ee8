"""mmaff: AFFNet (Adaptive Frequency Filters) for OpenMMLab 2.0."""
from . import compat
from .version import __version__

compat.apply_all()

from .utils.checkpoint import install_checkpoint_loader  # noqa: E402

# mmengine's own checkpoint loading (load_from, resume, init_cfg=Pretrained,
# the Inferencers) reports bad files as one-line CheckpointErrors.
install_checkpoint_loader()

from . import models  # noqa: E402  (registers AFFNet and its aliases)

__all__ = ['__version__', 'compat', 'models']
