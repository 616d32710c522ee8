from .coco import CheckedCocoDataset

__all__ = ['CheckedCocoDataset']
