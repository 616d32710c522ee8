"""Learnability benchmark: DeepLabv3 segmenters from scratch on the toy set.

    python tools/benchmarks/toy_segmentation.py [--budget-min 10]
        [--models deeplabv3_affnet-et deeplabv3_mobilenetv2]

DeepLabv3-AFFNet-ET (configs/segmentation/deeplabv3_affnet-et_ade20k_toy.py)
and mmseg's DeepLabv3-MobileNetV2-d8 (its ASPP head and auxiliary FCN head as
mmseg configures them) train from scratch on the toy ADE20K-layout set for
the same budget of training wall-clock time, with the same data, pipeline,
batch size, optimizer and schedule (sized by a short speed calibration of
each model). ``IoUMetric`` on the whole validation split runs every
``--eval-every-min`` minutes of training (not charged to the budget). Prints
mIoU against training minutes side by side and the first minute at which
each model reached ``--target``.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys

import torch
from mmengine.config import Config

from mmaff.utils.wallclock import compare, iteration_based, print_curves

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = 'configs/segmentation/deeplabv3_affnet-et_ade20k_toy.py'
MODELS = ('deeplabv3_affnet-et', 'deeplabv3_mobilenetv2')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS),
                        choices=MODELS)
    parser.add_argument('--budget-min', type=float, default=10.)
    parser.add_argument('--eval-every-min', type=float, default=1.)
    parser.add_argument('--target', type=float, default=60.,
                        help='mIoU (%%) whose first arrival is reported')
    parser.add_argument('--data-root', default='data/toy_ade20k_bench/')
    parser.add_argument('--num-train', type=int, default=128)
    parser.add_argument('--num-val', type=int, default=32)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--work-dir', default='work_dirs/toy_segmentation')
    parser.add_argument('--json-out', default=None)
    return parser.parse_args(argv)


def make_data(args) -> str:
    root = args.data_root.rstrip('/') + '/'
    if not osp.isdir(osp.join(root, 'annotations', 'validation')):
        subprocess.run([
            sys.executable,
            osp.join(ROOT, 'tools/dataset_converters/make_toy_ade20k.py'),
            root, '--num-train', str(args.num_train), '--num-val',
            str(args.num_val)
        ], check=True)
    return root


def mobilenetv2_model(cfg: Config) -> dict:
    """mmseg's DeepLabv3-MobileNetV2-d8 with the toy class count and crop,
    from scratch (no ImageNet checkpoint)."""
    import mmseg
    base = Config.fromfile(
        osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs',
                 'mobilenet_v2',
                 'mobilenet-v2-d8_deeplabv3_4xb4-160k_ade20k-512x512.py'))
    model = base.model
    model.pretrained = None
    model.data_preprocessor.size = cfg.model.data_preprocessor.size
    num_classes = cfg.model.decode_head.num_classes
    model.decode_head.num_classes = num_classes
    model.auxiliary_head.num_classes = num_classes
    return model


def build_cfg(name: str, args, data_root: str, max_iters: int) -> Config:
    cfg = Config.fromfile(osp.join(ROOT, TOY_CONFIG))
    if name == 'deeplabv3_mobilenetv2':
        cfg.model = mobilenetv2_model(cfg)
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = data_root
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=args.lr, weight_decay=0.01),
        clip_grad=dict(max_norm=10, norm_type=2))
    iteration_based(cfg, max_iters, args.lr, warmup=20)
    cfg.work_dir = osp.join(args.work_dir, name)
    cfg.randomness = dict(seed=0)
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    os.chdir(ROOT)
    if args.threads:
        torch.set_num_threads(args.threads)
    import mmaff  # noqa: F401
    data_root = make_data(args)
    results = compare(
        args.models,
        lambda name, iters: build_cfg(name, args, data_root, iters),
        args.budget_min, args.eval_every_min, args.json_out, vars(args))
    print(f'\nToy segmentation, {torch.get_num_threads()} threads, batch '
          f'{args.batch_size}, {args.budget_min:g} min training budget per '
          'model\n')
    print_curves(results, {'mIoU': 'mIoU', 'aAcc': 'aAcc'}, 'mIoU',
                 args.target)


if __name__ == '__main__':
    main()
