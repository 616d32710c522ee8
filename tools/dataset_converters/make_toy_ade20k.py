"""Write a small semantic segmentation set of textured shapes.

    python tools/dataset_converters/make_toy_ade20k.py OUT \
        [--num-train 64] [--num-val 16] [--size 128] [--seed 0] \
        [--layout ade20k|voc]

``--layout ade20k`` (default) writes the ADE20K (ADEChallengeData2016)
layout that mmseg's ``ADE20KDataset`` reads::

    OUT/images/{training,validation}/ADE_{train,val}_%08d.jpg
    OUT/annotations/{training,validation}/ADE_{train,val}_%08d.png

with uint8 labels 0 = "other" (ignored through ``reduce_zero_label=True``)
and 1..K = the shape classes.

``--layout voc`` writes the Pascal VOC 2012 layout of ``PascalVOCDataset``::

    OUT/JPEGImages/2012_%06d.jpg
    OUT/SegmentationClass/2012_%06d.png
    OUT/ImageSets/Segmentation/{train,val}.txt

with 0 = background (a real class), 1..K = the shapes and 255 (ignored) on
a thin band along every object border, as in VOC.

Each image shows 1-4 shapes on a noisy striped background; every class has
its own shape, colour and texture, so a small model learns them in minutes.
Images are ``size`` pixels high and ``size`` to ``4/3 * size`` wide. The
output is deterministic for a seed.
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np

# (name, BGR colour, texture); label = index + 1.
CLASSES = (
    ('circle', (40, 40, 220), 'hstripes'),
    ('square', (40, 200, 40), 'checker'),
    ('triangle', (220, 60, 40), 'dots'),
    ('star', (30, 200, 230), 'dstripes'),
    ('cross', (200, 60, 200), 'flat'),
)
# RGB palettes for the configs' metainfo (ADE: shapes only; VOC: background
# first).
PALETTE = [(220, 40, 40), (40, 200, 40), (40, 60, 220), (230, 200, 30),
           (200, 60, 200)]
VOC_BORDER = 255


def textured_background(rng: np.random.Generator, height: int,
                        width: int) -> np.ndarray:
    base = rng.integers(60, 190, size=3)
    noise = rng.normal(0, 14, size=(height // 8 + 1, width // 8 + 1, 3))
    noise = cv2.resize(noise, (width, height),
                       interpolation=cv2.INTER_CUBIC)
    stripes = 10 * np.sin(np.arange(width) / rng.uniform(3, 9))[None, :,
                                                                None]
    image = base[None, None, :] + noise + stripes
    return np.clip(image, 0, 255).astype(np.uint8)


def texture(kind: str, height: int, width: int,
            rng: np.random.Generator) -> np.ndarray:
    """A (H, W) brightness factor in [0.55, 1] for a class texture."""
    ys, xs = np.mgrid[:height, :width]
    period = int(rng.integers(5, 8))
    phase = int(rng.integers(period))
    if kind == 'hstripes':
        pattern = ((ys + phase) // (period // 2 + 1)) % 2
    elif kind == 'dstripes':
        pattern = ((xs + ys + phase) // (period // 2 + 1)) % 2
    elif kind == 'checker':
        pattern = ((xs + phase) // period + (ys + phase) // period) % 2
    elif kind == 'dots':
        pattern = (((xs + phase) % period - period / 2)**2 +
                   ((ys + phase) % period - period / 2)**2
                   > (period / 3.5)**2)
    elif kind == 'flat':
        pattern = np.ones((height, width))
    else:
        raise ValueError(kind)
    return 0.55 + 0.45 * pattern.astype(np.float64)


def shape_mask(kind: str, height: int, width: int, cx: int, cy: int,
               r: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    if kind == 'circle':
        cv2.circle(mask, (cx, cy), r, 1, -1)
    elif kind == 'square':
        cv2.rectangle(mask, (cx - r, cy - r), (cx + r, cy + r), 1, -1)
    elif kind == 'cross':
        arm = max(r // 3, 2)
        cv2.rectangle(mask, (cx - r, cy - arm), (cx + r, cy + arm), 1, -1)
        cv2.rectangle(mask, (cx - arm, cy - r), (cx + arm, cy + r), 1, -1)
    else:
        if kind == 'triangle':
            angles = np.deg2rad([-90, 30, 150])
            radii = np.full(3, r)
        else:  # star
            angles = np.deg2rad(np.arange(10) * 36 - 90)
            radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        points = np.stack(
            [cx + radii * np.cos(angles), cy + radii * np.sin(angles)],
            axis=1).round().astype(np.int32)
        cv2.fillPoly(mask, [points], 1)
    return mask.astype(bool)


def make_scene(rng: np.random.Generator,
               size: int) -> tuple[np.ndarray, np.ndarray]:
    """An image and its label map: 0 where no shape, class index + 1 on
    the shapes (later shapes cover earlier ones)."""
    height = size
    width = size + int(rng.integers(0, size // 3 + 1))
    image = textured_background(rng, height, width)
    label = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        cls = int(rng.integers(len(CLASSES)))
        kind, colour, texture_kind = CLASSES[cls]
        r = int(rng.integers(size // 10, size // 4))
        cx = int(rng.integers(r // 2, width - r // 2))
        cy = int(rng.integers(r // 2, height - r // 2))
        mask = shape_mask(kind, height, width, cx, cy, r)
        if not mask.any():
            continue
        colour = np.clip(np.array(colour) + rng.integers(-25, 26, size=3),
                         0, 255)
        shade = texture(texture_kind, height, width, rng)
        image[mask] = np.clip(shade[mask, None] * colour[None, :], 0,
                              255).astype(np.uint8)
        label[mask] = cls + 1
    return image, label


def voc_borders(label: np.ndarray, width: int) -> np.ndarray:
    """VOC style: mark a band of ``width`` pixels along every boundary
    between different labels as 255."""
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    edges = cv2.morphologyEx(label, cv2.MORPH_GRADIENT, kernel) > 0
    out = label.copy()
    out[edges] = VOC_BORDER
    return out


def write_split(out: str, layout: str, split: str, num_images: int,
                size: int, rng: np.random.Generator,
                first_index: int) -> list[str]:
    names = []
    border = max(1, size // 96)
    for i in range(num_images):
        image, label = make_scene(rng, size)
        if layout == 'ade20k':
            name = f'ADE_{"train" if split == "train" else "val"}_' \
                f'{first_index + i:08d}'
            folder = 'training' if split == 'train' else 'validation'
            image_path = osp.join(out, 'images', folder, name + '.jpg')
            label_path = osp.join(out, 'annotations', folder, name + '.png')
        else:
            name = f'2012_{first_index + i:06d}'
            label = voc_borders(label, border)
            image_path = osp.join(out, 'JPEGImages', name + '.jpg')
            label_path = osp.join(out, 'SegmentationClass', name + '.png')
        os.makedirs(osp.dirname(image_path), exist_ok=True)
        os.makedirs(osp.dirname(label_path), exist_ok=True)
        cv2.imwrite(image_path, image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(label_path, label)
        names.append(name)
    if layout == 'voc':
        sets = osp.join(out, 'ImageSets', 'Segmentation')
        os.makedirs(sets, exist_ok=True)
        with open(osp.join(sets, f'{split}.txt'), 'w') as f:
            f.write(''.join(name + '\n' for name in names))
    return names


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='output directory')
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=16)
    parser.add_argument('--size', type=int, default=128,
                        help='image height (width is size to 4/3 size)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--layout', choices=['ade20k', 'voc'],
                        default='ade20k')
    args = parser.parse_args(argv)
    if args.size < 32:
        parser.error('--size must be at least 32')
    if args.num_train < 1 or args.num_val < 1:
        parser.error('--num-train and --num-val must be at least 1')
    rng = np.random.default_rng(args.seed)
    for split, num, first_index in (('train', args.num_train, 1),
                                    ('val', args.num_val,
                                     args.num_train + 1)):
        write_split(args.out, args.layout, split, num, args.size, rng,
                    first_index)
        print(f'{split}: {num} images')
    names = [name for name, _, _ in CLASSES]
    if args.layout == 'ade20k':
        print(f'labels: 0 = other (ignored), 1-{len(names)} = {names} '
              f'-> {args.out}')
    else:
        print(f'labels: 0 = background, 1-{len(names)} = {names}, '
              f'{VOC_BORDER} = border (ignored) -> {args.out}')


if __name__ == '__main__':
    main()
