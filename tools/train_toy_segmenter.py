"""Train and evaluate DeepLabv3-AFFNet-ET on the bundled toy segmentation set
(``make demo`` runs it).

    python tools/train_toy_segmenter.py [--work-dir work_dirs/toy_segmenter]
                                        [--iters 400]

1. writes the toy ADE20K-layout set (tools/dataset_converters/
   make_toy_ade20k.py) to ``data/toy_ade20k`` unless it is there;
2. trains ``configs/segmentation/
   deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512_toy.py`` from scratch
   with ``tools/train.py`` (mmengine's log shows the progress);
3. evaluates the last checkpoint with ``tools/test.py`` (``IoUMetric``);
4. draws image | ground truth | prediction for every validation image with
   ``mmaff.visualization.SegOverlayVisualizer`` into
   ``WORK_DIR/overlays/*.png``: the pixels the data set ignores ("other")
   grey in both maps, a legend naming the classes;

and prints where the pictures are and the final mIoU.
"""
import argparse
import glob
import os
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = ('configs/segmentation/'
          'deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512_toy.py')
DATA_ROOT = 'data/toy_ade20k'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/toy_segmenter')
    parser.add_argument('--iters', type=int, default=None,
                        help='training iterations (default: the config)')
    parser.add_argument('--data-root', default=DATA_ROOT,
                        help='where the toy set is (written if missing)')
    return parser.parse_args()


def run(*args: str) -> str:
    """Run a tool, showing its output live, and return that output."""
    print(f'\n$ {" ".join(args)}', flush=True)
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if 'Warning' not in line and 'pkg_resources' not in line:
            print(line, end='', flush=True)
    if proc.wait() != 0:
        raise SystemExit(f'error: {args[0]} failed (exit {proc.returncode})')
    return ''.join(lines)


def draw_overlays(config: str, checkpoint: str, data_root: str,
                  out_dir: str) -> list[str]:
    """image | ground truth | prediction for every validation image, with
    the pixels the data set ignores ("other") grey in both maps."""
    import cv2
    import numpy as np
    import torch
    from mmengine.structures import PixelData
    from mmseg.apis import inference_model, init_model

    import mmaff  # noqa: F401
    from mmaff.visualization import SegOverlayVisualizer
    model = init_model(config, checkpoint, device='cpu')
    # the toy images are small: enlarged 2x for viewing
    visualizer = SegOverlayVisualizer(name='toy_segmenter', alpha=0.6,
                                      show_input=True, min_size=256)
    visualizer.dataset_meta = dict(
        classes=model.dataset_meta['classes'],
        palette=model.dataset_meta['palette'])
    os.makedirs(out_dir, exist_ok=True)
    written = []
    images = sorted(
        glob.glob(osp.join(data_root, 'images', 'validation', '*.jpg')))
    for path in images:
        name = osp.splitext(osp.basename(path))[0]
        label_path = osp.join(data_root, 'annotations', 'validation',
                              name + '.png')
        result = inference_model(model, path)
        label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED).astype(np.int64)
        # reduce_zero_label: 0 ("other") is ignored, classes shift down
        label = np.where(label == 0, 255, label - 1)
        result.gt_sem_seg = PixelData(data=torch.from_numpy(label)[None])
        image = cv2.imread(path)[:, :, ::-1]
        out = osp.join(out_dir, name + '.png')
        visualizer.add_datasample(name, image, result, out_file=out)
        written.append(out)
    return written


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    work_dir = osp.join(ROOT, args.work_dir)
    data_root = osp.join(ROOT, args.data_root)
    if not glob.glob(
            osp.join(data_root, 'annotations', 'validation', '*.png')):
        run('tools/dataset_converters/make_toy_ade20k.py', data_root)
    options = [
        '--cfg-options', f'train_dataloader.dataset.data_root={data_root}/',
        f'val_dataloader.dataset.data_root={data_root}/',
        f'test_dataloader.dataset.data_root={data_root}/'
    ]
    if args.iters:
        options += [
            f'train_cfg.max_iters={args.iters}',
            f'train_cfg.val_interval={args.iters}',
            f'param_scheduler.1.end={args.iters}',
            f'default_hooks.checkpoint.interval={args.iters}'
        ]
    run('tools/train.py', CONFIG, '--work-dir', work_dir, *options)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    log = run('tools/test.py', CONFIG, checkpoint, '--work-dir',
              osp.join(work_dir, 'test'), *options)
    miou = re.findall(r'mIoU: ([\d.]+)', log)
    overlays = draw_overlays(osp.join(ROOT, CONFIG), checkpoint, data_root,
                             osp.join(work_dir, 'overlays'))
    minutes = (time.perf_counter() - start) / 60
    print('\n' + '=' * 72)
    print(f'DeepLabv3-AFFNet-ET trained from scratch on the toy ADE20K set '
          f'in {minutes:.1f} min')
    print(f'checkpoint: {checkpoint}')
    print(f'overlays (image | ground truth | prediction): {len(overlays)} '
          f'PNG files in {osp.dirname(overlays[0])}')
    print(f'final validation mIoU: {miou[-1] if miou else "n/a"} %')


if __name__ == '__main__':
    main()
