"""Text and legends drawn under a picture (numpy / OpenCV only, RGB)."""
from collections.abc import Sequence

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SCALE = 0.4
_THICKNESS = 1
_ROW = 16  # pixels per line of text
_SWATCH = 11


def enlarge_factor(shape: Sequence[int], min_size: int) -> int:
    """Whole factor that brings the longer side of a picture of ``shape``
    (H, W, ...) to at least ``min_size`` pixels; 1 if it is there.

    Args:
        shape (Sequence[int]): Picture shape, height and width first.
        min_size (int): Pixels the longer side should have.

    Returns:
        int: The factor, at least 1.
    """
    return max(1, -(-min_size // max(shape[:2])))


def _text_width(text: str) -> int:
    return cv2.getTextSize(text, _FONT, _SCALE, _THICKNESS)[0][0]


def _strip(width: int, rows: int) -> np.ndarray:
    return np.full((rows * _ROW + 4, width, 3), 255, dtype=np.uint8)


def _put(strip: np.ndarray, text: str, x: int, row: int) -> None:
    cv2.putText(strip, text, (x, row * _ROW + 13), _FONT, _SCALE, (0, 0, 0),
                _THICKNESS, cv2.LINE_AA)


def add_legend(image: np.ndarray,
               entries: Sequence[tuple[str, Sequence[int]]]) -> np.ndarray:
    """``image`` with a white strip below it holding a colour swatch and
    the name of each entry, wrapped to the image width.

    Args:
        image (np.ndarray): RGB picture, H x W x 3, uint8.
        entries (Sequence[tuple[str, Sequence[int]]]): ``(name, rgb)``
            pairs, in order.

    Returns:
        np.ndarray: The taller picture.
    """
    width = image.shape[1]
    placed, x, row = [], 4, 0
    for name, color in entries:
        needed = _SWATCH + 4 + _text_width(name) + 12
        if x > 4 and x + needed > width:
            x, row = 4, row + 1
        placed.append((name, color, x, row))
        x += needed
    if not placed:
        return image
    strip = _strip(width, row + 1)
    for name, color, x, row in placed:
        top = row * _ROW + 4
        cv2.rectangle(strip, (x, top), (x + _SWATCH, top + _SWATCH),
                      tuple(int(c) for c in color), -1)
        cv2.rectangle(strip, (x, top), (x + _SWATCH, top + _SWATCH),
                      (0, 0, 0), 1)
        _put(strip, name, x + _SWATCH + 4, row)
    return np.concatenate([image, strip], axis=0)


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ''
    for word in text.split():
        candidate = f'{line} {word}'.strip()
        if line and _text_width(candidate) > width:
            lines.append(line)
            candidate = word
        line = candidate
    return lines + [line]


def add_caption(image: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """``image`` with ``lines`` of text in a white strip below it, each
    wrapped to the image width.

    Args:
        image (np.ndarray): RGB picture, H x W x 3, uint8.
        lines (Sequence[str]): The text, one line each.

    Returns:
        np.ndarray: The taller picture.
    """
    lines = [part for line in lines for part in _wrap(line,
                                                      image.shape[1] - 8)]
    if not lines:
        return image
    strip = _strip(image.shape[1], len(lines))
    for row, line in enumerate(lines):
        _put(strip, line, 4, row)
    return np.concatenate([image, strip], axis=0)


def add_titles(panels: Sequence[np.ndarray],
               titles: Sequence[str]) -> np.ndarray:
    """Panels of equal height side by side, each with its title above.

    Args:
        panels (Sequence[np.ndarray]): RGB pictures of the same height.
        titles (Sequence[str]): One title per panel.

    Returns:
        np.ndarray: The joined picture.
    """
    titled = []
    for panel, title in zip(panels, titles):
        header = _strip(panel.shape[1], 1)
        _put(header, title, 4, 0)
        titled.append(np.concatenate([header, panel], axis=0))
    return np.concatenate(titled, axis=1)
