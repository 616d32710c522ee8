"""Write a small COCO-format detection set of coloured shapes.

    python tools/dataset_converters/make_toy_coco.py OUT \
        [--num-train 64] [--num-val 16] [--size 320] [--seed 0]

OUT gets ``train/*.jpg``, ``val/*.jpg`` and
``annotations/instances_{train,val}.json`` in the COCO layout, readable by
mmdet's ``CocoDataset`` and evaluated by ``CocoMetric`` (pycocotools). Each
image shows 1-4 filled shapes of different classes on a textured background;
boxes are the shapes' exact extents. Output is deterministic for a seed.
"""
import argparse
import json
import os
import os.path as osp

import cv2
import numpy as np

# (name, BGR colour): colour and shape both tell the class, so a small
# detector can learn it in minutes.
CLASSES = (
    ('circle', (40, 40, 220)),
    ('square', (40, 200, 40)),
    ('triangle', (220, 60, 40)),
    ('star', (30, 200, 230)),
)


def textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.integers(60, 190, size=3)
    noise = rng.normal(0, 12, size=(size // 8 + 1, size // 8 + 1, 3))
    noise = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    stripes = 10 * np.sin(np.arange(size) / rng.uniform(3, 9))[None, :, None]
    image = base[None, None, :] + noise + stripes
    return np.clip(image, 0, 255).astype(np.uint8)


def shape_polygon(kind: str, cx: float, cy: float, r: float) -> np.ndarray:
    if kind == 'triangle':
        angles = np.deg2rad([-90, 30, 150])
        radii = np.full(3, r)
    elif kind == 'star':
        angles = np.deg2rad(np.arange(10) * 36 - 90)
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
    else:
        raise ValueError(kind)
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)],
                    axis=1).round().astype(np.int32)


def draw_object(image: np.ndarray, label: int, cx: int, cy: int, r: int,
                rng: np.random.Generator) -> list[float]:
    kind, colour = CLASSES[label]
    colour = tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255))
                   for c in colour)
    mask = np.zeros(image.shape[:2], np.uint8)
    if kind == 'circle':
        cv2.circle(mask, (cx, cy), r, 255, -1)
    elif kind == 'square':
        cv2.rectangle(mask, (cx - r, cy - r), (cx + r, cy + r), 255, -1)
    else:
        cv2.fillPoly(mask, [shape_polygon(kind, cx, cy, r)], 255)
    image[mask > 0] = colour
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def make_split(out: str, split: str, num_images: int, size: int,
               rng: np.random.Generator, first_id: int) -> dict:
    os.makedirs(osp.join(out, split), exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        image_id = first_id + i
        image = textured_background(rng, size)
        placed: list[tuple[int, int, int]] = []
        for _ in range(int(rng.integers(1, 5))):
            for _attempt in range(20):
                r = int(rng.integers(size // 14, size // 5))
                cx, cy = rng.integers(r, size - r, size=2)
                if all((cx - px)**2 + (cy - py)**2 > (r + pr + 4)**2
                       for px, py, pr in placed):
                    break
            else:
                continue
            placed.append((int(cx), int(cy), r))
            label = int(rng.integers(len(CLASSES)))
            bbox = draw_object(image, label, int(cx), int(cy), r, rng)
            annotations.append(
                dict(id=len(annotations) + 1,
                     image_id=image_id, category_id=label + 1, bbox=bbox,
                     area=bbox[2] * bbox[3], iscrowd=0))
        file_name = f'{image_id:06d}.jpg'
        cv2.imwrite(osp.join(out, split, file_name), image,
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append(dict(id=image_id, file_name=file_name, width=size,
                           height=size))
    return dict(
        images=images,
        annotations=annotations,
        categories=[dict(id=i + 1, name=name, supercategory='shape')
                    for i, (name, _) in enumerate(CLASSES)])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='output directory')
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=16)
    parser.add_argument('--size', type=int, default=320)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.size < 64:
        parser.error('--size must be at least 64')
    rng = np.random.default_rng(args.seed)
    os.makedirs(osp.join(args.out, 'annotations'), exist_ok=True)
    for split, num, first_id in (('train', args.num_train, 1),
                                 ('val', args.num_val, 1_000_001)):
        coco = make_split(args.out, split, num, args.size, rng, first_id)
        with open(osp.join(args.out, 'annotations',
                           f'instances_{split}.json'), 'w') as f:
            json.dump(coco, f)
        print(f'{split}: {len(coco["images"])} images, '
              f'{len(coco["annotations"])} objects')
    print(f'classes: {[name for name, _ in CLASSES]} -> {args.out}')


if __name__ == '__main__':
    main()
