"""Learnability benchmark: detectors trained from scratch on the toy set.

    python tools/benchmarks/toy_detection.py [--budget-min 20]
        [--models ssdlite_affnet-et retinanet_affnet-et ssdlite_mobilenetv2]

Each model trains from scratch on the toy COCO-format set
(tools/dataset_converters/make_toy_coco.py) for a fixed budget of training
wall-clock time on this machine, with the real mmdet pipelines, and is
evaluated with ``CocoMetric`` on the full validation split every
``--eval-every-min`` minutes of training (evaluation time is not charged to
the budget). Prints bbox mAP and mAP@0.5 against training minutes for every
model side by side, and the first minute at which mAP@0.5 reached
``--target``. All models share the data, input size, batch size, optimizer
and schedule; the schedule (cosine over the iterations that fit in the
budget) is sized by a short speed calibration of each model.
"""
import argparse
import copy
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

MODELS = {
    'ssdlite_affnet-et':
    'configs/detection/ssdlite_affnet-et_8xb24-600e_coco_toy.py',
    'retinanet_affnet-et':
    'configs/detection/retinanet_affnet-et_fpn_1x_coco_toy.py',
    # mmdet's own SSDLite-MobileNetV2 on the same toy data and schedule
    'ssdlite_mobilenetv2':
    'configs/detection/ssdlite_affnet-et_8xb24-600e_coco_toy.py',
}
# --size is the side of the generated images, --input-size the network's
TOY_SET = ToySet('make_toy_coco.py',
                 osp.join('annotations', 'instances_val.json'),
                 dict(num_train=256, num_val=64, size=256))


def parse_args(argv=None) -> argparse.Namespace:
    parser = budget_parser(
        __doc__, list(MODELS), 'toy_detection', TOY_SET, budget_min=20.,
        eval_every_min=2., batch_size=8, target=0.5, target_name='mAP@0.5')
    parser.add_argument('--input-size', type=int, default=256,
                        help='network input size (SSD resize)')
    return parser.parse_args(argv)


def mobilenetv2_model(cfg: Config) -> dict:
    """mmdet's SSDLite-MobileNetV2 model with the toy head size."""
    base = get_config(
        'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py')
    model = copy.deepcopy(base.model)
    model.bbox_head.num_classes = cfg.model.bbox_head.num_classes
    # mmdet 3.3.0's SSDHead cannot run its val step (README, Detection)
    model.bbox_head.type = 'mmaff.SSDHeadWithLossCls'
    return model


def build_cfg(name: str, args: argparse.Namespace, data_root: str,
              max_iters: int) -> Config:
    cfg = Config.fromfile(osp.join(ROOT, MODELS[name]))
    if name == 'ssdlite_mobilenetv2':
        cfg.model = mobilenetv2_model(cfg)
    size = (args.input_size, args.input_size)
    for pipeline in _pipelines(cfg):
        for step in pipeline:
            if step['type'] == 'Resize':
                step['scale'] = size
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator.ann_file = data_root + 'annotations/instances_val.json'
    cfg.test_evaluator = cfg.val_evaluator
    same_training_setup(cfg, name, args, data_root, max_iters,
                        weight_decay=0.05)
    cfg.custom_hooks = [
        h for h in cfg.get('custom_hooks', [])
        if h['type'] != 'CheckInvalidLossHook'
    ]
    return cfg


def _pipelines(cfg: Config):
    train = cfg.train_dataloader.dataset
    # dataset wrappers (RepeatDataset) hold the real dataset inside
    yield train.get('dataset', train).pipeline
    yield cfg.val_dataloader.dataset.pipeline


def main(argv=None) -> None:
    args = parse_args(argv)
    run_comparison(
        args, TOY_SET, build_cfg,
        f'Toy detection (input {args.input_size})', {
            'bbox_mAP': 'coco/bbox_mAP',
            'mAP@0.5': 'coco/bbox_mAP_50'
        }, 'coco/bbox_mAP_50')


if __name__ == '__main__':
    main()
