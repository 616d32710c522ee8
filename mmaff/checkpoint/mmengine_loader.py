"""One-line checkpoint errors from mmengine's own loading, on request."""
import functools

from .reading import describe_failure


def install_checkpoint_loader() -> bool:
    """Make mmengine's local-file checkpoint loader raise
    :class:`~mmaff.checkpoint.errors.CheckpointError` instead of torch's raw
    errors.

    This changes global state, so nothing calls it for you (``import mmaff``
    does not): a script that wants one-line errors from mmengine's own
    loading (``load_from``, ``resume``, ``init_cfg=Pretrained``,
    ``load_checkpoint``, the Inferencers) calls it once at its start, as
    ``tools/train.py``, ``tools/test.py`` and ``demo/image_demo.py`` do.

    What it changes: the loader mmengine's ``CheckpointLoader`` registered
    for local paths (scheme ``''``, mmengine's ``load_from_local``) is
    replaced by a wrapper, for every later load in this process. The
    wrapper still calls mmengine's loader, so what loads and what it
    returns, ``weights_only`` included, stay exactly mmengine's; only a
    failure is turned into a ``CheckpointError`` (a ``FileNotFoundError``
    for a missing file, an ``UnpicklingError`` for disallowed globals, as
    before). Remote schemes (``http://``, ``s3://``, ...) are untouched.
    Safe to call more than once; there is no undo.

    Returns:
        bool: Whether the wrapper was installed now (False if it already
        was, or this mmengine has no local loader to wrap).
    """
    from mmengine.runner import checkpoint as mm_checkpoint
    loader_cls = mm_checkpoint.CheckpointLoader
    # The loader for local paths ('' matches every path; longer prefixes
    # such as 'http://' are tried first).
    original = getattr(loader_cls, '_schemes', {}).get(
        '', getattr(mm_checkpoint, 'load_from_local', None))
    if original is None or getattr(original, '_mmaff_errors', False):
        return False

    # ``wraps`` keeps the name: mmengine logs "Loads checkpoint by local
    # backend" from it.
    @functools.wraps(original)
    def load_from_local(filename, map_location):
        try:
            return original(filename, map_location)
        except Exception as e:  # noqa: BLE001 - every failure is described
            raise describe_failure(filename, e) from e

    load_from_local._mmaff_errors = True
    loader_cls.register_scheme('', load_from_local, force=True)
    return True
