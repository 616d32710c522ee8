"""Learnability benchmark: classifiers from scratch on the toy ImageNet set.

    python tools/benchmarks/toy_classification.py [--budget-min 5]
        [--models affnet-et mobilevit-xxs]

AFFNet-ET (configs/classification/affnet-et_toy.py) and mmpretrain's
MobileViT-XXS (its ImageNet model with the toy class count) train from
scratch on the toy ImageNet-layout set for the same budget of training
wall-clock time, with the same data, pipeline, batch size, optimizer and
schedule (sized by a short speed calibration of each model). Top-1 accuracy
on the whole validation split is measured every ``--eval-every-min`` minutes
of training (not charged to the budget). Prints the curves side by side and
the first minute at which each model reached ``--target``.
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
TOY_CONFIG = 'configs/classification/affnet-et_toy.py'
MODELS = ('affnet-et', 'mobilevit-xxs')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS),
                        choices=MODELS)
    parser.add_argument('--budget-min', type=float, default=5.)
    parser.add_argument('--eval-every-min', type=float, default=0.5)
    parser.add_argument('--target', type=float, default=90.,
                        help='top-1 (%%) whose first arrival is reported')
    parser.add_argument('--data-root', default='data/toy_imagenet_bench/')
    parser.add_argument('--train-per-class', type=int, default=64)
    parser.add_argument('--val-per-class', type=int, default=16)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--work-dir', default='work_dirs/toy_classification')
    parser.add_argument('--json-out', default=None)
    return parser.parse_args(argv)


def make_data(args) -> str:
    root = args.data_root.rstrip('/') + '/'
    if not osp.isdir(osp.join(root, 'val')):
        subprocess.run([
            sys.executable,
            osp.join(ROOT, 'tools/dataset_converters/make_toy_imagenet.py'),
            root, '--train-per-class', str(args.train_per_class),
            '--val-per-class', str(args.val_per_class)
        ], check=True)
    return root


def mobilevit_model(cfg: Config) -> dict:
    """mmpretrain's MobileViT-XXS ImageNet model with the toy head size."""
    import mmpretrain
    base = Config.fromfile(
        osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs',
                 'mobilevit', 'mobilevit-xxsmall_8xb128_in1k.py'))
    model = base.model
    model.head.num_classes = cfg.model.head.num_classes
    # same input convention as the AFFNet config: RGB in [0, 1]
    model.data_preprocessor = cfg.model.get('data_preprocessor')
    return model


def build_cfg(name: str, args, data_root: str, max_iters: int) -> Config:
    cfg = Config.fromfile(osp.join(ROOT, TOY_CONFIG))
    if name == 'mobilevit-xxs':
        cfg.model = mobilevit_model(cfg)
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = data_root
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=args.lr, weight_decay=0.05),
        clip_grad=dict(max_norm=10, norm_type=2))
    iteration_based(cfg, max_iters, args.lr, warmup=10)
    cfg.custom_hooks = []
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
    print(f'\nToy classification, {torch.get_num_threads()} threads, batch '
          f'{args.batch_size}, {args.budget_min:g} min training budget per '
          'model\n')
    print_curves(results, {'top-1': 'accuracy/top1'}, 'accuracy/top1',
                 args.target)


if __name__ == '__main__':
    main()
