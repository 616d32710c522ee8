"""Export an mm model to ExecuTorch (XNNPACK) and check it against PyTorch.

    python tools/deployment/export_executorch.py CONFIG [--checkpoint CKPT]
        [--shape H [W]] [--out model.pte] [--check] [--atol A]
        [--time N [--warmup W] [--threads T] [--with OTHER.pte ...]]

What it exports is the tensor forward that ``export_onnx.py`` exports
without ``--postprocess`` (classifier logits, detector head maps without
NMS: ExecuTorch has no NMS kernel, segmentor logits; ``--backbone-only``
for the backbone features), at a static batch-1 input. AFF filters are
switched to the ``matmul`` DFT mode first (real DFT matrices: XNNPACK has
no FFT), the same switch and wrapper as the ONNX export
(:func:`mmaff.deployment.export.exportable`); AFFNet's channels-last input
is switched off (ExecuTorch's portable GroupNorm needs the default dim
order) and the filters' softshrink traced as ``x - clamp(x)`` (same values,
as in their ONNX export; XNNPACK runs it). The path:
``torch.export.export`` -> constants folded (the DFT matrices) ->
``executorch.exir.to_edge_transform_and_lower`` with the
``XnnpackPartitioner`` -> ``to_executorch`` -> ``.pte`` file.

``--check`` runs the ``.pte`` in ExecuTorch's Python runtime on a random
normalised-image-like input and compares every output with eager PyTorch:
it fails unless the largest absolute difference is at most
``atol * max(1, largest |PyTorch output|)``. ``--time N`` reports the
median latency of N runs after ``--warmup`` runs; ``--with`` times other
``.pte`` files too, alternating model by model in each round so that a
neighbour's load on the cores falls on all of them alike.

ExecuTorch is not in the main venv (``make test`` does not need it): it
lives in its own venv, made by one command from the repository root::

    make executorch-env      # .venv-executorch: executorch 1.5.1, torch 2.14.1
    .venv-executorch/bin/python tools/deployment/export_executorch.py \\
        configs/classification/affnet-et_8xb128_in1k.py --shape 256 \\
        --check --time 50 --threads 2

Results and timings: docs/deployment_executorch.md.
"""
import argparse
import contextlib
import os.path as osp
import statistics
import sys
import time
import traceback

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import DictAction

#: The one command that makes the venv this tool needs.
INSTALL_HINT = ('make executorch-env, then run this tool with '
                '.venv-executorch/bin/python')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config file (or shipped config name, '
                        'e.g. mmpretrain::mobilevit/'
                        'mobilevit-xxsmall_8xb128_in1k.py)')
    parser.add_argument('--checkpoint', help='weights to load (optional)')
    parser.add_argument('--shape', type=int, nargs='+', default=None,
                        help='input H [W]; default the config\'s test size')
    parser.add_argument('--out', default=None,
                        help='.pte file to write; default CONFIG_NAME.pte')
    parser.add_argument('--backbone-only', action='store_true')
    parser.add_argument('--check', action='store_true',
                        help='compare the ExecuTorch runtime with PyTorch')
    parser.add_argument('--atol', type=float, default=1e-4,
                        help='--check fails above atol * max(1, output '
                        'scale)')
    parser.add_argument('--time', type=int, default=0, metavar='N',
                        help='median latency over N runs (batch 1)')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None,
                        help='XNNPACK threads; default the runtime\'s')
    parser.add_argument('--with', dest='others', nargs='+', default=[],
                        metavar='PTE',
                        help='time these .pte files too, interleaved')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='key=value pairs merged into the config')
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Raise ValueError for arguments that cannot work together."""
    if args.shape is not None and (len(args.shape) not in (1, 2)
                                   or min(args.shape) < 1):
        raise ValueError('--shape takes H or H W, positive')
    if args.time < 0 or args.warmup < 0:
        raise ValueError('--time and --warmup take a number of runs >= 0')
    if args.threads is not None and args.threads < 1:
        raise ValueError('--threads takes a number >= 1')
    if args.others and not args.time:
        raise ValueError('--with needs --time N')
    if args.atol <= 0:
        raise ValueError('--atol must be positive')
    for path in args.others:
        if not osp.isfile(path):
            raise ValueError(f'--with: no file {path}')


def read_any_config(path: str, options: dict | None):
    """The config ``path`` names: a file, a shipped config name, or another
    OpenMMLab package's config as ``mmpretrain::dir/name.py`` (the peers'
    models, read as ``tools/benchmarks/speed.py`` reads them)."""
    from mmaff.utils.config import read_config
    if '::' not in path:
        return read_config(path, options)
    from mmengine.hub import get_config
    cfg = get_config(path)
    if options:
        cfg.merge_from_dict(options)
    return cfg


def _shrink(x: torch.Tensor, lambd: float = 0.5) -> torch.Tensor:
    # the same values as softshrink (what the filter's ONNX export writes)
    return x - x.clamp(-lambd, lambd)


@contextlib.contextmanager
def xnnpack_friendly_ops():
    """Trace the AFF filter's softshrink as ``x - clamp(x)``, as its ONNX
    export writes it.

    Decomposed for ExecuTorch (abs, gt, sign, where), softshrink runs in
    the portable kernels and splits the XNNPACK partition around each of
    AFFNet-ET's 9 filters; clamp and subtract stay inside XNNPACK (61 -> 43
    delegate calls, 12-14 % faster, docs/deployment_executorch.md). The
    values are the same; only the tracing sees the change. (GroupNorm(1)
    rewritten as XNNPACK means was slower than the portable kernel: not
    done.)
    """
    original = F.softshrink
    F.softshrink = _shrink
    try:
        yield
    finally:
        F.softshrink = original


def export_program(model: nn.Module, shape: tuple[int, int],
                   backbone_only: bool = False
                   ) -> tuple[torch.export.ExportedProgram, nn.Module]:
    """The ``torch.export`` program that ExecuTorch lowers.

    Switches the AFF filters of ``model`` to the matmul DFT (in place) and
    wraps it as the ONNX export does.

    Args:
        model (nn.Module): An mm classifier, detector or segmentor in eval
            mode, weights loaded.
        shape (tuple[int, int]): The static input (H, W); batch 1.
        backbone_only (bool): Export the backbone's features. Defaults to
            False.

    Returns:
        tuple: The exported program and the wrapped eager module (the
        reference for checks).
    """
    from mmaff.deployment.export import exportable
    from mmaff.models import set_dft_mode
    set_dft_mode(model, 'matmul')
    backbone = getattr(model, 'backbone', None)
    if getattr(backbone, 'channels_last', False):
        # AFFNet's channels-last input (a oneDNN speed-up) reaches
        # ExecuTorch's portable GroupNorm, which only takes the default dim
        # order ("Check failed (tensor_is_default_dim_order(input))");
        # XNNPACK picks its own layout anyway
        backbone.channels_last = False
    module = exportable(model, backbone_only=backbone_only)
    example = (torch.randn(1, 3, *shape), )
    with torch.no_grad(), xnnpack_friendly_ops():
        program = torch.export.export(module, example, strict=False)
    return program, module


def lower(program: torch.export.ExportedProgram) -> bytes:
    """The ``.pte`` bytes of ``program``, delegated to XNNPACK where it
    can run."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
        XnnpackPartitioner,
    )
    from executorch.exir import to_edge_transform_and_lower
    from executorch.exir.passes.constant_prop_pass import constant_prop_pass

    # Under torch.export the matmul DFT builds its matrices in the graph
    # (arange, cos, sin, ...: the eager cache is bypassed so that a
    # compiler can fold them), inside the filters' autocast regions; without
    # folding, ExecuTorch would rebuild them on every run outside XNNPACK.
    # The empty decomposition table inlines those regions (keeping conv,
    # linear, group_norm whole) so that the folding reaches them: the
    # matrices become constants that XNNPACK takes as weights.
    program = constant_prop_pass(program.run_decompositions({}))
    edge = to_edge_transform_and_lower(program,
                                       partitioner=[XnnpackPartitioner()])
    return edge.to_executorch().buffer


def delegated_share(pte: bytes) -> str:
    """How many operators of the lowered program run outside XNNPACK, from
    the flatbuffer: the ones XNNPACK took appear as delegate calls."""
    from executorch.exir._serialize._program import deserialize_pte_binary
    program = deserialize_pte_binary(pte)
    program = getattr(program, 'program', program)
    plan = program.execution_plan[0]
    names = [plan.operators[c.instr_args.op_index].name
             for c in plan.chains[0].instructions
             if hasattr(c.instr_args, 'op_index')]
    delegates = sum(1 for c in plan.chains[0].instructions
                    if hasattr(c.instr_args, 'delegate_index'))
    rest = sorted(set(names))
    return (f'{delegates} XNNPACK delegate call(s), {len(names)} operator '
            f'call(s) outside' + (f' ({", ".join(rest)})' if rest else ''))


def set_threads(threads: int) -> int:
    """Resize ExecuTorch's CPU threadpool (XNNPACK runs on it).

    Returns:
        int: The thread count after the change.

    Raises:
        ValueError: If this ExecuTorch build cannot set it.
    """
    from executorch.extension.pybindings import portable_lib
    reset = getattr(portable_lib, '_unsafe_reset_threadpool', None)
    count = getattr(portable_lib, '_threadpool_get_thread_count', None)
    if reset is None:
        raise ValueError('this ExecuTorch build cannot set its thread count')
    reset(threads)
    return count() if count is not None else threads


def load_method(path: str):
    """The ``forward`` method of a ``.pte`` in ExecuTorch's runtime."""
    from executorch.runtime import Runtime
    program = Runtime.get().load_program(path)
    return program.load_method('forward')


def run_method(method, inputs: torch.Tensor) -> list[torch.Tensor]:
    return [t for t in method.execute([inputs]) if isinstance(t,
                                                              torch.Tensor)]


def compare(actual: list[torch.Tensor], expected: list[torch.Tensor],
            atol: float) -> tuple[bool, str]:
    """Whether every output is within ``atol * max(1, scale)`` of PyTorch's
    (scale: PyTorch's largest absolute output) and a one-line report."""
    diff = max(float((a - e).abs().max()) for a, e in zip(actual, expected))
    scale = max(float(e.abs().max()) for e in expected)
    limit = atol * max(1., scale)
    return diff <= limit, (f'max abs diff {diff:.3e} over {len(actual)} '
                           f'output(s), output scale {scale:.3g}, limit '
                           f'{limit:.3e}')


def time_methods(methods: dict, runs: int, warmup: int,
                 seed: int = 0) -> dict[str, float]:
    """Median milliseconds per run of each method on a random input of its
    own (static) input size, the methods taking turns run by run."""
    generator = torch.Generator().manual_seed(seed)
    inputs = {name: torch.randn(tuple(method.metadata.input_tensor_meta(
        0).sizes()), generator=generator)
        for name, method in methods.items()}
    for name, method in methods.items():
        for _ in range(warmup):
            method.execute([inputs[name]])
    times = {name: [] for name in methods}
    for _ in range(runs):
        for name, method in methods.items():
            start = time.perf_counter()
            method.execute([inputs[name]])
            times[name].append(1000 * (time.perf_counter() - start))
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_args(args)
        import executorch  # noqa: F401
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    except ImportError:
        print(f'error: executorch is not installed in {sys.executable}; '
              f'{INSTALL_HINT}', file=sys.stderr)
        return 1
    from mmengine.model import revert_sync_batchnorm

    import mmaff  # noqa: F401  (registers AFFNet)
    from mmaff.checkpoint import CheckpointError
    from mmaff.checkpoint.mmengine_loader import install_checkpoint_loader
    from mmaff.deployment.export import flatten_outputs
    from mmaff.deployment.pipeline import default_input_shape
    from mmaff.utils.config import build_model_from_config

    # --checkpoint is loaded by mmengine's loader: one-line errors
    install_checkpoint_loader()
    try:
        cfg = read_any_config(args.config, args.cfg_options)
        shape = (tuple((args.shape * 2)[:2]) if args.shape else
                 default_input_shape(cfg))
        # SyncBN of distributed configs needs a process group; in eval it
        # is a BatchNorm
        model = revert_sync_batchnorm(
            build_model_from_config(cfg, args.checkpoint))
        torch.manual_seed(args.seed)
    except (OSError, ValueError, ImportError, CheckpointError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    out = args.out or osp.splitext(osp.basename(
        args.config.split('::')[-1]))[0] + '.pte'
    start = time.perf_counter()
    try:
        program, module = export_program(model, shape, args.backbone_only)
        exported = time.perf_counter()
        pte = lower(program)
    except Exception as e:  # noqa: BLE001 (export and lowering raise anything)
        # the exporter's own report first, the one-line summary last
        traceback.print_exc()
        message = str(e).strip().splitlines()
        print(f'error: the ExecuTorch export failed: {type(e).__name__}: '
              f'{message[0] if message else ""}', file=sys.stderr)
        return 1
    lowered = time.perf_counter()
    with open(out, 'wb') as f:
        f.write(pte)
    import executorch.version
    filters = sum(1 for m in model.modules()
                  if type(m).__name__ == 'AdaptiveFrequencyFilter')
    print(f'exported {out} ({len(pte) / 2**20:.1f} MiB, executorch '
          f'{executorch.version.__version__}, torch {torch.__version__}, '
          f'input (1, 3, {shape[0]}, {shape[1]}), '
          f'{filters} AFF filter(s) in matmul DFT mode): '
          f'torch.export {exported - start:.1f} s, lowering '
          f'{lowered - exported:.1f} s')
    print(f'program: {delegated_share(pte)}')
    threads = 'runtime default'
    if args.threads is not None:
        try:
            threads = set_threads(args.threads)
        except (ImportError, ValueError) as e:
            print(f'error: {e}', file=sys.stderr)
            return 1
    method = load_method(out)
    inputs = torch.randn(1, 3, *shape)
    status = 0
    if args.check:
        with torch.no_grad():
            expected = flatten_outputs(module(inputs))
        actual = run_method(method, inputs)
        if len(actual) != len(expected):
            print(f'error: ExecuTorch returned {len(actual)} outputs, '
                  f'PyTorch {len(expected)}', file=sys.stderr)
            return 1
        ok, text = compare(actual, expected, args.atol)
        print(f'check: ExecuTorch vs PyTorch: {text}: '
              f'{"ok" if ok else "FAILED"}')
        if not ok:
            print('error: ExecuTorch output differs from PyTorch above the '
                  'limit', file=sys.stderr)
            status = 1
    if args.time:
        methods = {out: method}
        for path in args.others:
            methods[path] = load_method(path)
        medians = time_methods(methods, args.time, args.warmup, args.seed)
        for path, ms in medians.items():
            print(f'time: {path}: median {ms:.2f} ms over {args.time} runs '
                  f'(batch 1, threads {threads}, interleaved with '
                  f'{len(medians) - 1} other model(s))')
    return status


if __name__ == '__main__':
    sys.exit(main())
