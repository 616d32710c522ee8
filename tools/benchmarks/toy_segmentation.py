"""Learnability benchmark: DeepLabv3 segmenters from scratch on the toy set.

    python tools/benchmarks/toy_segmentation.py [--budget-min 10]
        [--models deeplabv3_affnet-et deeplabv3_mobilenetv2]

DeepLabv3-AFFNet-ET (configs/segmentation/
deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512_toy.py) and mmseg's
DeepLabv3-MobileNetV2-d8 (its ASPP head and auxiliary FCN head as
mmseg configures them) train from scratch on the toy ADE20K-layout set for
the same budget of training wall-clock time, with the same data, pipeline,
batch size, optimizer and schedule (sized by a short speed calibration of
each model). ``IoUMetric`` on the whole validation split runs every
``--eval-every-min`` minutes of training (not charged to the budget). Prints
mIoU against training minutes side by side and the first minute at which
each model reached ``--target``.
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

TOY_CONFIG = ('configs/segmentation/'
              'deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512_toy.py')
MODELS = ('deeplabv3_affnet-et', 'deeplabv3_mobilenetv2')
TOY_SET = ToySet('make_toy_ade20k.py', osp.join('annotations', 'validation'),
                 dict(num_train=128, num_val=32))


def parse_args(argv=None) -> argparse.Namespace:
    return budget_parser(
        __doc__, MODELS, 'toy_segmentation', TOY_SET, budget_min=10.,
        eval_every_min=1., batch_size=4, target=60.,
        target_name='mIoU (%)').parse_args(argv)


def mobilenetv2_model(cfg: Config) -> dict:
    """mmseg's DeepLabv3-MobileNetV2-d8 with the toy class count and crop,
    from scratch (no ImageNet checkpoint)."""
    model = get_config(
        'mmseg::mobilenet_v2/'
        'mobilenet-v2-d8_deeplabv3_4xb4-160k_ade20k-512x512.py').model
    model.pretrained = None
    model.data_preprocessor.size = cfg.model.data_preprocessor.size
    num_classes = cfg.model.decode_head.num_classes
    model.decode_head.num_classes = num_classes
    model.auxiliary_head.num_classes = num_classes
    return model


def build_cfg(name: str, args: argparse.Namespace, data_root: str,
              max_iters: int) -> Config:
    cfg = Config.fromfile(osp.join(ROOT, TOY_CONFIG))
    if name == 'deeplabv3_mobilenetv2':
        cfg.model = mobilenetv2_model(cfg)
    return same_training_setup(cfg, name, args, data_root, max_iters,
                               weight_decay=0.01, warmup=20)


def main(argv=None) -> None:
    run_comparison(parse_args(argv), TOY_SET, build_cfg,
                   'Toy segmentation', {'mIoU': 'mIoU', 'aAcc': 'aAcc'},
                   'mIoU')


if __name__ == '__main__':
    main()
