"""Learnability benchmark: classifiers from scratch on the toy ImageNet set.

    python tools/benchmarks/toy_classification.py [--budget-min 5]
        [--models affnet-et mobilevit-xxs]

AFFNet-ET (configs/classification/affnet-et_8xb128_in1k_toy.py) and
mmpretrain's MobileViT-XXS (its ImageNet model with the toy class count)
train from scratch on the toy ImageNet-layout set for the same budget of
training wall-clock time, with the same data, pipeline, batch size,
optimizer and schedule (sized by a short speed calibration of each model).
Top-1 accuracy on the whole validation split is measured every
``--eval-every-min`` minutes of training (not charged to the budget). Prints
the curves side by side and the first minute at which each model reached ``--target``.
"""
import argparse
import os.path as osp

from mmengine.config import Config

from mmaff.utils.runner_setup import config_from_path
from mmaff.utils.wallclock import (
    add_budget_args,
    ensure_toy_data,
    run_comparison,
    same_training_setup,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = 'configs/classification/affnet-et_8xb128_in1k_toy.py'
MODELS = ('affnet-et', 'mobilevit-xxs')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS),
                        choices=MODELS)
    add_budget_args(
        parser,
        budget_min=5.,
        eval_every_min=0.5,
        target=90.,
        target_help='top-1 (%%) whose first arrival is reported',
        data_root='data/toy_imagenet_bench/',
        batch_size=32,
        work_dir='work_dirs/toy_classification')
    parser.add_argument('--train-per-class', type=int, default=64)
    parser.add_argument('--val-per-class', type=int, default=16)
    return parser.parse_args(argv)


def make_data(args) -> str:
    return ensure_toy_data(
        args.data_root, 'val',
        osp.join(ROOT, 'tools/dataset_converters/make_toy_imagenet.py'), [
            '--train-per-class', str(args.train_per_class),
            '--val-per-class', str(args.val_per_class)
        ])


def mobilevit_model(cfg: Config) -> dict:
    """mmpretrain's MobileViT-XXS ImageNet model with the toy head size."""
    model = config_from_path(
        'mmpretrain::mobilevit/mobilevit-xxsmall_8xb128_in1k.py').model
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
    same_training_setup(cfg, name, args, max_iters, weight_decay=0.05,
                        warmup=10)
    cfg.custom_hooks = []
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    run_comparison(
        args, ROOT, lambda: make_data(args),
        lambda name, data_root, iters: build_cfg(name, args, data_root,
                                                 iters),
        'Toy classification', {'top-1': 'accuracy/top1'}, 'accuracy/top1')


if __name__ == '__main__':
    main()
