"""Write a small ImageNet-layout classification set of coloured shapes.

    python tools/dataset_converters/make_toy_imagenet.py OUT \
        [--num-classes 4] [--train-per-class 32] [--val-per-class 8] \
        [--size 96] [--seed 0]

OUT gets ``train/<class>/*.JPEG``, ``val/<class>/*.JPEG``, the annotation
lists ``meta/train.txt`` and ``meta/val.txt`` (lines ``<class>/<file> <label>``
relative to the split folder, the mmpretrain ImageNet format) and
``meta/classes.txt`` (one name a line), readable by mmpretrain's ``ImageNet``
and ``CustomDataset`` with ``data_root=OUT`` and ``split='train'`` / ``'val'``
(or ``data_prefix='train'``, ``ann_file='meta/train.txt'``). Class names sort
in label order, so scanning the folders without the lists gives the same
labels.

Each image shows one large shape on a textured background of random colour;
shape, colour and fill pattern all tell the class, so a small network learns
it in minutes on a CPU. Output is deterministic for a seed.
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np

# (name, BGR colour), in alphabetical = label order.
CLASSES = (
    ('checker', (40, 200, 230)),
    ('circle', (40, 40, 220)),
    ('cross', (40, 200, 40)),
    ('ring', (220, 60, 40)),
    ('square', (200, 40, 200)),
    ('star', (230, 230, 230)),
    ('stripes', (20, 120, 250)),
    ('triangle', (200, 200, 40)),
)
assert [name for name, _ in CLASSES] == sorted(name for name, _ in CLASSES)


def textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.integers(50, 200, size=3)
    noise = rng.normal(0, 14, size=(size // 8 + 1, size // 8 + 1, 3))
    noise = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    period = rng.uniform(3, 9)
    stripes = 12 * np.sin(np.arange(size) / period)
    stripes = stripes[None, :, None] if rng.random() < 0.5 else \
        stripes[:, None, None]
    image = base[None, None, :] + noise + stripes
    return np.clip(image, 0, 255).astype(np.uint8)


def star_polygon(cx: float, cy: float, r: float, turn: float) -> np.ndarray:
    angles = np.deg2rad(np.arange(10) * 36 - 90) + turn
    radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)],
                    axis=1).round().astype(np.int32)


def shape_mask(kind: str, size: int, cx: int, cy: int, r: int,
               rng: np.random.Generator) -> np.ndarray:
    """Mask (uint8, 255 inside) of a shape of radius ``r`` at (cx, cy)."""
    mask = np.zeros((size, size), np.uint8)
    if kind == 'circle':
        cv2.circle(mask, (cx, cy), r, 255, -1)
    elif kind == 'ring':
        cv2.circle(mask, (cx, cy), r, 255, max(2, r // 3))
    elif kind in ('square', 'checker', 'stripes'):
        cv2.rectangle(mask, (cx - r, cy - r), (cx + r, cy + r), 255, -1)
    elif kind == 'cross':
        w = max(2, r // 3)
        cv2.rectangle(mask, (cx - r, cy - w), (cx + r, cy + w), 255, -1)
        cv2.rectangle(mask, (cx - w, cy - r), (cx + w, cy + r), 255, -1)
    elif kind == 'triangle':
        angles = np.deg2rad([-90, 30, 150]) + rng.uniform(-0.3, 0.3)
        points = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)],
                          axis=1).round().astype(np.int32)
        cv2.fillPoly(mask, [points], 255)
    elif kind == 'star':
        cv2.fillPoly(mask, [star_polygon(cx, cy, r, rng.uniform(-0.3, 0.3))],
                     255)
    else:
        raise ValueError(f'unknown shape {kind}')
    if kind in ('checker', 'stripes'):
        # the fill pattern is the class: keep every other cell / band
        cell = max(2, r // 3)
        ys, xs = np.mgrid[:size, :size]
        if kind == 'checker':
            keep = ((xs - cx) // cell + (ys - cy) // cell) % 2 == 0
        else:
            keep = ((xs + ys) // cell) % 2 == 0
        mask[~keep] = 0
    return mask


def draw_image(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    kind, colour = CLASSES[label]
    image = textured_background(rng, size)
    r = int(rng.integers(size * 3 // 10, size * 4 // 10 + 1))
    cx, cy = (int(v) for v in rng.integers(r, size - r + 1, size=2))
    colour = np.array([np.clip(c + rng.integers(-25, 26), 0, 255)
                       for c in colour], np.uint8)
    mask = shape_mask(kind, size, cx, cy, r, rng)
    image[mask > 0] = colour
    return image


def make_split(out: str, split: str, num_classes: int, per_class: int,
               size: int, rng: np.random.Generator) -> list[str]:
    """Write ``out/split/<class>/*.JPEG``; return the annotation lines."""
    lines = []
    for label in range(num_classes):
        name = CLASSES[label][0]
        os.makedirs(osp.join(out, split, name), exist_ok=True)
        for i in range(per_class):
            rel = f'{name}/{split}_{name}_{i:05d}.JPEG'
            cv2.imwrite(
                osp.join(out, split, rel), draw_image(label, size, rng),
                [cv2.IMWRITE_JPEG_QUALITY, 95])
            lines.append(f'{rel} {label}')
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='output directory')
    parser.add_argument(
        '--num-classes',
        type=int,
        default=4,
        help=f'number of classes, 2-{len(CLASSES)} (default 4)')
    parser.add_argument('--train-per-class', type=int, default=32)
    parser.add_argument('--val-per-class', type=int, default=8)
    parser.add_argument('--size', type=int, default=96,
                        help='image side in pixels (default 96)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if not 2 <= args.num_classes <= len(CLASSES):
        parser.error(f'--num-classes must be in [2, {len(CLASSES)}]')
    if args.train_per_class < 1 or args.val_per_class < 1:
        parser.error('--train-per-class and --val-per-class must be >= 1')
    if args.size < 32:
        parser.error('--size must be at least 32')
    rng = np.random.default_rng(args.seed)
    os.makedirs(osp.join(args.out, 'meta'), exist_ok=True)
    for split, per_class in (('train', args.train_per_class),
                             ('val', args.val_per_class)):
        lines = make_split(args.out, split, args.num_classes, per_class,
                           args.size, rng)
        with open(osp.join(args.out, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        print(f'{split}: {len(lines)} images')
    names = [name for name, _ in CLASSES[:args.num_classes]]
    with open(osp.join(args.out, 'meta', 'classes.txt'), 'w') as f:
        f.write('\n'.join(names) + '\n')
    print(f'classes: {names} -> {args.out}')


if __name__ == '__main__':
    main()
