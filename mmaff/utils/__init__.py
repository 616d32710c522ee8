from .misc import tune_malloc

__all__ = ['tune_malloc']
