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

from mmengine.config import Config

from mmaff.utils.runner_setup import config_from_path
from mmaff.utils.wallclock import (
    add_budget_args,
    ensure_toy_data,
    run_comparison,
    same_training_setup,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_CONFIG = ('configs/segmentation/'
              'deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512_toy.py')
MODELS = ('deeplabv3_affnet-et', 'deeplabv3_mobilenetv2')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS),
                        choices=MODELS)
    add_budget_args(
        parser,
        budget_min=10.,
        eval_every_min=1.,
        target=60.,
        target_help='mIoU (%%) whose first arrival is reported',
        data_root='data/toy_ade20k_bench/',
        batch_size=4,
        work_dir='work_dirs/toy_segmentation')
    parser.add_argument('--num-train', type=int, default=128)
    parser.add_argument('--num-val', type=int, default=32)
    return parser.parse_args(argv)


def make_data(args) -> str:
    return ensure_toy_data(
        args.data_root, osp.join('annotations', 'validation'),
        osp.join(ROOT, 'tools/dataset_converters/make_toy_ade20k.py'),
        ['--num-train',
         str(args.num_train), '--num-val',
         str(args.num_val)])


def mobilenetv2_model(cfg: Config) -> dict:
    """mmseg's DeepLabv3-MobileNetV2-d8 with the toy class count and crop,
    from scratch (no ImageNet checkpoint)."""
    model = config_from_path(
        'mmseg::mobilenet_v2/'
        'mobilenet-v2-d8_deeplabv3_4xb4-160k_ade20k-512x512.py').model
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
    return same_training_setup(cfg, name, args, max_iters,
                               weight_decay=0.01, warmup=20)


def main(argv=None) -> None:
    args = parse_args(argv)
    run_comparison(
        args, ROOT, lambda: make_data(args),
        lambda name, data_root, iters: build_cfg(name, args, data_root,
                                                 iters),
        'Toy segmentation', {'mIoU': 'mIoU', 'aAcc': 'aAcc'}, 'mIoU')


if __name__ == '__main__':
    main()
