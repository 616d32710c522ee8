"""Dense prediction at deployment sizes: detectors at 320x320, segmentors
at 512x512, eager and exported, against the models AFFNet replaces.

    python tools/benchmarks/dense_speed.py [--tasks detection segmentation]
        [--models AFFNet-ET MobileViT-XXS MobileNetV2] [--batches 1]
        [--runtimes onnxruntime openvino] [--threads 2] [--train]
        [--profile] [--out-dir work_dirs/dense_speed]

The models (tools/benchmarks/dense_models.py): SSDLite with AFFNet-ET /
-T / AFFNet, MobileViT-XXS / -XS / -S in the same neck and head, and
mmdet's SSDLite-MobileNetV2; DeepLabv3 at output stride 8 with AFFNet-ET /
-T / AFFNet, MobileViT-XXS / -XS / -S (dilated like ml-cvnets'
DeepLabv3-MobileViT) and mmseg's DeepLabv3-MobileNetV2-d8. Each runs end to
end, post-processing included (detectors: decoding and NMS to at most 100
boxes; segmentors: the label map at the input size):

- ``eager``: the PyTorch model after :func:`mmaff.prepare_for_inference`;
- ``onnxruntime`` / ``openvino``: its ONNX export for that runtime
  (dynamo exporter, fixed size and batch, ``--postprocess --backend
  RUNTIME`` as ``tools/deployment/export_onnx.py`` writes it; AFFNet in the
  matmul DFT mode).

``--train`` adds one training step of each (forward, loss, backward, SGD)
at its training size (SSDLite 320x320 batch 8, DeepLabv3 512x512 batch 4).
``--profile`` splits each batch-1 onnxruntime export's kernel time by
part: the token mixer (AFF filters, MobileViT's attention), the rest of
the backbone, neck and head, post-processing, and what the runtime adds.
Every comparison is one interleaved run (shuffled round-robin, warm-up
untimed; medians). Ratios against the targets of the dense deployment
issue are printed per runtime. Tables go to stdout and ``OUT_DIR/tables.md``,
samples to ``OUT_DIR/results.json``, exports to ``OUT_DIR/onnx``.
"""
import argparse
import contextlib
import io
import os
import os.path as osp
import sys
from statistics import median

import torch
from benchmark_utils import ROOT, machine_description, time_interleaved
from dense_models import MOBILEVITS, dense_configs

sys.path.insert(0, ROOT)

from speed import (  # noqa: E402
    DEPLOY_DFT,
    Report,
    build_from_config,
    fmt_table,
    inference_call,
    installed_runtimes,
    model_train_step,
    onnx_kernel_events,
    verdict,
)

from mmaff import prepare_for_inference  # noqa: E402
from mmaff.utils import tune_malloc  # noqa: E402

TASKS = {'detection': 320, 'segmentation': 512}
TRAIN_BATCH = {'detection': 8, 'segmentation': 4}
NAMES = ['AFFNet-ET', 'AFFNet-T', 'AFFNet', *MOBILEVITS, 'MobileNetV2']
PREFIX = {'detection': 'SSDLite', 'segmentation': 'DeepLabv3'}
# (task, ours, peer, speed-up to reach) at batch 1, per runtime
TARGETS = [
    ('detection', 'AFFNet-ET', 'MobileViT-XXS', 1.3),
    ('detection', 'AFFNet-ET', 'MobileNetV2', 1.0),
    ('segmentation', 'AFFNet-ET', 'MobileViT-XXS', 2.0),
    ('segmentation', 'AFFNet-ET', 'MobileNetV2', 1.0),
]
TRAIN_TARGETS = [('detection', 'AFFNet-ET', 'MobileViT-XXS', 1.3)]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--tasks', nargs='+', default=list(TASKS),
                        choices=list(TASKS))
    parser.add_argument('--models', nargs='+', default=NAMES, choices=NAMES)
    parser.add_argument('--batches', type=int, nargs='+', default=[1])
    parser.add_argument('--runtimes', nargs='+', default=None,
                        choices=('onnxruntime', 'openvino'),
                        help='ONNX runtimes (default: those installed)')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=20)
    parser.add_argument('--train', action='store_true',
                        help='also time one training step of each model')
    parser.add_argument('--train-rounds', type=int, default=5)
    parser.add_argument('--profile', action='store_true',
                        help='also profile each batch-1 onnxruntime export '
                        'by part (token mixer, rest of the backbone, neck '
                        'and head, post-processing)')
    parser.add_argument('--out-dir', default='work_dirs/dense_speed')
    args = parser.parse_args(argv)
    # speed.inference_call's settings: fp32 on the CPU
    args.amp, args.device = None, 'cpu'
    if args.runtimes is None:
        args.runtimes = installed_runtimes()
    return args


def export_path(out_dir: str, name: str, batch: int, size: int,
                runtime: str) -> str:
    """Where the export of model ``name`` for ``runtime`` goes; one file
    serves both runtimes where their exports are the same (detectors)."""
    tag = f'_{runtime}' if name.startswith(PREFIX['segmentation']) else ''
    return osp.join(out_dir, 'onnx', f'{name}_b{batch}_{size}{tag}.onnx')


def inference_fns(args, task: str, batch: int, models: dict) -> dict:
    """``'name|form'`` to a call of the end-to-end model in that form."""
    import numpy as np

    from mmaff.deployment.export import export_onnx, exportable
    from mmaff.deployment.runtime import RuntimeSession
    onnx_dir = osp.join(args.out_dir, 'onnx')
    os.makedirs(onnx_dir, exist_ok=True)
    size = TASKS[task]
    x = torch.randn(batch, 3, size, size)
    fns = {}
    for name, model in models.items():
        prepared = prepare_for_inference(model)
        module = exportable(prepared, postprocess=True)
        fns[f'{name}|eager'] = inference_call(
            args, module, x.contiguous(memory_format=torch.channels_last))
        for runtime in args.runtimes:
            dft = DEPLOY_DFT[runtime] if 'AFFNet' in name else None
            path = export_path(args.out_dir, name, batch, size, runtime)
            if not osp.exists(path):
                # the exporter reports each of its steps on stdout
                with contextlib.redirect_stdout(io.StringIO()):
                    export_onnx(model, path, (size, size), batch,
                                postprocess=True, dft_mode=dft,
                                backend=runtime)
                print(f'exported {path}', flush=True)
            session = RuntimeSession(path, runtime, args.threads)
            feed = x.numpy().astype(np.float32)
            fns[f'{name}|{runtime}'] = (
                lambda session=session, feed=feed: session(feed))
    return fns


#: Parts of a dense model for the profile, by module scope: the token
#: mixer (AFF filters, MobileViT's attention) apart from the rest
PARTS = ('mixer', 'backbone (rest)', 'neck + head', 'post-processing',
         'added by the runtime')


def part_of(scopes: list[str]) -> str:
    """The part of :data:`PARTS` a node with these module scopes (the
    dynamo exporter's ``pkg.torch.onnx.name_scopes``) belongs to."""
    names = [s for s in scopes if s.startswith('model.')]
    if not names:
        return 'post-processing'
    if any(n.endswith(('.filter', '.attn')) or '.filter.' in n
           or '.attn.' in n for n in names):
        return 'mixer'
    if names[0] == 'model.backbone':
        return 'backbone (rest)'
    return 'neck + head'


def onnx_part_profile(path: str, threads: int, runs: int = 10) -> dict:
    """onnxruntime's kernel time (ms per run) of each part of the model in
    ``path``. Nodes onnxruntime adds (layout reorders) or renames beyond
    recognition count as 'added by the runtime'."""
    import ast

    import onnx
    scopes = {}
    for node in onnx.load(path, load_external_data=False).graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        names = meta.get('pkg.torch.onnx.name_scopes')
        part = part_of(ast.literal_eval(names) if names else [])
        # onnxruntime names rewritten nodes after them or their output
        for name in (node.name, *node.output):
            scopes[name] = part
    times = dict.fromkeys(PARTS, 0.)
    for event in onnx_kernel_events(path, threads, runs):
        # fused or converted nodes: 'node_silu/QuickGeluFusion/',
        # 'relu_5_nchwc'; layout reorders match no name
        node = event['name'][:-len('_kernel_time')].split('/')[0]
        node = node[:-len('_nchwc')] if node.endswith('_nchwc') else node
        part = scopes.get(node, 'added by the runtime')
        times[part] += event['dur'] / runs / 1e3
    return times


def ratio_rows(times: dict, targets: list, task: str, columns: list,
               batch: int) -> list:
    rows = []
    for target_task, ours, peer, target in targets:
        if target_task != task:
            continue
        ours, peer = f'{PREFIX[task]}-{ours}', f'{PREFIX[task]}-{peer}'
        if not all(f'{m}|{c}' in times for m in (ours, peer)
                   for c in columns):
            continue
        cells = []
        for column in columns:
            speedup = times[f'{peer}|{column}'] / times[f'{ours}|{column}']
            cells.append(f'{speedup:.2f}x {verdict(speedup, target)}')
        rows.append([f'{ours} vs {peer}', str(batch), f'{target:.1f}x'] +
                    cells)
    return rows


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    tune_malloc()
    report = Report(args.out_dir)
    report.results['machine'] = machine_description()
    for task in args.tasks:
        configs = dense_configs(task, args.models)
        models = {name: build_from_config(cfg).eval()
                  for name, cfg in configs.items()}
        size = TASKS[task]
        columns = ['eager'] + list(args.runtimes)
        for batch in args.batches:
            fns = inference_fns(args, task, batch, models)
            samples = time_interleaved(fns, args.rounds)
            report.results[f'{task}_b{batch}'] = samples
            times = {key: median(values) for key, values in samples.items()}
            rows = [[name] + [f'{1e3 * times[f"{name}|{c}"]:.1f}'
                              for c in columns] for name in models]
            report.add(
                f'### {PREFIX[task]} {size}x{size}, batch {batch}, end to '
                f'end (ms, median of {args.rounds}), cpu, {args.threads} '
                'threads\n\n' + fmt_table(['model'] + columns, rows))
            rows = ratio_rows(times, TARGETS, task, columns, batch)
            if rows:
                report.add('### Against the targets (speed-up, same '
                           'runtime)\n\n' + fmt_table(
                               ['pair', 'batch', 'target'] + columns, rows))
        if args.profile and 'onnxruntime' in args.runtimes and \
                1 in args.batches:
            profiles = {name: onnx_part_profile(
                export_path(args.out_dir, name, 1, size, 'onnxruntime'),
                args.threads) for name in models}
            report.results[f'{task}_profile'] = profiles
            rows = [[name] + [f'{ms:.1f}' for ms in parts.values()] +
                    [f'{sum(parts.values()):.1f}']
                    for name, parts in profiles.items()]
            report.add(
                f'### {PREFIX[task]} {size}x{size} in onnxruntime, batch 1: '
                'kernel time by part (ms per run, profiler)\n\n' +
                fmt_table(['model', *PARTS, 'total'], rows))
        if args.train:
            fns = {name: model_train_step(build_from_config(cfg), task, size,
                                          TRAIN_BATCH[task])
                   for name, cfg in configs.items()}
            samples = time_interleaved(fns, args.train_rounds, warmup=2)
            report.results[f'{task}_train'] = samples
            times = {f'{k}|step': median(v) for k, v in samples.items()}
            rows = [[name, f'{times[f"{name}|step"]:.3f}'] for name in fns]
            report.add(f'### {PREFIX[task]} training step, {size}x{size}, '
                       f'batch {TRAIN_BATCH[task]} (s, median)\n\n' +
                       fmt_table(['model', 's/step'], rows))
            rows = ratio_rows(times, TRAIN_TARGETS, task, ['step'],
                              TRAIN_BATCH[task])
            if rows:
                report.add('### Training against the targets\n\n' + fmt_table(
                    ['pair', 'batch', 'target', 'speed-up'], rows))
    report.save()
    print(f'tables: {osp.join(args.out_dir, "tables.md")}')


if __name__ == '__main__':
    main()
