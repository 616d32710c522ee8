"""Pretrain -> fine-tune on the toy sets, against the same runs from scratch.

    python tools/benchmarks/pretrain_finetune.py [--work-dir DIR]
        [--cls-epochs 40] [--seg-iters 200] [--det-epochs 10] [--seeds 0 1]

The path a user takes with the paper's weights, at toy scale, through the
same commands:

1. an AFFNet-ET classifier trains on the toy ImageNet
   (``tools/train.py configs/classification/affnet-et_8xb128_in1k_toy.py``);
2. DeepLabv3-AFFNet-ET (toy ADE20K) and SSDLite-AFFNet-ET (toy COCO) train
   twice with the same iterations, seed and data: from scratch, and from the
   classifier's runner checkpoint through
   ``--cfg-options model.backbone.init_cfg.checkpoint=<cls>/epoch_N.pth``.

Prints each command, then a table of the final validation metrics (mIoU,
COCO box mAP) from scratch and fine-tuned, one row per seed. The toy sets
are generated in ``--work-dir`` (the real formats, as the tests use them).
Figures are what this run measured; nothing is asserted.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS = 'configs/classification/affnet-et_8xb128_in1k_toy.py'
SEG = ('configs/segmentation/'
       'deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512_toy.py')
DET = 'configs/detection/ssdlite_affnet-et_8xb24-600e_coco_toy.py'
# task: (config, metric key in mmengine's scalars.json, column name)
TASKS = {
    'seg': (SEG, 'mIoU', 'DeepLabv3 mIoU (%)'),
    'det': (DET, 'coco/bbox_mAP', 'SSDLite box mAP'),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/pretrain_finetune')
    parser.add_argument('--cls-epochs', type=int, default=40)
    parser.add_argument('--seg-iters', type=int, default=200)
    parser.add_argument('--det-epochs', type=int, default=10)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0])
    parser.add_argument('--tasks', nargs='+', choices=sorted(TASKS),
                        default=sorted(TASKS))
    return parser.parse_args(argv)


def run(cmd: list, log: str) -> None:
    """Run ``cmd`` in the repository root, its output to ``log``; stop with
    the log's tail if it fails."""
    shown = ' '.join(str(c) for c in cmd)
    print(f'$ {shown}', flush=True)
    start = time.perf_counter()
    os.makedirs(osp.dirname(log), exist_ok=True)
    with open(log, 'w') as f:
        result = subprocess.run([str(c) for c in cmd], cwd=ROOT, stdout=f,
                                stderr=subprocess.STDOUT)
    if result.returncode != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise SystemExit(f'{tail}\nerror: the command above failed '
                         f'(exit {result.returncode}); log: {log}')
    print(f'  done in {time.perf_counter() - start:.0f} s', flush=True)


def make_toy_sets(root: str) -> dict:
    """The three toy sets under ``root`` (generated once)."""
    sets = {
        'imagenet': ('make_toy_imagenet.py', '--train-per-class', '64',
                     '--val-per-class', '16', '--size', '64'),
        'ade20k': ('make_toy_ade20k.py', '--num-train', '64', '--num-val',
                   '16', '--size', '128'),
        'coco': ('make_toy_coco.py', '--num-train', '64', '--num-val', '16',
                 '--size', '256'),
    }
    roots = {}
    for kind, (script, *options) in sets.items():
        out = osp.join(root, f'toy_{kind}')
        if not osp.isdir(out):
            run([sys.executable, f'tools/dataset_converters/{script}', out,
                 *options], osp.join(root, f'make_toy_{kind}.log'))
        roots[kind] = out + '/'
    return roots


def data_options(task: str, data_root: str) -> dict:
    """``--cfg-options`` pointing a toy config at ``data_root``."""
    train = 'train_dataloader.dataset'
    options = {}
    if task == 'det':
        train += '.dataset'  # a RepeatDataset around the COCO set
        ann = data_root + 'annotations/instances_val.json'
        options = {'val_evaluator.ann_file': ann,
                   'test_evaluator.ann_file': ann}
    return {
        f'{train}.data_root': data_root,
        'val_dataloader.dataset.data_root': data_root,
        'test_dataloader.dataset.data_root': data_root,
        **options,
    }


def train(config: str, work_dir: str, seed: int, options: dict) -> str:
    """tools/train.py on ``config``; returns the work dir."""
    run([
        sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
        '--cfg-options', f'randomness.seed={seed}',
        *[f'{k}={v}' for k, v in options.items()]
    ], osp.join(work_dir + '.log'))
    return work_dir


def last_metric(work_dir: str, key: str) -> float:
    """The last validation value of ``key`` the run logged."""
    found = None
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json'))):
        with open(path) as f:
            for line in f:
                entry = json.loads(line)
                if key in entry:
                    found = entry[key]
    if found is None:
        raise SystemExit(f'error: no {key!r} in the logs of {work_dir}')
    return float(found)


def main(argv=None) -> None:
    args = parse_args(argv)
    root = osp.abspath(args.work_dir)
    roots = make_toy_sets(osp.join(root, 'data'))
    results = []
    for seed in args.seeds:
        cls_dir = train(
            CLS, osp.join(root, f'cls_seed{seed}'), seed, {
                'train_dataloader.dataset.data_root': roots['imagenet'],
                'val_dataloader.dataset.data_root': roots['imagenet'],
                'test_dataloader.dataset.data_root': roots['imagenet'],
                'train_cfg.max_epochs': args.cls_epochs,
                'train_cfg.val_interval': args.cls_epochs,
                'default_hooks.checkpoint.interval': args.cls_epochs,
            })
        top1 = last_metric(cls_dir, 'accuracy/top1')
        pretrained = osp.join(cls_dir, f'epoch_{args.cls_epochs}.pth')
        row = {'seed': seed, 'cls top-1 (%)': top1}
        for task in args.tasks:
            config, key, column = TASKS[task]
            if task == 'seg':
                length = {
                    'train_cfg.max_iters': args.seg_iters,
                    'train_cfg.val_interval': args.seg_iters,
                    'default_hooks.checkpoint.interval': args.seg_iters,
                    # the toy schedule's poly decay ends with the run
                    'param_scheduler.1.end': args.seg_iters,
                }
                data = data_options(task, roots['ade20k'])
            else:
                length = {
                    'train_cfg.max_epochs': args.det_epochs,
                    'train_cfg.val_interval': args.det_epochs,
                    'default_hooks.checkpoint.interval': args.det_epochs,
                }
                data = data_options(task, roots['coco'])
            for start, checkpoint in (('scratch', None),
                                      ('fine-tuned', pretrained)):
                work = train(
                    config, osp.join(root, f'{task}_{start}_seed{seed}'),
                    seed, {
                        **data,
                        **length,
                        'model.backbone.init_cfg.checkpoint': checkpoint,
                    })
                value = last_metric(work, key)
                row[f'{column}, {start}'] = value * (100 if task == 'det'
                                                     else 1)
        results.append(row)
    columns = list(results[0])
    print('\n| ' + ' | '.join(columns) + ' |')
    print('|' + '---|' * len(columns))
    for row in results:
        print('| ' + ' | '.join(
            f'{row[c]:.1f}' if isinstance(row[c], float) else str(row[c])
            for c in columns) + ' |')
    with open(osp.join(root, 'results.json'), 'w') as f:
        json.dump(dict(args=vars(args), results=results), f, indent=1)
    print(f'\nresults: {osp.join(root, "results.json")}')


if __name__ == '__main__':
    main()
