"""Detections of an exported detector matched to PyTorch's."""
from typing import NamedTuple

import numpy as np

#: Scores this close are ties: float rounding decides which of two tied,
#: overlapping boxes NMS keeps, and which ties make the top ``max_det``.
TIE_TOLERANCE = 1e-5


class DetectionMatch(NamedTuple):
    """How one image's detections compare with the reference ones."""
    #: detections with a twin: same label, box and score within tolerance
    twins: int
    #: detections without a twin, but with a same-label reference detection
    #: whose score ties theirs (NMS may have kept another box)
    ties: int
    #: detections with neither: a real difference
    unexplained: int
    #: the largest gap (box coordinates and score) of a detection to its
    #: nearest twin
    worst_gap: float

    def __add__(self, other: 'DetectionMatch') -> 'DetectionMatch':
        return DetectionMatch(self.twins + other.twins,
                              self.ties + other.ties,
                              self.unexplained + other.unexplained,
                              max(self.worst_gap, other.worst_gap))


def match_detections(dets: np.ndarray, labels: np.ndarray,
                     ref_dets: np.ndarray, ref_labels: np.ndarray,
                     box_tol: float, score_tol: float) -> DetectionMatch:
    """Match one image's detections to reference ones, in any order.

    Args:
        dets (np.ndarray): (K, 5) boxes ``x1, y1, x2, y2`` and scores.
        labels (np.ndarray): (K, ) their labels.
        ref_dets (np.ndarray): (R, 5) the reference detections.
        ref_labels (np.ndarray): (R, ) their labels.
        box_tol (float): Largest coordinate difference of a twin.
        score_tol (float): Largest score difference of a twin.

    Returns:
        DetectionMatch: The counts and the largest gap to a twin.
    """
    twins = ties = unexplained = 0
    worst = 0.
    for det, label in zip(dets, labels):
        same = ref_labels == label
        box_gap = np.abs(ref_dets[:, :4] - det[:4]).max(axis=1)
        score_gap = np.abs(ref_dets[:, 4] - det[4])
        twin = same & (box_gap <= box_tol) & (score_gap <= score_tol)
        if twin.any():
            twins += 1
            worst = max(worst,
                        float(np.maximum(box_gap, score_gap)[twin].min()))
        elif (same & (score_gap <= TIE_TOLERANCE)).any():
            ties += 1
        else:
            unexplained += 1
    return DetectionMatch(twins, ties, unexplained, worst)
