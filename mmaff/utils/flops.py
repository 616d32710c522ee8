"""FLOP (multiply-accumulate) counting that sees the AFF filter's FFTs.

mmengine's ``FlopAnalyzer`` (an fvcore port) counts ``aten::fft_rfft2`` and
``aten::fft_irfft2`` as 0 ("unsupported operator") and undercounts matmuls
whose second operand carries the batch dimensions. :func:`flop_analyzer`
returns an analyzer with handles for both.

Convention: like the mm tools and the AFFNet paper, "FLOPs" are
multiply-accumulates. A 2-D real FFT (forward or inverse) over N = H * W
points of each of B * C maps is counted as ``2.5 * N * log2(N)`` per map, the
usual operation count of a real-input FFT (half of the complex FFT's
``5 N log2 N``). The official AFFNet profiler counts the forward/inverse
pair as ``5 * N * floor(ln N)``, about half as much; either way the FFTs are
a few percent of AFFNet's total (3 % for AFFNet-ET at 256x256 here).
"""
import math
from collections.abc import Sequence
from typing import Any

import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape

FFT_COST_PER_POINT_LOG2 = 2.5


def fft_mac_count(batch_maps: int, spatial: Sequence[int]) -> int:
    """MACs of a 2-D real FFT of ``batch_maps`` maps of size ``spatial``."""
    n = math.prod(spatial)
    if n <= 1:
        return 0
    return int(FFT_COST_PER_POINT_LOG2 * batch_maps * n * math.log2(n))


def rfft2_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::fft_rfft2(input, s, dim, norm)``: input is the real signal."""
    shape = get_shape(inputs[0])
    return fft_mac_count(math.prod(shape[:-2]), shape[-2:])


def irfft2_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::fft_irfft2``: the output holds the real signal size."""
    shape = get_shape(outputs[0])
    return fft_mac_count(math.prod(shape[:-2]), shape[-2:])


def broadcast_matmul_flop_jit(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::matmul`` with broadcasting on either side: batch * M * K * N.

    mmengine's handle multiplies the first operand's size by the last
    dimension of the second, which misses batch dimensions that only the
    second operand has (e.g. a fixed (H, H) DFT matrix times (B, C, H, W)).
    """
    a, b = (list(get_shape(v)) for v in inputs[:2])
    if len(a) == 1:
        a = [1, a[0]]
    if len(b) == 1:
        b = [b[0], 1]
    if a[-1] != b[-2]:
        raise ValueError(f'matmul shapes do not match: {a} @ {b}')
    batch = 1
    a_batch, b_batch = a[:-2], b[:-2]
    width = max(len(a_batch), len(b_batch))
    a_batch = [1] * (width - len(a_batch)) + a_batch
    b_batch = [1] * (width - len(b_batch)) + b_batch
    for da, db in zip(a_batch, b_batch):
        batch *= max(da, db)
    return batch * a[-2] * a[-1] * b[-1]


def flop_analyzer(model: nn.Module, inputs: Any) -> FlopAnalyzer:
    """A mmengine ``FlopAnalyzer`` that also counts FFTs and broadcast
    matmuls (see the module docstring for the convention)."""
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle('aten::fft_rfft2', rfft2_flop_jit,
                           'aten::fft_irfft2', irfft2_flop_jit,
                           'aten::matmul', broadcast_matmul_flop_jit)
    return analyzer
