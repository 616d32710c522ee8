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
import os
import os.path as osp
import subprocess
import sys

import torch
from mmengine.config import Config

from mmaff.utils.wallclock import compare, iteration_based, print_curves

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODELS = {
    'ssdlite_affnet-et': 'configs/detection/ssdlite_affnet-et_toy.py',
    'retinanet_affnet-et': 'configs/detection/retinanet_affnet-et_fpn_toy.py',
    # mmdet's own SSDLite-MobileNetV2 on the same toy data and schedule
    'ssdlite_mobilenetv2': 'configs/detection/ssdlite_affnet-et_toy.py',
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS),
                        choices=list(MODELS))
    parser.add_argument('--budget-min', type=float, default=20.)
    parser.add_argument('--eval-every-min', type=float, default=2.)
    parser.add_argument('--target', type=float, default=0.5,
                        help='mAP@0.5 whose first arrival is reported')
    parser.add_argument('--data-root', default='data/toy_coco_bench/')
    parser.add_argument('--num-train', type=int, default=256)
    parser.add_argument('--num-val', type=int, default=64)
    parser.add_argument('--image-size', type=int, default=256,
                        help='size of the generated images')
    parser.add_argument('--input-size', type=int, default=256,
                        help='network input size (SSD resize)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--work-dir', default='work_dirs/toy_detection')
    parser.add_argument('--json-out', default=None,
                        help='also write the curves to this JSON file')
    return parser.parse_args(argv)


def make_data(args) -> str:
    root = args.data_root.rstrip('/') + '/'
    if not osp.isfile(osp.join(root, 'annotations', 'instances_val.json')):
        subprocess.run([
            sys.executable,
            osp.join(ROOT, 'tools/dataset_converters/make_toy_coco.py'), root,
            '--num-train', str(args.num_train), '--num-val',
            str(args.num_val), '--size', str(args.image_size)
        ], check=True)
    return root


def mobilenetv2_model(cfg: Config) -> dict:
    """mmdet's SSDLite-MobileNetV2 model with the toy head size."""
    import mmdet
    base = Config.fromfile(
        osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'ssd',
                 'ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'))
    model = copy.deepcopy(base.model)
    model.bbox_head.num_classes = cfg.model.bbox_head.num_classes
    return model


def build_cfg(name: str, args, data_root: str, max_iters: int) -> Config:
    cfg = Config.fromfile(osp.join(ROOT, MODELS[name]))
    if name == 'ssdlite_mobilenetv2':
        cfg.model = mobilenetv2_model(cfg)
    size = (args.input_size, args.input_size)
    for pipeline in _pipelines(cfg):
        for step in pipeline:
            if step['type'] == 'Resize':
                step['scale'] = size
    train = cfg.train_dataloader.dataset
    if train.get('type') == 'RepeatDataset':
        train = train.dataset
    for ds in (train, cfg.val_dataloader.dataset):
        ds.data_root = data_root
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator.ann_file = data_root + 'annotations/instances_val.json'
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=args.lr, weight_decay=0.05),
        clip_grad=dict(max_norm=10, norm_type=2))
    iteration_based(cfg, max_iters, args.lr)
    cfg.custom_hooks = [
        h for h in cfg.get('custom_hooks', [])
        if h['type'] != 'CheckInvalidLossHook'
    ]
    cfg.work_dir = osp.join(args.work_dir, name)
    cfg.randomness = dict(seed=0)
    return cfg


def _pipelines(cfg: Config):
    train = cfg.train_dataloader.dataset
    if train.get('type') == 'RepeatDataset':
        train = train.dataset
    yield train.pipeline
    yield cfg.val_dataloader.dataset.pipeline


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
    print(f'\nToy detection, {torch.get_num_threads()} threads, batch '
          f'{args.batch_size}, input {args.input_size}, '
          f'{args.budget_min:g} min training budget per model\n')
    print_curves(results, {
        'bbox_mAP': 'coco/bbox_mAP',
        'mAP@0.5': 'coco/bbox_mAP_50'
    }, 'coco/bbox_mAP_50', args.target)


if __name__ == '__main__':
    main()
