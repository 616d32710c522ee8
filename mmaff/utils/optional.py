"""Pieces of mmaff that need a downstream package (mmdet, mmseg,
mmpretrain) are skipped when it is missing; asking for one then raises an
``ImportError`` that names the package instead of failing on ``import
mmaff``."""
import importlib
from collections.abc import Callable

from mmengine.registry import Registry

#: Downstream package -> the requirement users install for it.
REQUIREMENTS = {
    'mmdet': 'mmdet==3.3.0',
    'mmseg': 'mmsegmentation==1.2.2',
    'mmpretrain': 'mmpretrain==1.2.0',
}


def import_error(package: str) -> ImportError | None:
    """The error of importing ``package``'s registry, or None if it
    imports."""
    try:
        importlib.import_module(f'{package}.registry')
    except ImportError as error:
        return error
    return None


def _missing_error(module: str, name: str, package: str,
                   error: ImportError) -> ImportError:
    return ImportError(
        f'{module}.{name} needs {package}, which cannot be imported '
        f'({error}); install it with `pip install {REQUIREMENTS[package]}`')


def missing_getattr(
        module: str,
        package: str,
        names: list[str],
        error: ImportError,
        registry: Registry | None = None) -> Callable[[str], object]:
    """A module-level ``__getattr__`` for ``module`` whose ``names`` need
    ``package``: they raise a clear ``ImportError``, other names the usual
    ``AttributeError``.

    With ``registry``, each name is also registered there as a placeholder
    that raises the same error when a config builds it (instead of the
    registry's generic "not in the registry").
    """
    for name in names if registry is not None else ():

        def placeholder(*args, name=name, **kwargs):
            raise _missing_error(module, name, package, error) from error

        registry.register_module(name=name, module=placeholder)

    def __getattr__(name: str):
        if name in names:
            raise _missing_error(module, name, package, error) from error
        raise AttributeError(f'module {module!r} has no attribute {name!r}')

    return __getattr__
