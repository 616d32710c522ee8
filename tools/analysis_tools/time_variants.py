"""Time the AFFNet variants on real photos; also parameters, stage shapes.

Builds the three AFFNet variants as mmpretrain ImageNet classifiers (the
backbone as ``type='mmaff.AFFNet'``: the ``mmaff.`` scope prefix makes
mmpretrain's model registry look it up in mmaff's, which ``import mmaff``
fills; the official input convention: RGB in [0, 1]), runs them on sample
photos that ship with scikit-image and prints what each stage produces and
how long an image takes on this machine, in the inference form
(``mmaff.prepare_for_inference``). Weights are random unless
``--checkpoint`` gives a converted official checkpoint
(tools/model_converters/affnet_official_to_mmaff.py); then the top-5
ImageNet class indices are printed as well.
"""
import argparse
import statistics
import time

import numpy as np
import torch

ARCHS = ('et', 't', 'base')
EXP_CHANNELS = {'et': 576, 't': 768, 'base': 960}
PHOTOS = ('chelsea', 'coffee', 'astronaut')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--archs', nargs='+', default=list(ARCHS),
                        choices=ARCHS)
    parser.add_argument('--size', type=int, default=256,
                        help='classifier input size (official: 256)')
    parser.add_argument('--repeats', type=int, default=10,
                        help='timed runs per image after one warm-up')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: all cores)')
    parser.add_argument('--checkpoint', default=None,
                        help='converted checkpoint for --archs (one arch)')
    return parser.parse_args()


def build_classifier(arch: str, checkpoint: str | None):
    from mmengine import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS
    cfg = Config(
        dict(
            default_scope='mmpretrain',
            model=dict(
                type='ImageClassifier',
                data_preprocessor=dict(
                    type='ClsDataPreprocessor',
                    mean=[0., 0., 0.],
                    std=[255., 255., 255.],
                    to_rgb=False),  # the photos are RGB already
                backbone=dict(
                    type='mmaff.AFFNet', arch=arch,
                    out_indices=(0, 1, 2, 3, 4, 5)),
                # pools every output; the head classifies the last one
                neck=dict(type='GlobalAveragePooling'),
                head=dict(
                    type='LinearClsHead',
                    num_classes=1000,
                    in_channels=EXP_CHANNELS[arch]))))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.eval()


def load_photos(size: int) -> dict[str, torch.Tensor]:
    import cv2
    from skimage import data
    photos = {}
    for name in PHOTOS:
        image = getattr(data, name)()
        # Official evaluation: shorter side to 288/256 * size, centre crop.
        h, w = image.shape[:2]
        scale = size * 288 / 256 / min(h, w)
        image = cv2.resize(image, (round(w * scale), round(h * scale)),
                           interpolation=cv2.INTER_LINEAR)
        h, w = image.shape[:2]
        top, left = (h - size) // 2, (w - size) // 2
        crop = np.ascontiguousarray(image[top:top + size, left:left + size])
        photos[name] = torch.from_numpy(crop).permute(2, 0, 1)
    return photos


def main() -> None:
    args = parse_args()
    if args.checkpoint and len(args.archs) != 1:
        raise SystemExit('--checkpoint needs exactly one arch in --archs')
    if args.threads:
        torch.set_num_threads(args.threads)
    import mmaff
    from mmaff.checkpoint import CheckpointError, install_checkpoint_loader
    install_checkpoint_loader()  # a bad --checkpoint: one line
    photos = load_photos(args.size)
    print(f'mmaff {mmaff.__version__}, torch {torch.__version__}, '
          f'{torch.get_num_threads()} CPU threads, input {args.size}x'
          f'{args.size}, photos from scikit-image: {", ".join(photos)}')
    if args.checkpoint is None:
        print('weights: random (pass --checkpoint for converted official '
              'weights; predictions are only shown then)')
    for arch in args.archs:
        try:
            model = build_classifier(arch, args.checkpoint)
        except CheckpointError as e:
            raise SystemExit(f'error: {e}') from e
        total = sum(p.numel() for p in model.parameters())
        backbone = sum(p.numel() for p in model.backbone.parameters())
        print(f'\nAFFNet-{arch}: {total:,} parameters as a 1000-class '
              f'classifier ({backbone:,} in the backbone)')
        # counted above on the paper's model: folding changes the count
        model = mmaff.prepare_for_inference(model, inplace=True)
        times = {}
        with torch.no_grad():
            for name, image in photos.items():
                batch = model.data_preprocessor(
                    dict(inputs=[image]), False)['inputs']
                feats = model.backbone(batch)
                model(batch, mode='tensor')  # warm-up
                runs = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    logits = model(batch, mode='tensor')
                    runs.append(time.perf_counter() - start)
                times[name] = statistics.median(runs) * 1e3
                if args.checkpoint:
                    top5 = logits.softmax(-1)[0].topk(5)
                    print(f'  {name}: top-5 class ids '
                          f'{top5.indices.tolist()} probs '
                          f'{[round(p, 3) for p in top5.values.tolist()]}')
        for index, feat in enumerate(feats):
            stage = f'out_indices {index}'
            stride = args.size // feat.shape[-1]
            print(f'  {stage:<13} {tuple(feat.shape)}  stride {stride}')
        print('  time per image (median of '
              f'{args.repeats}): ' + ', '.join(
                  f'{name} {ms:.1f} ms' for name, ms in times.items()))


if __name__ == '__main__':
    main()
