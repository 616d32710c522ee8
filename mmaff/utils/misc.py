"""Small process-level utilities."""
import ctypes
import ctypes.util

import torch

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4


def tune_malloc(mmap_threshold: int = 32 << 20) -> bool:
    """Keep freed activation buffers in glibc's heap instead of returning
    them to the OS, so that every forward does not page-fault fresh memory
    in again (what jemalloc/tcmalloc do for PyTorch CPU inference).

    Affects the whole process, i.e. every model run in it alike.

    Args:
        mmap_threshold (int): Blocks up to this size come from the heap.
            Defaults to 32 MiB, the most glibc allows.

    Returns:
        bool: Whether glibc accepted the settings (False on other C
        libraries).
    """
    name = ctypes.util.find_library('c')
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
        ok = ok and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
        # Above the largest threshold glibc allows (32 MiB), blocks would
        # still be mmap-ed and faulted in on every call: serve all from the
        # heap.
        ok = ok and libc.mallopt(_M_MMAP_MAX, 0)
    except (OSError, AttributeError):
        return False
    return bool(ok)


def is_traced() -> bool:
    """Whether the call is being exported to ONNX, traced or scripted by
    TorchScript, or compiled: eager-only shortcuts must stay out of such
    graphs."""
    return (torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()
            or torch.jit.is_scripting() or torch.compiler.is_compiling())
