from .misc import is_traced, tune_malloc

__all__ = ['is_traced', 'tune_malloc']
