"""Speed of AFFNet against its peers, side by side in one process.

    python tools/benchmarks/speed.py [--sections models mixer train gflops
        deployment] [--threads 2] [--device cpu|cuda] [--amp bf16|fp16]
        [--compile] [--runtimes onnxruntime openvino]
        [--out-dir work_dirs/speed]

Sections:

- ``models``: backbone + classifier inference at 256x256, batch 1 and 8
  (CUDA: 1 and 64), AFFNet-ET / -T / AFFNet against mmpretrain's
  MobileViT-XXS / -XS / -S and MobileNetV2-1.0, each model as users run it
  (``plain``: NCHW, as built) and in inference form (``prepared``: BN folded
  into the convolutions, channels-last, see
  :func:`mmaff.prepare_for_inference`). Ratios compare like with like.
- ``mixer``: one token mixer at a time on a square map of C channels, from
  8x8 to 128x128 tokens: the AFF filter, multi-head self-attention (with
  its projections), a 7x7 depthwise convolution and a depthwise convolution
  whose kernel is as large as the map. Log-log plot of time against tokens.
- ``train``: one training step (data preprocessor, forward, loss, backward,
  SGD step) of SSDLite-AFFNet-ET against mmdet's SSDLite-MobileNetV2 at
  320x320, batch 8, and of DeepLabv3-AFFNet-ET against mmseg's
  DeepLabv3-MobileNetV2-d8 at 512x512, batch 4, on synthetic labels.
- ``gflops``: AFFNet's achieved multiply-accumulates per second (counts from
  the FLOP analyzer of tools/analysis_tools/get_flops.py) against the best
  dense 1x1-convolution throughput measured in the same run.
- ``deployment`` (CPU): the classifiers of ``models`` exported to ONNX (dynamo
  exporter, fixed input size and batch; each AFFNet in the DFT mode that is
  faster in the runtime, see ``DEPLOY_DFT``) and run in onnxruntime and/or
  OpenVINO (``--runtimes``, :class:`mmaff.deployment.runtime.RuntimeSession`)
  at batch 1 and 8, interleaved with the prepared PyTorch eager models, against
  the deployment targets (``DEPLOY_TARGETS``), plus onnxruntime's profile of
  the AFFNet exports (time per op type). Exports go to ``OUT_DIR/onnx``.

Every comparison interleaves its candidates (shuffled round-robin, warm-up
calls untimed) and reports medians. Tables go to stdout and
``OUT_DIR/tables.md``, raw samples to ``OUT_DIR/results.json``, plots to
``OUT_DIR/*.png``.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys
from collections.abc import Callable
from statistics import median

import torch
import torch.nn as nn
from benchmark_utils import ROOT, machine_description, time_interleaved

# the checkout's mmaff, also when it is not installed
sys.path.insert(0, ROOT)

from mmaff import prepare_for_inference  # noqa: E402
from mmaff.utils import tune_malloc  # noqa: E402

SECTIONS = ('models', 'mixer', 'train', 'gflops', 'deployment')
CLASSIFIERS = {
    'AFFNet-ET': 'configs/classification/affnet-et_8xb128_in1k.py',
    'AFFNet-T': 'configs/classification/affnet-t_8xb128_in1k.py',
    'AFFNet': 'configs/classification/affnet_8xb128_in1k.py',
    'MobileViT-XXS': 'mmpretrain::mobilevit/mobilevit-xxsmall_8xb128_in1k.py',
    'MobileViT-XS': 'mmpretrain::mobilevit/mobilevit-xsmall_8xb128_in1k.py',
    'MobileViT-S': 'mmpretrain::mobilevit/mobilevit-small_8xb128_in1k.py',
    'MobileNetV2-1.0': 'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py',
}
# (ours, peer, throughput ratio ours / peer to reach): the speed targets
# of this implementation, each marked met or NOT met in the ratio table
# (docs/benchmarks.md, "Against the targets"); they are met on the
# inference form (``prepared``); ``plain`` is the model as built.
TARGETS = [('AFFNet', 'MobileViT-S', 1.5), ('AFFNet-T', 'MobileViT-XS', 1.5),
           ('AFFNet-ET', 'MobileViT-XXS', 1.3),
           ('AFFNet-ET', 'MobileNetV2-1.0', 1.0)]
# training-step speed-up ours / peer to reach, per TRAIN_PAIRS task
TRAIN_TARGETS = {'detection': 1.2}
# share of the best dense 1x1-convolution rate AFFNet should reach
DENSE_TARGET = 0.5
# The deployment targets (ours, peer, ratio to reach), checked per runtime
# and batch; every AFFNet export must also run at least as fast as the same
# model in PyTorch eager (prepared).
DEPLOY_TARGETS = [('AFFNet-ET', 'MobileViT-XXS', 1.3),
                  ('AFFNet-ET', 'MobileNetV2-1.0', 1.0),
                  ('AFFNet', 'MobileViT-S', 1.5)]
# The DFT mode each runtime runs AFFNet faster in (docs/benchmarks.md,
# "Deployment"): ONNX DFT costs 2-3x the whole model in onnxruntime, and
# OpenVINO 2026.4 cannot read the DFTs the dynamo exporter writes.
DEPLOY_DFT = {'onnxruntime': 'matmul', 'openvino': 'matmul'}
TRAIN_PAIRS = {
    'detection': dict(
        ours='configs/detection/ssdlite_affnet-et_8xb24-600e_coco.py',
        peer='mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py',
        names=('SSDLite-AFFNet-ET', 'SSDLite-MobileNetV2'),
        size=320,
        batch=8),
    'segmentation': dict(
        ours='configs/segmentation/'
        'deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512.py',
        peer='mmseg::mobilenet_v2/'
        'mobilenet-v2-d8_deeplabv3_4xb4-160k_ade20k-512x512.py',
        names=('DeepLabv3-AFFNet-ET', 'DeepLabv3-MobileNetV2-d8'),
        size=512,
        batch=4),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sections', nargs='+', default=list(SECTIONS),
                        choices=SECTIONS)
    parser.add_argument('--threads', type=int, default=2,
                        help='torch intra-op threads (CPU)')
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument('--amp', default=None, choices=('bf16', 'fp16'),
                        help='autocast dtype (CUDA); the AFF filter keeps '
                        'its FFTs in fp32 either way')
    parser.add_argument('--compile', action='store_true',
                        help='also time every model under torch.compile '
                        '(optional; slow to start)')
    parser.add_argument('--batches', type=int, nargs='+', default=None,
                        help='inference batch sizes (default 1 8 on CPU, '
                        '1 64 on CUDA)')
    parser.add_argument('--size', type=int, default=256,
                        help='inference input size')
    parser.add_argument('--rounds', type=int, default=30,
                        help='timed calls per model at batch 1 (fewer at '
                        'larger batches, see --images-per-round)')
    parser.add_argument('--images-per-round', type=int, default=240,
                        help='rounds at batch B: max(5, this / B) and at '
                        'most --rounds')
    parser.add_argument('--mixer-channels', type=int, default=64)
    parser.add_argument('--mixer-sizes', type=int, nargs='+',
                        default=[8, 16, 32, 64, 96, 128])
    parser.add_argument('--mixer-budget-s', type=float, default=6.,
                        help='seconds of timed calls per mixer size')
    parser.add_argument('--train-rounds', type=int, default=5)
    parser.add_argument('--train-sizes', type=int, nargs=2, default=None,
                        metavar=('DET', 'SEG'),
                        help='training input sizes (default 320 512)')
    parser.add_argument('--train-batches', type=int, nargs=2, default=None,
                        metavar=('DET', 'SEG'),
                        help='training batch sizes (default 8 4)')
    parser.add_argument('--no-malloc-tuning', action='store_true',
                        help='keep glibc malloc defaults (see '
                        'mmaff.utils.tune_malloc)')
    parser.add_argument('--runtimes', nargs='+', default=None,
                        choices=('onnxruntime', 'openvino'),
                        help='deployment section: ONNX runtimes to run '
                        '(default: those installed)')
    parser.add_argument('--out-dir', default='work_dirs/speed')
    return parser.parse_args(argv)


# ----------------------------------------------------------------- helpers
def config_of(path: str):
    """The config at ``path`` (relative to the checkout), or another
    OpenMMLab package's as ``mmpretrain::dir/name.py``."""
    from mmengine.config import Config
    from mmengine.hub import get_config
    return get_config(path) if '::' in path else Config.fromfile(
        osp.join(ROOT, path))


def build_model(path: str) -> nn.Module:
    return build_from_config(config_of(path))


def build_from_config(cfg) -> nn.Module:
    """The model of ``cfg``, SyncBN reverted to BN (the distributed
    configs' SyncBN needs a process group)."""
    from mmengine.model import revert_sync_batchnorm

    from mmaff.utils.config import build_model_from_config
    return revert_sync_batchnorm(build_model_from_config(cfg))


def installed_runtimes() -> list[str]:
    """The ONNX runtimes this Python can import, of those compared."""
    import importlib.util
    return [r for r in ('onnxruntime', 'openvino')
            if importlib.util.find_spec(r)]


def autocast(args) -> torch.autocast:
    dtype = {'bf16': torch.bfloat16, 'fp16': torch.float16}.get(args.amp)
    return torch.autocast(args.device, dtype=dtype, enabled=dtype is not None)


def inference_call(args, module: Callable, *inputs,
                   **kwargs) -> Callable[[], object]:
    """``module(*inputs, **kwargs)`` without autograd (and under autocast
    with ``--amp``), as a function without arguments to time."""

    def call():
        with torch.inference_mode(), autocast(args):
            return module(*inputs, **kwargs)

    return call


def pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, report: 'Report', name: str) -> None:
    path = osp.join(report.out_dir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    print(f'wrote {path}')


def fmt_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join('---' for _ in header) + '|']
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    return '\n'.join(lines)


def verdict(value: float, target: float) -> str:
    """``'met'`` if ``value`` reaches ``target``, else ``'NOT met'``."""
    return 'met' if value >= target else 'NOT met'


def target_rows(throughput: dict, targets: list[tuple],
                batches: list[int], columns: list[str]) -> list[list[str]]:
    """One table row per (ours, peer, ratio) target and batch: the
    throughput ratio ours / peer in each column (mode or runtime), marked
    met or NOT met. ``throughput`` is keyed ``('name|column', batch)``."""
    rows = []
    for ours, peer, target in targets:
        for batch in batches:
            cells = []
            for column in columns:
                ratio = (throughput[(f'{ours}|{column}', batch)] /
                         throughput[(f'{peer}|{column}', batch)])
                cells.append(f'{ratio:.2f}x {verdict(ratio, target)}')
            rows.append([f'{ours} / {peer}', str(batch), f'{target:.1f}x'] +
                        cells)
    return rows


class Report:
    """Collects the printed tables for ``tables.md`` and the raw samples for
    ``results.json``."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.parts: list[str] = []
        self.results: dict = {}
        os.makedirs(out_dir, exist_ok=True)

    def add(self, text: str) -> None:
        print(text + '\n', flush=True)
        self.parts.append(text)

    def save(self) -> None:
        with open(osp.join(self.out_dir, 'tables.md'), 'w') as f:
            f.write('\n\n'.join(self.parts) + '\n')
        with open(osp.join(self.out_dir, 'results.json'), 'w') as f:
            json.dump(self.results, f, indent=1)


# ------------------------------------------------------------------ models
def classifier_forwards(args, batch: int,
                        models: dict[str, dict[str, nn.Module]]
                        ) -> dict[str, Callable]:
    fns = {}
    for name, variants in models.items():
        for mode, model in variants.items():
            x = torch.rand(batch, 3, args.size, args.size, device=args.device)
            if mode != 'plain':
                x = x.contiguous(memory_format=torch.channels_last)
            fns[f'{name}|{mode}'] = inference_call(
                args, model, x, mode='tensor')
    return fns


def build_classifiers(args) -> dict[str, dict[str, nn.Module]]:
    if args.compile:
        import torch._inductor.config as inductor_config

        # inference only: constant-fold the (already BN-folded) weights
        inductor_config.freezing = True
    models = {}
    for name, path in CLASSIFIERS.items():
        plain = build_model(path).to(args.device)
        models[name] = {'plain': plain,
                        'prepared': prepare_for_inference(plain)}
        if args.compile:
            models[name]['prepared+compile'] = prepare_for_inference(
                plain, compile=True)
    return models


def run_models(args, report: Report) -> dict:
    models = build_classifiers(args)
    modes = list(next(iter(models.values())))
    # The dense-conv reference runs in the same rounds as the models, so
    # the achieved fraction compares figures taken under the same load.
    dense, dense_macs = dense_conv_fns(args) if 'gflops' in \
        args.sections else ({}, {})
    throughput = {}
    for batch in args.batches:
        rounds = min(args.rounds,
                     max(5, args.images_per_round // batch))
        samples = time_interleaved(
            {**classifier_forwards(args, batch, models), **dense}, rounds,
            device=args.device)
        report.results[f'models_b{batch}'] = samples
        for key, values in samples.items():
            throughput[(key, batch)] = (
                dense_macs[key] if key in dense_macs else batch) / median(
                    values)
    rows = []
    for name in models:
        row = [name]
        for batch in args.batches:
            row += [f'{throughput[(f"{name}|{m}", batch)]:.1f}'
                    for m in modes]
        rows.append(row)
    header = ['model'] + [f'b{b} {m}' for b in args.batches for m in modes]
    report.add(f'### Inference throughput (images/s), {args.size}x'
               f'{args.size}, {args.device}'
               f'{", autocast " + args.amp if args.amp else ""}\n\n' +
               fmt_table(header, rows))
    rows = target_rows(throughput, TARGETS, args.batches, modes)
    report.add('### Throughput ratios against the targets (like with like)'
               '\n\n' + fmt_table(['pair', 'batch', 'target'] + modes, rows))
    plot_models(args, throughput, modes, report)
    return throughput


def plot_models(args, throughput: dict, modes: list[str],
                report: Report) -> None:
    plt = pyplot()
    names = list(CLASSIFIERS)
    fig, axes = plt.subplots(1, len(args.batches),
                             figsize=(6 * len(args.batches), 4))
    axes = [axes] if len(args.batches) == 1 else axes
    width = 0.8 / len(modes)
    for ax, batch in zip(axes, args.batches):
        for i, mode in enumerate(modes):
            values = [throughput[(f'{n}|{mode}', batch)] for n in names]
            ax.bar([j + i * width for j in range(len(names))], values,
                   width, label=mode)
        ax.set_xticks([j + width * (len(modes) - 1) / 2
                       for j in range(len(names))])
        ax.set_xticklabels(names, rotation=30, ha='right')
        ax.set_ylabel('images / s')
        ax.set_title(f'batch {batch}, {args.size}x{args.size}, '
                     f'{args.device}')
        ax.legend()
    save_figure(fig, report, f'models_{args.device}.png')


# ------------------------------------------------------------------- mixer
class SelfAttentionMixer(nn.Module):
    """Multi-head self-attention over the H*W tokens of a map, projections
    included (MobileViT's global mixer without its unfolding)."""

    def __init__(self, channels: int, num_heads: int = 4) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(
            channels, num_heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        out = self.attn(tokens, tokens, tokens, need_weights=False)[0]
        return out.transpose(1, 2).reshape(n, c, h, w)


AFF, ATTENTION = 'AFF filter', 'self-attention (4 heads)'


def build_mixers(channels: int, size: int) -> dict[str, nn.Module]:
    from mmaff.models.layers import AdaptiveFrequencyFilter
    return {
        AFF: AdaptiveFrequencyFilter(channels),
        ATTENTION: SelfAttentionMixer(channels),
        'depthwise 7x7': nn.Conv2d(
            channels, channels, 7, padding=3, groups=channels),
        'depthwise map-sized': nn.Conv2d(
            channels, channels, size, padding='same', groups=channels),
    }


def run_mixer(args, report: Report) -> None:
    times: dict[str, dict[int, float]] = {}
    for size in args.mixer_sizes:
        mixers = build_mixers(args.mixer_channels, size)
        x = torch.randn(1, args.mixer_channels, size, size,
                        device=args.device)
        fns = {}
        for name, module in mixers.items():
            fns[name] = inference_call(args, module.to(args.device).eval(),
                                       x)
        # one untimed call each to size the number of rounds
        single = time_interleaved(fns, 1, warmup=1, device=args.device)
        per_round = sum(v[0] for v in single.values())
        rounds = int(max(3, min(30, args.mixer_budget_s / per_round)))
        samples = time_interleaved(fns, rounds, warmup=0,
                                   device=args.device)
        report.results[f'mixer_{size}'] = samples
        for name, values in samples.items():
            times.setdefault(name, {})[size] = median(values)
        print(f'mixer {size}x{size}: ' + ', '.join(
            f'{n} {1e3 * median(v):.2f} ms' for n, v in samples.items()),
            flush=True)
    names = list(times)
    attention, aff = times[ATTENTION], times[AFF]
    rows = [[f'{s}x{s} ({s * s})'] +
            [f'{1e3 * times[n][s]:.3f}' for n in names] +
            [f'{attention[s] / aff[s]:.1f}x'] for s in args.mixer_sizes]
    report.add(f'### Token mixers, {args.mixer_channels} channels, batch 1, '
               f'{args.device} (ms per call)\n\n' +
               fmt_table(['map (tokens)'] + names +
                         ['attention / AFF'], rows))
    # log-log slopes between consecutive sizes: N log N is ~1.1, N^2 is 2
    rows = []
    sizes = args.mixer_sizes
    for a, b in zip(sizes, sizes[1:]):
        row = [f'{a * a} -> {b * b}']
        for n in names:
            slope = math.log(times[n][b] / times[n][a]) / math.log(
                (b * b) / (a * a))
            row.append(f'{slope:.2f}')
        nlogn = math.log((b * b * math.log(b * b)) /
                         (a * a * math.log(a * a))) / math.log(
                             (b * b) / (a * a))
        row.append(f'{nlogn:.2f}')
        rows.append(row)
    report.add('### Growth exponent d log(time) / d log(tokens)\n\n' +
               fmt_table(['tokens'] + names + ['N log N'], rows))
    report.results['mixer_times'] = {
        n: {str(s): t for s, t in v.items()} for n, v in times.items()}
    plot_mixer(args, times, report)


def plot_mixer(args, times: dict, report: Report) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    tokens = [s * s for s in args.mixer_sizes]
    for name, by_size in times.items():
        ax.loglog(tokens, [1e3 * by_size[s] for s in args.mixer_sizes],
                  'o-', label=name)
    # reference slopes through the largest map of the AFF filter and of
    # attention
    n_last = tokens[-1]
    aff_ref = 1e3 * times[AFF][args.mixer_sizes[-1]]
    attn_ref = 1e3 * times[ATTENTION][args.mixer_sizes[-1]]
    ax.loglog(tokens, [
        aff_ref * n * math.log(n) / (n_last * math.log(n_last))
        for n in tokens
    ], 'k:', label='~ N log N')
    ax.loglog(tokens, [attn_ref * (n / n_last)**2 for n in tokens], 'k--',
              label='~ N^2', alpha=0.5)
    ax.set_xlabel('tokens N = H x W')
    ax.set_ylabel('ms per call (batch 1)')
    ax.set_title(f'Token mixers, {args.mixer_channels} channels, '
                 f'{args.device}')
    ax.set_ylim(bottom=1e3 * min(min(v.values())
                                 for v in times.values()) / 3)
    ax.legend(fontsize=8)
    ax.grid(True, which='both', alpha=0.3)
    save_figure(fig, report, f'mixer_scaling_{args.device}.png')


# ------------------------------------------------------------------- train
def detection_sample(size: int, num_classes: int,
                     generator: torch.Generator):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    num = 5
    xy = torch.rand(num, 2, generator=generator) * size * 0.6
    wh = 16 + torch.rand(num, 2, generator=generator) * size * 0.3
    sample = DetDataSample(
        metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                      scale_factor=(1., 1.)))
    sample.gt_instances = InstanceData(
        bboxes=torch.cat([xy, (xy + wh).clamp(max=size)], dim=1),
        labels=torch.randint(0, num_classes, (num, ), generator=generator))
    return sample


def segmentation_sample(size: int, num_classes: int,
                        generator: torch.Generator):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    sample = SegDataSample(
        metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
    sample.gt_sem_seg = PixelData(data=torch.randint(
        0, num_classes, (1, size, size), generator=generator))
    return sample


def synthetic_batch(task: str, batch: int, size: int, num_classes: int,
                    generator: torch.Generator) -> dict:
    """Random uint8 images with random labels in the form the task's data
    preprocessor takes (what a dataloader would yield)."""
    make_sample = {'detection': detection_sample,
                   'segmentation': segmentation_sample}[task]
    return dict(
        inputs=[
            torch.randint(0, 256, (3, size, size), generator=generator,
                          dtype=torch.uint8) for _ in range(batch)
        ],
        data_samples=[
            make_sample(size, num_classes, generator) for _ in range(batch)
        ])


def train_step_fn(path: str, task: str, size: int, batch: int,
                  args) -> Callable:
    return model_train_step(build_model(path).to(args.device), task, size,
                            batch, args.amp)


def model_train_step(model: nn.Module, task: str, size: int, batch: int,
                     amp: str | None = None) -> Callable:
    """One training step (data preprocessor, forward, loss, backward, SGD)
    of a built detector or segmentor on a synthetic batch, as a function
    without arguments."""
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    model.train()
    if getattr(model.data_preprocessor, 'size', None) is not None:
        # mmseg pads every batch to the config's crop size: pad to the size
        # measured instead (the same at the default sizes)
        model.data_preprocessor.size = (size, size)
    generator = torch.Generator().manual_seed(0)
    head = model.bbox_head if task == 'detection' else model.decode_head
    data = synthetic_batch(task, batch, size, head.num_classes, generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    if amp:
        wrapper = AmpOptimWrapper(
            optimizer=optimizer,
            dtype={'bf16': 'bfloat16', 'fp16': 'float16'}[amp])
    else:
        wrapper = OptimWrapper(optimizer=optimizer)

    def step():
        return model.train_step(data, wrapper)

    return step


def run_train(args, report: Report) -> None:
    rows = []
    for i, (task, pair) in enumerate(TRAIN_PAIRS.items()):
        pair = dict(pair)
        if args.train_sizes:
            pair['size'] = args.train_sizes[i]
        if args.train_batches:
            pair['batch'] = args.train_batches[i]
        names = pair['names']
        fns = {
            names[0]: train_step_fn(pair['ours'], task, pair['size'],
                                    pair['batch'], args),
            names[1]: train_step_fn(pair['peer'], task, pair['size'],
                                    pair['batch'], args),
        }
        samples = time_interleaved(fns, args.train_rounds, warmup=2,
                                   device=args.device)
        report.results[f'train_{task}'] = samples
        ours, peer = (median(samples[n]) for n in names)
        print(f'train {task}: {names[0]} {ours:.3f} s/step, {names[1]} '
              f'{peer:.3f} s/step', flush=True)
        target = TRAIN_TARGETS.get(task)
        mark = '' if target is None else (
            f'{target:.1f}x {verdict(peer / ours, target)}')
        rows.append([
            f'{names[0]} vs {names[1]}',
            f'{pair["size"]}x{pair["size"]}, batch {pair["batch"]}',
            f'{ours:.3f}', f'{peer:.3f}', f'{peer / ours:.2f}x', mark
        ])
    report.add(f'### Training step (forward + backward + SGD), {args.device}'
               f'{", autocast " + args.amp if args.amp else ""}\n\n' +
               fmt_table(['pair', 'input', 'ours s/step', 'peer s/step',
                          'speed-up', 'target'], rows))


# ------------------------------------------------------------------ gflops
DENSE = 'dense 1x1 conv'


def dense_conv_fns(args) -> tuple[dict[str, Callable], dict[str, int]]:
    """Dense 1x1 convolutions (channels-last, sizes around AFFNet's) whose
    best multiply-accumulate rate stands for the machine's practical
    limit."""
    shapes = [(8, 128, 64, 64, 128), (8, 256, 32, 32, 256),
              (8, 512, 16, 16, 512), (8, 64, 128, 128, 128)]
    fns, macs = {}, {}
    for n, cin, h, w, cout in shapes:
        conv = nn.Conv2d(cin, cout, 1).to(args.device).to(
            memory_format=torch.channels_last).eval()
        x = torch.randn(n, cin, h, w, device=args.device).contiguous(
            memory_format=torch.channels_last)
        name = f'{DENSE}|{cin}->{cout} at {h}x{w}, batch {n}'
        fns[name] = inference_call(args, conv, x)
        macs[name] = n * h * w * cin * cout
    return fns, macs


def model_macs(path: str, size: int) -> int:
    from mmaff.deployment.tensor_forward import TensorForward
    from mmaff.utils.flops import flop_analyzer
    analyzer = flop_analyzer(
        TensorForward(build_model(path)), (torch.rand(1, 3, size, size), ))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        return analyzer.total()


def run_gflops(args, report: Report, throughput: dict) -> None:
    peaks = {}
    for batch in args.batches:
        rates = {key: rate for (key, b), rate in throughput.items()
                 if b == batch and key.startswith(DENSE)}
        best = max(rates, key=rates.get)
        peaks[batch] = (rates[best], best.split('|', 1)[1])
    rows = []
    for name in ('AFFNet-ET', 'AFFNet-T', 'AFFNet'):
        macs = model_macs(CLASSIFIERS[name], args.size)
        for batch in args.batches:
            peak, shape = peaks[batch]
            row = [name, str(batch), f'{macs / 1e9:.3f}']
            for mode in ('plain', 'prepared'):
                rate = macs * throughput[(f'{name}|{mode}', batch)]
                share = rate / peak
                row.append(f'{rate / 1e9:.1f} = {100 * share:.0f} % '
                           f'{verdict(share, DENSE_TARGET)}')
            rows.append(row + [f'{peak / 1e9:.1f} ({shape})'])
    report.results['dense_conv_gmacs'] = {
        str(b): p[0] / 1e9 for b, p in peaks.items()}
    report.add(
        f'### Achieved throughput, {args.device}\n\n'
        'Dense 1x1 convolutions (four channels-last shapes) run in the same '
        'rounds as the models; the best of them is the reference (target: '
        f'{100 * DENSE_TARGET:.0f} % of it).\n\n' +
        fmt_table(['model', 'batch', 'GMAC per image',
                   'plain GMAC/s (of dense conv)',
                   'prepared GMAC/s (of dense conv)', 'dense conv GMAC/s'],
                  rows))


# -------------------------------------------------------------- deployment
AFFNETS = ('AFFNet-ET', 'AFFNet-T', 'AFFNet')


def export_classifier(model: nn.Module, batch: int, size: int,
                      path: str) -> None:
    """The tensor forward of ``model`` to ONNX as
    tools/deployment/export_onnx.py writes it (dynamo exporter, opset 18),
    for a fixed input shape."""
    import contextlib
    import io

    from mmaff.deployment.export import export_onnx
    # the exporter reports each of its steps on stdout
    with contextlib.redirect_stdout(io.StringIO()):
        export_onnx(model, path, (size, size), batch_size=batch)


def onnx_kernel_events(path: str, threads: int, runs: int = 10) -> list:
    """onnxruntime's per-node kernel-time events of ``runs`` runs of
    ``path`` on a random input, from its built-in profiler. One more run
    goes first, untimed: its events (memory first touched) are left out."""
    import numpy as np
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = osp.splitext(path)[0] + '_profile'
    session = ort.InferenceSession(path, options,
                                   providers=['CPUExecutionProvider'])
    inp = session.get_inputs()[0]
    feed = {inp.name: np.random.randn(*inp.shape).astype(np.float32)}
    for _ in range(runs + 1):
        session.run(None, feed)
    with open(session.end_profiling()) as f:
        events = json.load(f)
    kept, seen = [], set()
    for event in events:
        name = event['name']
        if event.get('cat') != 'Node' or not name.endswith('_kernel_time'):
            continue
        if name in seen:
            kept.append(event)
        seen.add(name)
    return kept


def onnx_profile(path: str, threads: int, runs: int = 10) -> dict:
    """onnxruntime's kernel time per op type of ``path`` (shares of the
    summed kernel time, node counts)."""
    times: dict[str, float] = {}
    counts: dict[str, int] = {}
    for event in onnx_kernel_events(path, threads, runs):
        op = event['args']['op_name']
        times[op] = times.get(op, 0.) + event['dur']
        counts[op] = counts.get(op, 0) + 1
    total = sum(times.values())
    return {op: dict(share=t / total, nodes=counts[op] // runs,
                     ms=t / runs / 1e3)
            for op, t in sorted(times.items(), key=lambda kv: -kv[1])}


def run_deployment(args, report: Report) -> None:
    import numpy as np

    from mmaff.deployment.runtime import RuntimeSession
    from mmaff.models import set_dft_mode
    onnx_dir = osp.join(args.out_dir, 'onnx')
    os.makedirs(onnx_dir, exist_ok=True)
    models = {name: build_model(path).eval()
              for name, path in CLASSIFIERS.items()}
    eager = {name: prepare_for_inference(model)
             for name, model in models.items()}
    runtimes = args.runtimes
    throughput: dict = {}
    exports: dict = {}
    for batch in args.batches:
        x = torch.rand(batch, 3, args.size, args.size)
        fns = {f'{name}|eager': inference_call(
            args, model, x.contiguous(memory_format=torch.channels_last),
            mode='tensor') for name, model in eager.items()}
        for runtime in runtimes:
            for name, model in models.items():
                dft = DEPLOY_DFT[runtime] if name in AFFNETS else None
                path = osp.join(onnx_dir, f'{name}_b{batch}_{args.size}' +
                                (f'_{dft}' if dft else '') + '.onnx')
                if path not in exports.values():
                    if dft:
                        set_dft_mode(model, dft)
                    export_classifier(model, batch, args.size, path)
                exports[(name, runtime, batch)] = path
                session = RuntimeSession(path, runtime, args.threads)
                feed = x.numpy().astype(np.float32)
                fns[f'{name}|{runtime}'] = (
                    lambda session=session, feed=feed: session(feed))
            print(f'deployment: {runtime} sessions for batch {batch} ready',
                  flush=True)
        rounds = min(args.rounds, max(5, args.images_per_round // batch))
        samples = time_interleaved(fns, rounds)
        report.results[f'deployment_b{batch}'] = samples
        for key, values in samples.items():
            throughput[(key, batch)] = batch / median(values)
    columns = ['eager'] + list(runtimes)
    rows = [[name] + [f'{throughput[(f"{name}|{c}", b)]:.1f}'
                      for b in args.batches for c in columns]
            for name in CLASSIFIERS]
    dft_note = ', '.join(f'{r}: {DEPLOY_DFT[r]}' for r in runtimes)
    report.add(
        f'### Deployment: ONNX runtimes (images/s), {args.size}x{args.size},'
        f' cpu, {args.threads} threads\n\n'
        f'Dynamo-exported ONNX, fp32; AFFNet DFT mode per runtime: '
        f'{dft_note}. `eager`: the prepared PyTorch model.\n\n' +
        fmt_table(['model'] + [f'b{b} {c}' for b in args.batches
                               for c in columns], rows))
    rows = target_rows(throughput, DEPLOY_TARGETS, args.batches, columns)
    for name in AFFNETS:
        for batch in args.batches:
            cells = ['-']
            for runtime in runtimes:
                ratio = (throughput[(f'{name}|{runtime}', batch)] /
                         throughput[(f'{name}|eager', batch)])
                cells.append(f'{ratio:.2f}x {verdict(ratio, 1.0)}')
            rows.append([f'{name} runtime / eager', str(batch), '1.0x'] +
                        cells)
    report.add('### Deployment ratios against the targets (same runtime)'
               '\n\n' + fmt_table(['pair', 'batch', 'target'] + columns,
                                  rows))
    if 'onnxruntime' in runtimes:
        profiles = {}
        for name in AFFNETS:
            path = exports[(name, 'onnxruntime', args.batches[0])]
            profiles[name] = onnx_profile(path, args.threads)
        report.results['deployment_profile'] = profiles
        ops = []
        for profile in profiles.values():
            ops += [op for op in list(profile)[:8] if op not in ops]
        rows = [[op] + [
            f'{100 * profiles[n][op]["share"]:.1f} % '
            f'({profiles[n][op]["nodes"]})' if op in profiles[n] else '-'
            for n in AFFNETS
        ] for op in ops]
        report.add(
            f'### onnxruntime profile of the AFFNet exports, batch '
            f'{args.batches[0]}: share of kernel time per op type (nodes)'
            '\n\n' + fmt_table(['op type'] + list(AFFNETS), rows))


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device visible')
    if args.amp and args.device == 'cpu':
        raise SystemExit('--amp is for --device cuda (CPU autocast to half '
                         'types is not what these models deploy with)')
    if 'gflops' in args.sections and 'models' not in args.sections:
        raise SystemExit('--sections gflops needs the models section too '
                         '(it uses the measured throughput)')
    if args.batches is None:
        args.batches = [1, 64] if args.device == 'cuda' else [1, 8]
    if 'deployment' in args.sections:
        if args.device != 'cpu':
            raise SystemExit('--sections deployment runs on the CPU '
                             '(onnxruntime / OpenVINO CPU plugins)')
        if args.runtimes is None:
            args.runtimes = installed_runtimes()
    malloc = False if args.no_malloc_tuning else tune_malloc()
    torch.set_num_threads(args.threads)
    import mmaff  # noqa: F401  (registers AFFNet and the compat fixes)
    report = Report(args.out_dir)
    info = machine_description()
    info['glibc malloc tuned'] = str(malloc)
    report.add('### Machine\n\n' + '\n'.join(
        f'- {k}: {v}' for k, v in info.items()))
    report.results['machine'] = info
    throughput = None
    try:
        if 'models' in args.sections:
            throughput = run_models(args, report)
        if 'gflops' in args.sections:
            run_gflops(args, report, throughput)
        if 'mixer' in args.sections:
            run_mixer(args, report)
        if 'train' in args.sections:
            run_train(args, report)
        if 'deployment' in args.sections:
            run_deployment(args, report)
    finally:
        report.save()
    print(f'tables: {osp.join(args.out_dir, "tables.md")}')


if __name__ == '__main__':
    main()
