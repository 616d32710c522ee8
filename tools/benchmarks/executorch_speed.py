"""AFFNet against its peers in ExecuTorch (XNNPACK): the classifiers at
256x256 and the SSDLite models at 320x320, batch 1, one interleaved run.

    make executorch-env
    .venv-executorch/bin/python tools/benchmarks/executorch_speed.py \
        [--threads 2] [--runs 200] [--warmup 10] \
        [--out-dir work_dirs/executorch_speed]

Each model is exported and lowered as ``tools/deployment/export_executorch.py``
does it (matmul DFT, XNNPACK delegate; SSDLite without NMS, which ExecuTorch
has no kernel for), checked against eager PyTorch (1e-4 of the output
scale) and then timed with the others, taking turns run by run. The
SSDLite-MobileViT-XXS is the one of ``tools/benchmarks/dense_speed.py``
(``dense_models.py``): the same neck and head on mmpretrain's MobileViT.
Prints a table, the speed-ups against the targets of the dense deployment
issue and writes ``OUT_DIR/results.json``.
"""
import argparse
import json
import os
import os.path as osp
import sys

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'deployment'))
sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmarks'))
sys.path.insert(0, ROOT)

#: the classifiers of speed.py compared here (its MobileNetV2 is 1.0 wide)
CLASSIFIERS = {'AFFNet-ET': 'AFFNet-ET', 'MobileViT-XXS': 'MobileViT-XXS',
               'MobileNetV2': 'MobileNetV2-1.0'}
SSDLITES = ('AFFNet-ET', 'MobileViT-XXS', 'MobileNetV2')
# (ours, peer, speed-up to reach)
TARGETS = [('AFFNet-ET', 'MobileViT-XXS', 1.3),
           ('AFFNet-ET', 'MobileNetV2', 1.0),
           ('SSDLite-AFFNet-ET', 'SSDLite-MobileViT-XXS', 1.3),
           ('SSDLite-AFFNet-ET', 'SSDLite-MobileNetV2', 1.0)]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--runs', type=int, default=200)
    parser.add_argument('--warmup', type=int, default=10)
    parser.add_argument('--out-dir', default='work_dirs/executorch_speed')
    return parser.parse_args(argv)


def model_configs() -> dict:
    """``{name: (config, input size)}`` of every model timed: the
    classifiers as speed.py builds them, the SSDLite models as
    dense_speed.py does."""
    from dense_models import ssdlite_config
    from speed import CLASSIFIERS as SPEED_CLASSIFIERS
    from speed import config_of
    configs = {name: (config_of(SPEED_CLASSIFIERS[key]), 256)
               for name, key in CLASSIFIERS.items()}
    for name in SSDLITES:
        configs[f'SSDLite-{name}'] = (ssdlite_config(name), 320)
    return configs


def main(argv=None) -> int:
    args = parse_args(argv)
    from export_executorch import INSTALL_HINT
    try:
        import executorch  # noqa: F401
    except ImportError:
        print(f'error: executorch is not installed in {sys.executable}; '
              f'{INSTALL_HINT}', file=sys.stderr)
        return 1
    from export_executorch import (
        compare,
        export_program,
        load_method,
        lower,
        run_method,
        set_threads,
        time_methods,
    )
    from speed import build_from_config

    from mmaff.deployment.export import flatten_outputs
    os.makedirs(osp.join(args.out_dir, 'pte'), exist_ok=True)
    set_threads(args.threads)
    methods, checks = {}, {}
    for name, (cfg, size) in model_configs().items():
        torch.manual_seed(0)
        model = build_from_config(cfg).eval()
        program, module = export_program(model, (size, size))
        path = osp.join(args.out_dir, 'pte', f'{name}.pte')
        with open(path, 'wb') as f:
            f.write(lower(program))
        methods[name] = load_method(path)
        x = torch.randn(1, 3, size, size)
        with torch.no_grad():
            expected = flatten_outputs(module(x))
        ok, report = compare(run_method(methods[name], x), expected, 1e-4)
        checks[name] = report
        print(f'{name}: {path}, against PyTorch: {report}', flush=True)
        if not ok:
            print(f'error: {name} differs from PyTorch', file=sys.stderr)
            return 1
    times = time_methods(methods, args.runs, args.warmup)
    print(f'\nExecuTorch, XNNPACK, batch 1, {args.threads} threads, median '
          f'ms of {args.runs} interleaved runs\n')
    print('| model | ms |\n|---|---|')
    for name, ms in times.items():
        print(f'| {name} | {ms:.2f} |')
    print('\n| target | speed-up | |\n|---|---|---|')
    for ours, peer, target in TARGETS:
        speedup = times[peer] / times[ours]
        verdict = 'met' if speedup >= target else 'NOT met'
        print(f'| {ours} >= {target}x {peer} | {speedup:.2f}x | {verdict} |')
    with open(osp.join(args.out_dir, 'results.json'), 'w') as f:
        json.dump(dict(ms=times, checks=checks, threads=args.threads,
                       runs=args.runs), f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
