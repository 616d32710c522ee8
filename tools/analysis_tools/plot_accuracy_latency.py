"""Accuracy against latency per task, as the paper and its peers plot them:
published accuracy (each figure with its source) against latency measured
here, one point per model and runtime.

    python tools/analysis_tools/plot_accuracy_latency.py \
        [--dense work_dirs/dense_speed/results.json] \
        [--classifiers work_dirs/speed/results.json] [--out-dir docs/images]

``--dense`` is ``tools/benchmarks/dense_speed.py``'s results (SSDLite
320x320, DeepLabv3 512x512, batch 1), ``--classifiers`` the results of
``tools/benchmarks/speed.py --sections deployment`` (256x256, batch 1).
Writes ``accuracy_latency_<task>.png`` per task found, and prints each
point. Models without a published figure for a task are left out (and
named). The DeepLabv3 latencies are those of the 150-class ADE20K heads;
a 21-class VOC head differs in its last 1x1 convolution only.
"""
import argparse
import json
import os
import os.path as osp
import sys
from statistics import median

#: Published accuracy: task -> model -> (figure, source key of SOURCES).
PUBLISHED = {
    'imagenet': {
        'AFFNet-ET': (73.0, 'affnet'),
        'AFFNet-T': (77.0, 'affnet'),
        'AFFNet': (79.8, 'affnet'),
        'MobileViT-XXS': (69.02, 'mmpretrain'),
        'MobileViT-XS': (74.75, 'mmpretrain'),
        'MobileViT-S': (78.25, 'mmpretrain'),
        'MobileNetV2': (71.86, 'mmpretrain'),
    },
    'coco': {
        'AFFNet-T': (25.3, 'afidaf'),
        'AFFNet': (28.4, 'afidaf'),
        'MobileViT-XXS': (19.9, 'mobilevit'),
        'MobileViT-XS': (24.8, 'mobilevit'),
        'MobileViT-S': (27.7, 'mobilevit'),
        'MobileNetV2': (21.3, 'mmdet'),
    },
    'ade20k': {
        'AFFNet-ET': (33.0, 'affnet'),
        'AFFNet-T': (36.9, 'affnet'),
        'AFFNet': (38.4, 'affnet'),
        'MobileNetV2': (34.08, 'mmseg'),
    },
    'voc': {
        'AFFNet-ET': (76.1, 'affnet'),
        'AFFNet-T': (77.8, 'affnet'),
        'AFFNet': (80.5, 'affnet'),
        'MobileViT-XXS': (73.6, 'mobilevit'),
        'MobileViT-XS': (77.1, 'mobilevit'),
        'MobileViT-S': (79.1, 'mobilevit'),
    },
}
SOURCES = {
    'affnet': 'AFFNet paper / official README (microsoft/TokenMixers)',
    'afidaf': 'AFFNet SSDLite figures as quoted by the AFIDAF paper '
    '(second-hand; none for AFFNet-ET)',
    'mobilevit': 'MobileViT paper (Mehta & Rastegari, ICLR 2022): SSDLite '
    '320 COCO, DeepLabv3 512 PASCAL VOC',
    'mmpretrain': 'mmpretrain model zoo (MobileViT: the paper\'s weights '
    're-evaluated; MobileNetV2 1.0, 224x224)',
    'mmdet': 'mmdet model zoo, ssdlite_mobilenetv2-scratch_8xb24-600e_coco',
    'mmseg': 'mmseg model zoo, mobilenet-v2-d8_deeplabv3_4xb4-160k_ade20k',
}
#: Plot per dataset: title, axis label, the measured task and its prefix.
PLOTS = {
    'imagenet': ('ImageNet-1k classification, 256x256', 'top-1 (%)',
                 'classification', ''),
    'coco': ('COCO detection, SSDLite 320x320', 'mAP (%)', 'detection',
             'SSDLite-'),
    'ade20k': ('ADE20K segmentation, DeepLabv3 512x512 (OS 8)', 'mIoU (%)',
               'segmentation', 'DeepLabv3-'),
    'voc': ('PASCAL VOC segmentation, DeepLabv3 512x512 (OS 8)', 'mIoU (%)',
            'segmentation', 'DeepLabv3-'),
}
FAMILIES = {'AFFNet': 'tab:red', 'MobileViT': 'tab:blue',
            'MobileNetV2': 'tab:green'}
MARKERS = {'eager': 'o', 'onnxruntime': 's', 'openvino': '^'}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dense', default='work_dirs/dense_speed/'
                        'results.json')
    parser.add_argument('--classifiers', default='work_dirs/speed/'
                        'results.json')
    parser.add_argument('--out-dir', default='docs/images')
    return parser.parse_args(argv)


def latencies(samples: dict, prefix: str) -> dict:
    """``{(model, runtime): ms}`` from ``name|runtime`` timing samples
    (seconds per batch-1 call), the task prefix dropped and MobileNetV2's
    width suffix too."""
    out = {}
    for key, values in samples.items():
        name, runtime = key.split('|')
        name = name[len(prefix):] if name.startswith(prefix) else name
        out[(name.replace('-1.0', ''), runtime)] = 1e3 * median(values)
    return out


def points(published: dict, measured: dict) -> tuple[list, list]:
    """The (model, runtime, ms, accuracy) points and the measured models
    without a published figure."""
    rows = [(model, runtime, ms, published[model][0])
            for (model, runtime), ms in sorted(measured.items())
            if model in published]
    missing = sorted({m for m, _ in measured} - set(published))
    return rows, missing


def family(model: str) -> str:
    return next(f for f in FAMILIES if model.startswith(f))


def plot(dataset: str, rows: list, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    title, ylabel, _, _ = PLOTS[dataset]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for fam, color in FAMILIES.items():
        for runtime, marker in MARKERS.items():
            line = sorted((ms, acc, m) for m, r, ms, acc in rows
                          if r == runtime and family(m) == fam)
            if not line:
                continue
            xs, ys, names = zip(*line)
            ax.plot(xs, ys, marker=marker, color=color, linestyle='-'
                    if runtime == 'eager' else ':', label=f'{fam}, {runtime}')
            if runtime == 'eager':
                for x, y, name in line:
                    ax.annotate(name, (x, y), textcoords='offset points',
                                xytext=(4, -10), fontsize=7)
    ax.set_xlabel('latency, batch 1, 2 CPU threads (ms)')
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc='lower right')
    sources = sorted({PUBLISHED[dataset][m][1] for m, *_ in rows})
    fig.text(0.01, 0.005, 'accuracy: ' + '; '.join(
        SOURCES[s].split(' (')[0] for s in sources), fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    measured = {}
    for path, keys in ((args.dense, ('detection_b1', 'segmentation_b1')),
                       (args.classifiers, ('deployment_b1', ))):
        if not osp.exists(path):
            print(f'{path}: not found, its tasks are left out')
            continue
        with open(path) as f:
            results = json.load(f)
        for key in keys:
            if key in results:
                task = 'classification' if key == 'deployment_b1' else \
                    key.split('_')[0]
                measured[task] = results[key]
    if not measured:
        print('error: no timing results to plot', file=sys.stderr)
        return 1
    os.makedirs(args.out_dir, exist_ok=True)
    for dataset, (_, _, task, prefix) in PLOTS.items():
        if task not in measured:
            continue
        rows, missing = points(PUBLISHED[dataset],
                               latencies(measured[task], prefix))
        out = osp.join(args.out_dir, f'accuracy_latency_{dataset}.png')
        plot(dataset, rows, out)
        print(f'{out}: {len(rows)} points' + (
            f'; no published {dataset} figure for {", ".join(missing)}'
            if missing else ''))
        for model, runtime, ms, acc in rows:
            print(f'  {model:14s} {runtime:12s} {ms:8.1f} ms  {acc:5.1f}'
                  f'  [{PUBLISHED[dataset][model][1]}]')
    print('sources: ' + '; '.join(f'[{k}] {v}' for k, v in SOURCES.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
