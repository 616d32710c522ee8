"""The 2-D real DFT pair the AFF filter runs on, in three interchangeable
forms.

Every form maps a real (N, C, H, W) map to its ortho-normalised half
spectrum in one layout, a real (N, C, 2, H, W // 2 + 1) tensor holding each
channel's real plane, then its imaginary plane, and back:

- :class:`TorchFFT`: ``torch.fft.rfft2`` / ``irfft2``, O(N log N).
- :class:`DenseDFT`: one real matrix product each way; on small maps it
  beats the fixed cost of an FFT call (2 CPU threads: 0.4-0.65x the whole
  filter's time at 8x8 and 10x10, even at 12x12 to 16x16), but the matrix
  grows as (H * W)^2.
- :class:`SeparableDFT`: real matrix products along W, then along H, and
  back: no complex tensors and no FFT op, so it exports to any runtime.

:func:`pick_dft` chooses the form by DFT mode and map size; the matrices are
built in float64 and kept in a bounded cache (:func:`dft_matrices`).
"""
import math
from functools import lru_cache

import torch

from mmaff.utils.misc import is_traced

#: ``'fft'``: torch.fft (dense matrices for small maps in eager mode);
#: ``'matmul'``: real matrix products only, for export.
DFT_MODES = ('fft', 'matmul')

#: Maps of at most this many pixels take the dense DFT (except under
#: graph capture in ``'fft'`` mode, which keeps the FFT op).
DENSE_DFT_MAX_PIXELS = 100

#: Entries of the matrix cache, one per (form, H, W, dtype, device).
DFT_CACHE_SIZE = 64


def check_dft_mode(dft_mode: str) -> str:
    """Return ``dft_mode`` if it is one of :data:`DFT_MODES`, else raise."""
    if dft_mode not in DFT_MODES:
        raise ValueError(
            f'Unknown dft_mode {dft_mode!r}; choose from {DFT_MODES}')
    return dft_mode


def _c2r_weights(w: int) -> torch.Tensor:
    """How often each of the ``w // 2 + 1`` bins along W counts in the
    inverse: twice (it stands for a conjugate pair), except DC and, for an
    even ``w``, Nyquist, whose imaginary parts the inverse ignores."""
    count = torch.full((w // 2 + 1, ), 2., dtype=torch.float64)
    count[[0, -1] if w % 2 == 0 else [0]] = 1.
    return count


def _angles(n: int, m: int) -> torch.Tensor:
    """2 pi j k / n for j < n, k < m, with j k reduced modulo n first so
    that large products keep their precision."""
    j, k = torch.arange(n), torch.arange(m)
    return 2 * math.pi * (torch.outer(j, k) % n).double() / n


def dft_matrices(form: str, h: int, w: int, dtype: torch.dtype,
                 device: torch.device) -> tuple[torch.Tensor, ...]:
    """:func:`build_dft_matrices`, cached (least recently used first out, at
    most :data:`DFT_CACHE_SIZE` entries, shared by all filters); the
    compiler traces the build instead, to fold it into constants."""
    if torch.compiler.is_compiling():
        return build_dft_matrices.__wrapped__(form, h, w, dtype, device)
    # Cached matrices built under inference_mode would be inference tensors,
    # which a later training step cannot save for backward.
    with torch.inference_mode(False):
        return build_dft_matrices(form, h, w, dtype, device)


@lru_cache(maxsize=DFT_CACHE_SIZE)
def build_dft_matrices(form: str, h: int, w: int, dtype: torch.dtype,
                       device: torch.device) -> tuple[torch.Tensor, ...]:
    """The matrices of ``form`` (``'dense'`` or ``'separable'``) for an
    ``h x w`` map.

    ``'dense'``: forward (H * W, 2 * H * Wf) and inverse (2 * H * Wf,
    H * W). ``'separable'``: along W, x -> [re | im] (W, 2 * Wf); along H,
    the complex DFT on stacked [re; im] rows (2H, 2H) and its inverse; along
    W back, [re | im] -> x (2 * Wf, W)."""
    wf = w // 2 + 1
    ang_h, ang_w = _angles(h, h), _angles(w, wf)
    count = _c2r_weights(w)
    if form == 'dense':
        angle = (ang_h[:, None, :, None] + ang_w[None, :, None, :]).reshape(
            h * w, h * wf)
        scale = 1 / math.sqrt(h * w)
        fwd = torch.cat([angle.cos(), -angle.sin()], dim=1)
        weight = count.repeat(h)[:, None]
        inv = torch.cat([weight * angle.T.cos(), -weight * angle.T.sin()])
        mats = (scale * fwd, scale * inv)
    else:
        cw, sw = ang_w.cos() / math.sqrt(w), ang_w.sin() / math.sqrt(w)
        ch, sh = ang_h.cos() / math.sqrt(h), ang_h.sin() / math.sqrt(h)
        mats = (torch.cat([cw, -sw], dim=1),
                torch.cat([torch.cat([ch, sh], 1), torch.cat([-sh, ch], 1)]),
                torch.cat([torch.cat([ch, -sh], 1), torch.cat([sh, ch], 1)]),
                torch.cat([count[:, None] * cw.T, -count[:, None] * sw.T]))
    return tuple(m.to(device=device, dtype=dtype) for m in mats)


class TorchFFT:
    """The pair by ``torch.fft``."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.rfft2(x, norm='ortho')
        # real planes: the dynamo exporter cannot read dynamic sizes off
        # complex tensors (or views of them)
        return torch.stack([spec.real, spec.imag], dim=2)

    @staticmethod
    def inverse(spec: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        # s= restores odd widths, which the half spectrum cannot tell
        return torch.fft.irfft2(
            torch.complex(spec[:, :, 0], spec[:, :, 1]), s=size, norm='ortho')


class DenseDFT:
    """The pair as one real matrix product each way."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        fwd = dft_matrices('dense', h, w, x.dtype, x.device)[0]
        return (x.reshape(n * c, h * w) @ fwd).view(n, c, 2, h, w // 2 + 1)

    @staticmethod
    def inverse(spec: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        n, c, _, h, wf = spec.shape
        inv = dft_matrices('dense', *size, spec.dtype, spec.device)[1]
        return (spec.reshape(n * c, 2 * h * wf) @ inv).view(n, c, *size)


class SeparableDFT:
    """The pair as real matrix products along W and along H."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        wf = w // 2 + 1
        along_w, along_h = dft_matrices('separable', h, w, x.dtype,
                                        x.device)[:2]
        # (N, C, H, [re | im]) -> stacked (N, C, [re; im], Wf) rows
        spec = (x @ along_w).view(n, c, h, 2, wf).transpose(2, 3)
        return (along_h @ spec.reshape(n, c, 2 * h, wf)).view(
            n, c, 2, h, wf)

    @staticmethod
    def inverse(spec: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        n, c, _, h, wf = spec.shape
        mats = dft_matrices('separable', *size, spec.dtype, spec.device)
        y = (mats[2] @ spec.reshape(n, c, 2 * h, wf)).view(n, c, 2, h, wf)
        return y.transpose(2, 3).reshape(n, c, h, 2 * wf) @ mats[3]


def pick_dft(dft_mode: str, h: int, w: int) -> type:
    """The DFT form for ``dft_mode`` on an ``h x w`` map: the dense one for
    small maps, else torch.fft (``'fft'``) or the separable products
    (``'matmul'``). Graph capture in ``'fft'`` mode keeps torch.fft, so that
    exports in that mode hold the FFT op the mode promises."""
    if dft_mode == 'fft':
        small = h * w <= DENSE_DFT_MAX_PIXELS and not is_traced()
        return DenseDFT if small else TorchFFT
    return DenseDFT if h * w <= DENSE_DFT_MAX_PIXELS else SeparableDFT
