"""Faster CPU inference for any mm model: BatchNorm folded into the
convolutions (:func:`fuse_for_inference`) and glibc's allocator kept from
returning activation buffers to the OS (:func:`tune_malloc`).

``tools/benchmarks/speed.py`` measures what both gain (docs/benchmarks.md).
"""
import ctypes
import ctypes.util

import torch
import torch.nn as nn
from mmengine.hooks import Hook

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


def fuse_for_inference(model: nn.Module,
                       channels_last: bool = True) -> nn.Module:
    """Inference form of any mm model: eval mode, every BatchNorm that
    follows a convolution folded into it (mmcv's ``fuse_conv_bn``), and
    channels-last weights.

    Outputs equal the unfused model's up to float rounding. Load weights
    before, since folding removes the BN entries from the state dict.

    Args:
        model (nn.Module): The model, changed in place.
        channels_last (bool): Also convert the weights to channels-last
            (feed channels-last inputs then). Defaults to True.

    Returns:
        nn.Module: ``model``.
    """
    from mmcv.cnn import fuse_conv_bn
    model.eval()
    fuse_conv_bn(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


class FuseForInferenceHook(Hook):
    """Runner hook behind ``tools/test.py --fuse-conv-bn``: once the
    checkpoint is loaded, before the first test batch, apply
    :func:`fuse_for_inference` to the runner's model.

    Results equal the unfused model's up to float rounding; the model then
    cannot train any more (the BN layers are gone), which a test run never
    needs.

    Args:
        channels_last (bool): Also switch to channels-last weights.
            Defaults to True.
    """

    priority = 'LOWEST'

    def __init__(self, channels_last: bool = True) -> None:
        self.channels_last = channels_last

    def before_test(self, runner) -> None:
        model = runner.model
        # a DDP-wrapped model (tools/dist_test.sh) keeps the network in .module
        model = getattr(model, 'module', model)
        fuse_for_inference(model, self.channels_last)
