"""One prepared check of AFFNet on a GPU: correctness, AMP, speed, memory.

    python tools/benchmarks/gpu_check.py [--device cuda] [--tiny]
        [--out gpu_check.md] [--json gpu_check.json]

Made for a bare GPU machine with its own torch and no package index: it
needs torch, mmengine, mmcv (``mmcv-lite`` is enough: no compiled ops) and
mmpretrain, plus this checkout, and finishes in about 5 minutes on one GPU.
It prints one table, a row per measurement:

- ``equal``: AFFNet-ET / -T / AFFNet classifiers on the device in float32
  against the same weights on the CPU in float64, forward outputs and the
  backward gradients (input and every parameter), at square, odd and
  non-square sizes; TF32 is off for this part. Check: relative error
  (max |diff| / max |reference| for outputs, worst per-tensor
  ||diff|| / ||reference|| for gradients) at most 1e-4.
- ``amp``: training steps (SGD, cross-entropy) in float32 and under
  autocast float16 (dynamic loss scale) and bfloat16 from the same start.
  Checks: losses and (unscaled) gradients finite, every AFF filter computed
  in float32, each step's loss within 2 % (float16) / 5 % (bfloat16) of
  float32's. float16 starts from a loss scale of 1024.
- ``speed``: inference throughput at batch 1 and 64, float32 and AMP, of
  AFFNet-ET / -T / AFFNet against mmpretrain's MobileViT-XXS / -XS / -S and
  MobileNetV2-1.0 (as built from their configs, interleaved, synchronised),
  with each model's peak memory, then the ratios of the pairs.
- ``mixer``: one AFF filter against multi-head self-attention (the same as
  ``speed.py --sections mixer``) on 32x32 to 256x256 token maps, time and
  peak memory.

``--device cpu --tiny`` runs every check at tiny sizes on the CPU (AMP in
bfloat16 and float16 autocast on CPU) in well under 2 minutes; the tests
run it. Exit code 1 when a check fails.
"""
import argparse
import copy
import json
import math
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from statistics import median

import torch
import torch.nn as nn
import torch.nn.functional as F
from benchmark_utils import machine_description, synchronize, time_interleaved
from speed import CLASSIFIERS, SelfAttentionMixer, build_model

from mmaff.utils.device import DeviceError, pick_device

OURS = ('AFFNet-ET', 'AFFNet-T', 'AFFNet')
PAIRS = [('AFFNet-ET', 'MobileViT-XXS'), ('AFFNet-ET', 'MobileNetV2-1.0'),
         ('AFFNet-T', 'MobileViT-XS'), ('AFFNet', 'MobileViT-S')]
EQUAL_TOL = 1e-4
AMP_LOSS_TOL = {'float16': 0.02, 'bfloat16': 0.05}
SETTINGS = {
    # sizes (N, H, W) for equality; AMP training batch and size; inference
    # batches and size, timed rounds per batch; mixer channels and sizes
    'full': dict(equal=[(2, 256, 256), (2, 97, 131), (1, 320, 192)],
                 amp_batch=16, amp_size=256, amp_steps=3,
                 batches=(1, 64), size=256, rounds={1: 30, 64: 10},
                 mixer_channels=64, mixer_sizes=(32, 64, 128, 256),
                 mixer_rounds=10),
    'tiny': dict(equal=[(1, 48, 48), (1, 33, 47)],
                 amp_batch=2, amp_size=48, amp_steps=2,
                 batches=(1, 2), size=32, rounds={1: 2, 2: 2},
                 mixer_channels=16, mixer_sizes=(8, 16, 32),
                 mixer_rounds=2),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cuda',
                        help='cuda, cuda:N or cpu (default: cuda)')
    parser.add_argument('--tiny', action='store_true',
                        help='tiny sizes and few rounds (CPU smoke run)')
    parser.add_argument('--amp-dtype', choices=('float16', 'bfloat16'),
                        default=None,
                        help='autocast dtype of the speed rows (default: '
                        'float16 on CUDA, bfloat16 on CPU)')
    parser.add_argument('--out', help='also write the table (markdown)')
    parser.add_argument('--json', help='also write the rows as JSON')
    return parser.parse_args(argv)


class Table:
    """The rows of the one table the script prints."""

    HEADER = ('section', 'model', 'setting', 'result', 'check')

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, section: str, model: str, setting: str, result: str,
            check: bool | None = None, **values) -> None:
        row = dict(section=section, model=model, setting=setting,
                   result=result,
                   check='' if check is None else ('ok' if check else
                                                    'FAILED'),
                   **values)
        self.rows.append(row)
        print(' | '.join(row[k] for k in self.HEADER), flush=True)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r['check'] == 'FAILED']

    def markdown(self) -> str:
        lines = ['| ' + ' | '.join(self.HEADER) + ' |',
                 '|' + '---|' * len(self.HEADER)]
        lines += ['| ' + ' | '.join(r[k] for k in self.HEADER) + ' |'
                  for r in self.rows]
        return '\n'.join(lines)


# ------------------------------------------------------------------ helpers
@contextmanager
def no_tf32():
    """Full float32 convolutions and matmuls (cuDNN uses TF32 by default,
    about 1e-3 relative, which would hide real differences)."""
    saved = (torch.backends.cudnn.allow_tf32,
             torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        (torch.backends.cudnn.allow_tf32,
         torch.backends.cuda.matmul.allow_tf32) = saved


def autocast(device: torch.device, dtype: str | None):
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, dtype))


def peak_memory(device: torch.device, fn: Callable[[], object]) -> str:
    """Peak memory one call of ``fn`` allocates beyond what is held."""
    if device.type != 'cuda':
        return 'n/a'
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    held = torch.cuda.memory_allocated(device)
    fn()
    synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - held
    return f'{peak / 2**20:.0f} MiB'


def relative(a: torch.Tensor, ref: torch.Tensor) -> float:
    a, ref = a.detach().double().cpu(), ref.detach().double().cpu()
    return ((a - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def relative_norm(a: torch.Tensor, ref: torch.Tensor) -> float:
    a, ref = a.detach().double().cpu(), ref.detach().double().cpu()
    return ((a - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def classifier(name: str) -> nn.Module:
    torch.manual_seed(0)  # the same weights in every run of the script
    return build_model(CLASSIFIERS[name]).eval()


# ------------------------------------------------------------------ checks
def forward_backward(model: nn.Module, x: torch.Tensor, weight: torch.Tensor):
    """Logits, d(sum(logits * weight))/d input and /d each parameter."""
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    out = model(x, mode='tensor')
    (out * weight).sum().backward()
    grads = [x.grad] + [p.grad for p in model.parameters()
                        if p.grad is not None]
    return out, grads


def check_equal(table: Table, device: torch.device, settings: dict) -> None:
    for name in OURS:
        model = classifier(name)
        reference = copy.deepcopy(model).double()
        model.to(device)
        for n, h, w in settings['equal']:
            gen = torch.Generator().manual_seed(h * w)
            x = torch.randn(n, 3, h, w, generator=gen)
            weight = torch.randn(n, 1000, generator=gen)
            with no_tf32():
                out, grads = forward_backward(model, x.to(device),
                                              weight.to(device))
            ref_out, ref_grads = forward_backward(reference, x.double(),
                                                  weight.double())
            fwd = relative(out, ref_out)
            bwd = max(relative_norm(g, r) for g, r in zip(grads, ref_grads)
                      if r.abs().max() > 0)
            finite = all(torch.isfinite(g).all() for g in grads)
            setting = f'{n}x3x{h}x{w} fp32 vs CPU fp64'
            table.add('equal', name, setting + ', forward',
                      f'rel {fwd:.1e}', fwd <= EQUAL_TOL, value=fwd)
            table.add('equal', name, setting + ', backward',
                      f'rel {bwd:.1e} ({len(grads)} tensors)',
                      bwd <= EQUAL_TOL and finite, value=bwd)
        del model, reference


@contextmanager
def filter_dtypes():
    """Record the dtype each AFF filter computes its DFTs in."""
    from mmaff.models.layers import AdaptiveFrequencyFilter
    seen: list[torch.dtype] = []
    originals = {
        name: getattr(AdaptiveFrequencyFilter, name)
        for name in ('_filter', )
    }

    def recording(method):

        def record(self, x):
            seen.append(x.dtype)
            return method(self, x)

        return record

    for name, method in originals.items():
        setattr(AdaptiveFrequencyFilter, name, recording(method))
    try:
        yield seen
    finally:
        for name, method in originals.items():
            setattr(AdaptiveFrequencyFilter, name, method)


def train_steps(model: nn.Module, device: torch.device, dtype: str | None,
                settings: dict) -> tuple[list[float], bool, list]:
    """Losses of a few SGD steps, whether all gradients were finite, and
    the dtypes the filters computed in."""
    model = copy.deepcopy(model).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    # 2**10, not torch's 2**16: a first step whose scaled gradients
    # overflow is skipped by design, and a skipped step would make the
    # losses incomparable; overflow at this scale is a real float16 problem
    scaler = torch.amp.GradScaler(device.type, init_scale=2.**10,
                                  enabled=dtype == 'float16')
    gen = torch.Generator().manual_seed(1)
    size, batch = settings['amp_size'], settings['amp_batch']
    x = torch.randn(batch, 3, size, size, generator=gen).to(device)
    labels = torch.randint(0, 1000, (batch, ), generator=gen).to(device)
    losses, finite = [], True
    torch.manual_seed(0)  # the same dropout draws in every run
    with filter_dtypes() as dtypes:
        for _ in range(settings['amp_steps']):
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, dtype):
                loss = F.cross_entropy(model(x, mode='tensor').float(),
                                       labels)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            finite = finite and all(
                torch.isfinite(p.grad).all() for p in model.parameters()
                if p.grad is not None)
            scaler.step(optimizer)
            scaler.update()
            losses.append(loss.item())
    return losses, finite, sorted({str(d).split('.')[-1] for d in dtypes})


def check_amp(table: Table, device: torch.device, settings: dict) -> None:
    for name in OURS:
        model = classifier(name)
        base, _, _ = train_steps(model, device, None, settings)
        table.add('amp', name, f'float32, {settings["amp_steps"]} steps',
                  'losses ' + ' '.join(f'{v:.4f}' for v in base),
                  all(math.isfinite(v) for v in base), value=base)
        for dtype, tol in AMP_LOSS_TOL.items():
            losses, finite, dtypes = train_steps(model, device, dtype,
                                                 settings)
            worst = max(abs(a - b) / abs(b) for a, b in zip(losses, base))
            ok = (finite and all(math.isfinite(v) for v in losses)
                  and dtypes == ['float32'] and worst <= tol)
            table.add('amp', name, f'autocast {dtype}',
                      f'losses {" ".join(f"{v:.4f}" for v in losses)}; '
                      f'max rel diff {worst:.1e} (<= {tol}); filters in '
                      f'{"/".join(dtypes) or "nothing"}; grads '
                      f'{"finite" if finite else "NOT finite"}', ok,
                      value=losses, filter_dtypes=dtypes)


def check_speed(table: Table, device: torch.device, settings: dict,
                amp_dtype: str) -> None:
    models = {name: classifier(name).to(device) for name in CLASSIFIERS}
    size = settings['size']
    throughput = {}
    for batch in settings['batches']:
        x = torch.randn(batch, 3, size, size, device=device)
        for dtype in (None, amp_dtype):
            label = dtype or 'float32'

            def call(model, dtype=dtype, x=x):
                with torch.inference_mode(), autocast(device, dtype):
                    return model(x, mode='tensor')

            fns = {name: (lambda m=m: call(m)) for name, m in models.items()}
            memory = {name: peak_memory(device, fn)
                      for name, fn in fns.items()}
            samples = time_interleaved(fns, settings['rounds'][batch],
                                       warmup=2, device=device)
            for name, values in samples.items():
                rate = batch / median(values)
                throughput[name, batch, label] = rate
                table.add('speed', name, f'b{batch} {label} {size}x{size}',
                          f'{rate:.1f} img/s, peak {memory[name]}',
                          value=rate)
    for ours, peer in PAIRS:
        for batch in settings['batches']:
            for label in ('float32', amp_dtype):
                ratio = throughput[ours, batch, label] / \
                    throughput[peer, batch, label]
                table.add('speed', f'{ours} / {peer}', f'b{batch} {label}',
                          f'{ratio:.2f}x', value=ratio)


def check_mixer(table: Table, device: torch.device, settings: dict,
                amp_dtype: str) -> None:
    from mmaff.models.layers import AdaptiveFrequencyFilter
    channels = settings['mixer_channels']
    mixers = {'AFF filter': AdaptiveFrequencyFilter(channels),
              'self-attention (4 heads)': SelfAttentionMixer(channels)}
    for module in mixers.values():
        module.to(device).eval()
    for size in settings['mixer_sizes']:
        x = torch.randn(1, channels, size, size, device=device)
        for dtype in (None, amp_dtype):
            def call(module, dtype=dtype, x=x):
                with torch.inference_mode(), autocast(device, dtype):
                    return module(x)

            fns = {name: (lambda m=m: call(m)) for name, m in mixers.items()}
            memory = {name: peak_memory(device, fn)
                      for name, fn in fns.items()}
            samples = time_interleaved(fns, settings['mixer_rounds'],
                                       warmup=1, device=device)
            for name, values in samples.items():
                table.add('mixer', name,
                          f'{size}x{size} tokens, {channels} ch, '
                          f'{dtype or "float32"}',
                          f'{1e3 * median(values):.3f} ms, peak '
                          f'{memory[name]}', value=median(values))


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        device = torch.device(pick_device(args.device))
    except DeviceError as e:
        print(f'error: --device {e.device}: {e.problem}', file=sys.stderr)
        return 1
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    settings = SETTINGS['tiny' if args.tiny else 'full']
    amp_dtype = args.amp_dtype or ('float16' if device.type == 'cuda'
                                   else 'bfloat16')
    machine = machine_description()
    if device.type == 'cuda':
        machine['GPU'] = torch.cuda.get_device_name(device)
    print('\n'.join(f'{k}: {v}' for k, v in machine.items()))
    table = Table()
    print(' | '.join(Table.HEADER))
    check_equal(table, device, settings)
    check_amp(table, device, settings)
    check_speed(table, device, settings, amp_dtype)
    check_mixer(table, device, settings, amp_dtype)
    elapsed = time.perf_counter() - start
    text = (f'gpu_check on {args.device}{" (tiny)" if args.tiny else ""}, '
            f'{elapsed:.0f} s\n\n' + table.markdown())
    print('\n' + text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write('\n'.join(f'- {k}: {v}' for k, v in machine.items()) +
                    '\n\n' + text + '\n')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(machine=machine, seconds=elapsed, rows=table.rows),
                      f, indent=1)
    if table.failed:
        print(f'error: {len(table.failed)} check(s) failed: ' + '; '.join(
            f'{r["section"]} {r["model"]} {r["setting"]}'
            for r in table.failed), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
