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
the curves side by side and the first minute at which each model reached
``--target``.
"""
import argparse
import os.path as osp

from benchmark_utils import (
    ROOT,
    ToySet,
    budget_parser,
    run_comparison,
    same_training_setup,
)
from mmengine.config import Config
from mmengine.hub import get_config

TOY_CONFIG = 'configs/classification/affnet-et_8xb128_in1k_toy.py'
MODELS = ('affnet-et', 'mobilevit-xxs')
TOY_SET = ToySet('make_toy_imagenet.py', 'val',
                 dict(train_per_class=64, val_per_class=16))


def parse_args(argv=None) -> argparse.Namespace:
    return budget_parser(
        __doc__, MODELS, 'toy_classification', TOY_SET, budget_min=5.,
        eval_every_min=0.5, batch_size=32, target=90.,
        target_name='top-1 (%)').parse_args(argv)


def mobilevit_model(cfg: Config) -> dict:
    """mmpretrain's MobileViT-XXS ImageNet model with the toy head size."""
    model = get_config(
        'mmpretrain::mobilevit/mobilevit-xxsmall_8xb128_in1k.py').model
    model.head.num_classes = cfg.model.head.num_classes
    # same input convention as the AFFNet config: RGB in [0, 1]
    model.data_preprocessor = cfg.model.get('data_preprocessor')
    return model


def build_cfg(name: str, args: argparse.Namespace, data_root: str,
              max_iters: int) -> Config:
    cfg = Config.fromfile(osp.join(ROOT, TOY_CONFIG))
    if name == 'mobilevit-xxs':
        cfg.model = mobilevit_model(cfg)
    same_training_setup(cfg, name, args, data_root, max_iters,
                        weight_decay=0.05, warmup=10)
    cfg.custom_hooks = []
    return cfg


def main(argv=None) -> None:
    run_comparison(parse_args(argv), TOY_SET, build_cfg,
                   'Toy classification', {'top-1': 'accuracy/top1'},
                   'accuracy/top1')


if __name__ == '__main__':
    main()
