"""Timing helpers for side-by-side speed comparisons in one process.

Shared machines drift: a neighbour's job can halve throughput for seconds.
Timing model A for a minute and then model B would charge such drift to one
of them. These helpers interleave the candidates instead (a shuffled
round-robin, one call of each per round) and report medians, so slow
phases hit every candidate alike and ratios stay meaningful.
"""
import ctypes
import ctypes.util
import platform
import random
import time
from collections.abc import Callable

import torch
import torch.nn as nn

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4


def tune_malloc(mmap_threshold: int = 32 << 20) -> bool:
    """Keep freed activation buffers in glibc's heap instead of returning
    them to the OS, so that every forward does not page-fault fresh memory
    in again (what jemalloc/tcmalloc do for PyTorch CPU inference).

    Affects the whole process, i.e. every model timed in it alike.

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


def synchronize(device: str | torch.device) -> None:
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def time_interleaved(fns: dict[str, Callable[[], object]],
                     rounds: int,
                     warmup: int = 3,
                     device: str | torch.device = 'cpu',
                     seed: int = 0) -> dict[str, list[float]]:
    """Seconds per call of each function, measured round-robin.

    Each round calls every function once, in a fresh random order; the
    first ``warmup`` calls of each are not timed.

    Args:
        fns (dict): Name to a function without arguments.
        rounds (int): Timed calls per function.
        warmup (int): Untimed calls per function first. Defaults to 3.
        device (str | torch.device): Synchronised around each call when it
            is a CUDA device. Defaults to ``'cpu'``.
        seed (int): Seed of the call order. Defaults to 0.

    Returns:
        dict[str, list[float]]: The timed samples per name.
    """
    if rounds < 1:
        raise ValueError(f'rounds must be at least 1, got {rounds}')
    order = random.Random(seed)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        names = list(fns)
        order.shuffle(names)
        for name in names:
            start = time.perf_counter()
            fns[name]()
            synchronize(device)
            samples[name].append(time.perf_counter() - start)
    return samples


def fuse_for_inference(model: nn.Module,
                       channels_last: bool = True) -> nn.Module:
    """Inference form of any mm model: eval mode, every BatchNorm that
    follows a convolution folded into it (mmcv's ``fuse_conv_bn``), and
    channels-last weights.

    Outputs equal the unfused model's up to float rounding. Works in place
    and returns ``model``; load weights before, since folding removes the
    BN entries from the state dict.
    """
    from mmcv.cnn import fuse_conv_bn
    model.eval()
    fuse_conv_bn(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def machine_description() -> dict[str, str]:
    """What a reader needs to place the figures: CPU, threads, versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        'cpu': cpu,
        'logical cores': str(torch.multiprocessing.cpu_count()),
        'torch threads': str(torch.get_num_threads()),
        'python': platform.python_version(),
        'torch': torch.__version__,
        'oneDNN': str(torch.backends.mkldnn.is_available()),
        'MKL (FFT)': str(torch.backends.mkl.is_available()),
    }
    if torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name()
        info['cuda'] = str(torch.version.cuda)
    return info
