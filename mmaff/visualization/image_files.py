"""The images users point the inference scripts at
(``demo/image_demo.py``, ``tools/deployment/onnx_inference.py``): finding
and reading them, naming their drawings, and running a model on each."""
import os
import os.path as osp
from collections.abc import Callable

import numpy as np

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def collect_images(inputs: list[str]) -> list[str]:
    """The image files among ``inputs``: files as given, folders expanded
    to the images in them (sorted).

    Raises:
        FileNotFoundError: For a path that does not exist or a folder
            without images.
    """
    images = []
    for path in inputs:
        if osp.isdir(path):
            found = sorted(
                osp.join(path, name) for name in os.listdir(path)
                if name.lower().endswith(IMAGE_SUFFIXES))
            if not found:
                raise FileNotFoundError(
                    f'folder {path} holds no image '
                    f'({", ".join(IMAGE_SUFFIXES)})')
            images += found
        elif osp.isfile(path):
            images.append(path)
        else:
            raise FileNotFoundError(f'image {path} does not exist')
    return images


def read_image(path: str) -> np.ndarray:
    """The image as RGB uint8.

    Raises:
        ValueError: If it cannot be decoded.
    """
    import cv2
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise ValueError(f'cannot read image {path}: not an image file, or '
                         'corrupt')
    return image[:, :, ::-1]


def output_names(images: list[str]) -> list[str]:
    """``<stem>.png`` per image, numbered where stems repeat."""
    stems = [osp.splitext(osp.basename(path))[0] for path in images]
    names = []
    for i, stem in enumerate(stems):
        names.append(f'{stem}.png' if stems.count(stem) == 1 else
                     f'{stem}_{i}.png')
    return names


def run_on_images(images: list[str], out_dir: str,
                  infer: Callable[[str, np.ndarray, str], str],
                  on_unreadable: Callable[[ValueError], None]) -> int:
    """Run ``infer(path, rgb_pixels, out_file)`` on each image, writing
    ``<out_dir>/<stem>.png`` (see :func:`output_names`) and printing
    ``path: <what infer returned> -> out_file``.

    An image that cannot be read does not stop the others: its
    ``ValueError`` (from :func:`read_image`) goes to ``on_unreadable``.

    Returns:
        int: How many images could not be read.
    """
    os.makedirs(out_dir, exist_ok=True)
    unreadable = 0
    for path, name in zip(images, output_names(images)):
        try:
            image = read_image(path)
        except ValueError as e:
            on_unreadable(e)
            unreadable += 1
            continue
        out_file = osp.join(out_dir, name)
        print(f'{path}: {infer(path, image, out_file)} -> {out_file}')
    return unreadable
