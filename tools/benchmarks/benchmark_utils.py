"""Helpers shared by the benchmark scripts in this folder.

The scripts run as ``python tools/benchmarks/<script>.py``, which puts this
folder on ``sys.path``: they import this module as ``benchmark_utils``.

Speed comparisons in one process (:func:`time_interleaved`): shared
machines drift, and a neighbour's job can halve throughput for seconds.
Timing model A for a minute and then model B would charge such drift to one
of them, so the candidates are interleaved instead (a shuffled round-robin,
one call of each per round) and compared by medians: slow phases hit every
candidate alike and ratios stay meaningful.

Learnability comparisons (:func:`run_comparison`): a model is first timed
for a few iterations to size a schedule that fits a wall-clock budget (so
the learning rate anneals by the end), then trained with
:class:`WallClockBudgetHook`, which evaluates on the validation set every so
many minutes of *training* time and stops when the budget is spent.
"""
import argparse
import json
import os
import os.path as osp
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from mmengine.config import Config
from mmengine.hooks import Hook

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# What mmengine's collect_env reports that does not help to place a speed
# figure (or, like the long build configuration, drowns the rest).
_NOT_FOR_TABLES = ('sys.platform', 'Python', 'PyTorch',
                   'PyTorch compiling details', 'numpy_random_seed',
                   'SUPA available', 'MUSA available')


# ------------------------------------------------------------------ timing
def synchronize(device: str | torch.device) -> None:
    """Wait for queued CUDA kernels so a timer sees their cost.

    Args:
        device (str | torch.device): Nothing to wait for unless CUDA.
    """
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def time_interleaved(fns: dict[str, Callable[[], object]],
                     rounds: int,
                     warmup: int = 3,
                     device: str | torch.device = 'cpu',
                     seed: int = 0) -> dict[str, list[float]]:
    """Seconds per call of each function, measured round-robin.

    Each round calls every function once, in a fresh random order; the
    first ``warmup`` calls of each are not timed.

    Args:
        fns (dict): Name to a function without arguments.
        rounds (int): Timed calls per function.
        warmup (int): Untimed calls per function first. Defaults to 3.
        device (str | torch.device): Synchronised around each call when it
            is a CUDA device. Defaults to ``'cpu'``.
        seed (int): Seed of the call order. Defaults to 0.

    Returns:
        dict[str, list[float]]: The timed samples per name.
    """
    if rounds < 1:
        raise ValueError(f'rounds must be at least 1, got {rounds}')
    order = random.Random(seed)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        names = list(fns)
        order.shuffle(names)
        for name in names:
            start = time.perf_counter()
            fns[name]()
            synchronize(device)
            samples[name].append(time.perf_counter() - start)
    return samples


def cpu_model() -> str:
    """The CPU's model name (``platform`` only knows the architecture)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> dict[str, str]:
    """What a reader needs to place the figures: CPU, threads, versions.

    Builds on mmengine's ``collect_env`` (as mmyolo's does), leaving out
    what says nothing about speed, and adds what a speed table needs and
    ``collect_env`` lacks: the CPU model, the thread counts, the math
    libraries torch uses and the versions of the mm packages compared.

    Returns:
        dict[str, str]: Printable name to value, ``cpu``, ``torch threads``
        and ``torch`` first.
    """
    from mmengine.utils.dl_utils import collect_env
    env = collect_env()
    info = {
        'cpu': cpu_model(),
        'logical cores': str(os.cpu_count()),
        'torch threads': str(torch.get_num_threads()),
        'python': platform.python_version(),
        'torch': env['PyTorch'],
        'oneDNN': str(torch.backends.mkldnn.is_available()),
        'MKL (FFT)': str(torch.backends.mkl.is_available()),
    }
    if torch.cuda.is_available():
        # the CUDA torch was built with; collect_env reports the toolkit
        # (NVCC) found on the machine, which the timed kernels do not use
        info['torch CUDA'] = str(torch.version.cuda)
    info.update((key, str(value)) for key, value in env.items()
                if key not in _NOT_FOR_TABLES)
    for package, label in (('mmcv', 'MMCV'), ('mmdet', 'MMDetection'),
                           ('mmseg', 'MMSegmentation'),
                           ('mmpretrain', 'MMPretrain'), ('mmaff', 'mmaff')):
        try:
            info[label] = __import__(package).__version__
        except ImportError:
            pass
    return info


# -------------------------------------------------- wall-clock training
class WallClockBudgetHook(Hook):
    """Stop training after ``budget_s`` seconds of training (evaluation
    excluded) and run the validation loop every ``eval_every_s`` seconds of
    training; each evaluation is appended to ``record`` as
    ``dict(minutes=..., iters=..., **metrics)``.

    Args:
        budget_s (float): Training time budget in seconds.
        eval_every_s (float): Training time between evaluations.
        record (list): Receives one dict per evaluation.
    """

    priority = 'VERY_LOW'

    def __init__(self, budget_s: float, eval_every_s: float,
                 record: list) -> None:
        self.budget_s = budget_s
        self.eval_every_s = eval_every_s
        self.record = record
        self.train_s = 0.
        self.next_eval = eval_every_s
        self._start = 0.

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.train_s += time.perf_counter() - self._start
        done = self.train_s >= self.budget_s
        if self.train_s >= self.next_eval or done:
            self.next_eval += self.eval_every_s
            metrics = runner.val_loop.run()
            self.record.append(
                dict(minutes=round(self.train_s / 60, 2),
                     iters=runner.iter + 1,
                     **{k: round(float(v), 4)
                        for k, v in metrics.items()}))
            print(f'[benchmark] {self.record[-1]}', flush=True)
            runner.model.train()
        if done:
            runner.train_loop.stop_training = True


class _IterTimer(Hook):

    def __init__(self) -> None:
        self.times: list[float] = []

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.times.append(time.perf_counter() - self._start)


def iteration_based(cfg: Config, max_iters: int, lr: float,
                    warmup: int | None = None) -> None:
    """Give ``cfg`` an iteration-based loop of ``max_iters`` with linear
    warmup and cosine annealing to 1 % of ``lr``, no periodic validation or
    checkpoints (the budget hook evaluates).

    Args:
        cfg (Config): Runner config, changed in place.
        max_iters (int): Length of the schedule.
        lr (float): Peak learning rate.
        warmup (int, optional): Warm-up iterations. Defaults to a tenth of
            the schedule, 1 to 100.
    """
    warmup = warmup or max(1, min(100, max_iters // 10))
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                         val_interval=10**9)
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
             end=warmup),
        dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup,
             end=max(max_iters, warmup + 1), eta_min=lr * 0.01)
    ]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=10**9)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=50)


def train_for(make_cfg: Callable[[int], Config], budget_min: float,
              eval_every_min: float, calibration_iters: int = 15) -> dict:
    """Calibrate, size the schedule to ``budget_min`` and train.

    Args:
        make_cfg (Callable[[int], Config]): Builds the runner config for a
            given number of iterations (see :func:`iteration_based`).
        budget_min (float): Training budget in minutes.
        eval_every_min (float): Minutes of training between evaluations.
        calibration_iters (int): Iterations timed to size the schedule (the
            median of the second half counts).

    Returns:
        dict: ``s_per_iter``, ``max_iters`` and the evaluation ``curve``.
    """
    from mmengine.runner import Runner
    cfg = make_cfg(calibration_iters)
    cfg.work_dir = cfg.work_dir + '_calibration'
    runner = Runner.from_cfg(cfg)
    timer = _IterTimer()
    runner.register_hook(timer)
    runner.train()
    steady = sorted(timer.times[calibration_iters // 2:])
    s_per_iter = steady[len(steady) // 2]
    max_iters = max(1, int(budget_min * 60 / s_per_iter))
    print(f'[benchmark] {s_per_iter:.3f} s/iter -> schedule of {max_iters} '
          'iterations', flush=True)
    record: list = []
    runner = Runner.from_cfg(make_cfg(max_iters))
    runner.register_hook(
        WallClockBudgetHook(budget_min * 60, eval_every_min * 60, record))
    runner.train()
    return dict(s_per_iter=s_per_iter, max_iters=max_iters, curve=record)


def first_reaching(curve: list[dict], key: str,
                   target: float) -> float | None:
    """Training minutes at which ``curve[key]`` first reached ``target``.

    Args:
        curve (list[dict]): Evaluations as :class:`WallClockBudgetHook`
            records them.
        key (str): Metric name.
        target (float): Value to reach.

    Returns:
        float | None: Minutes, or None if never reached.
    """
    return next((p['minutes'] for p in curve if p.get(key, -1) >= target),
                None)


def compare(models: list[str], build_cfg: Callable[[str, int], Config],
            budget_min: float, eval_every_min: float,
            json_out: str | None = None, meta: dict | None = None) -> dict:
    """Train each model for the same budget (:func:`train_for`); optionally
    write the curves (and ``meta``) to ``json_out``.

    Args:
        models (list[str]): Names passed to ``build_cfg``.
        build_cfg (Callable[[str, int], Config]): ``(name, max_iters)`` to
            the runner config.
        budget_min (float): Training budget per model in minutes.
        eval_every_min (float): Minutes of training between evaluations.
        json_out (str, optional): JSON file for the results.
        meta (dict, optional): Stored beside the results (e.g. the args).

    Returns:
        dict: Per model, the result of :func:`train_for`.
    """
    results = {}
    for name in models:
        print(f'[benchmark] {name}', flush=True)
        results[name] = train_for(
            lambda iters, name=name: build_cfg(name, iters), budget_min,
            eval_every_min)
    if json_out:
        with open(json_out, 'w') as f:
            json.dump(dict(meta=meta or {}, results=results), f, indent=1)
    return results


def print_curves(results: dict, columns: dict[str, str], target_key: str,
                 target: float) -> None:
    """Print each model's curve and the training minutes at which
    ``target_key`` first reached ``target``.

    Args:
        results (dict): Per model, the result of :func:`train_for`.
        columns (dict[str, str]): Printed header to metric key.
        target_key (str): Metric whose first arrival is reported.
        target (float): Value it has to reach.
    """
    for name, res in results.items():
        hit = first_reaching(res['curve'], target_key, target)
        print(f'{name}: {res["s_per_iter"]:.3f} s/iter; {target_key} >= '
              f'{target:g} at '
              f'{f"{hit} min" if hit is not None else "never"}')
        print('  minutes  iters' + ''.join(f'{h:>12}' for h in columns))
        for point in res['curve']:
            # CocoMetric reports nothing while a detector predicts no box
            print(f'  {point["minutes"]:7.2f} {point["iters"]:6d}' + ''.join(
                f'{point[key]:12.3f}' if key in point else f'{"-":>12}'
                for key in columns.values()))


# ------------------------------------------- learnability benchmark scripts
@dataclass(frozen=True)
class ToySet:
    """A toy data set that a script in ``tools/dataset_converters`` makes.

    Args:
        generator (str): The script's file name, ``make_toy_<name>.py``.
        marker (str): A path inside the set's root that exists once the set
            does.
        options (dict[str, int]): The script's options that a benchmark
            offers too, with the benchmark's defaults: ``num_train=8``
            stands for ``--num-train 8``.
    """

    generator: str
    marker: str
    options: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``imagenet`` for ``make_toy_imagenet.py``."""
        return osp.splitext(self.generator)[0].removeprefix('make_toy_')

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Offer the options of the generator, with their defaults.

        Args:
            parser (argparse.ArgumentParser): The benchmark's parser.
        """
        group = parser.add_argument_group(
            f'toy set (passed on to {self.generator})')
        for key, default in self.options.items():
            group.add_argument('--' + key.replace('_', '-'), type=int,
                               default=default)

    def make(self, root: str, args: argparse.Namespace) -> str:
        """Make the set in ``root`` unless it exists already.

        Args:
            root (str): Where the set goes.
            args (argparse.Namespace): Parsed options, among them those of
                :meth:`add_arguments`.

        Returns:
            str: ``root`` with a trailing slash (the configs join file
            names to it).
        """
        root = root.rstrip('/') + '/'
        if not osp.exists(osp.join(root, self.marker)):
            argv = [
                osp.join(ROOT, 'tools', 'dataset_converters',
                         self.generator), root
            ]
            for key in self.options:
                argv += ['--' + key.replace('_', '-'), str(getattr(args, key))]
            subprocess.run([sys.executable, *argv], check=True)
        return root


def budget_parser(doc: str, models: list[str] | tuple[str, ...],
                  name: str, toy_set: ToySet, *, budget_min: float,
                  eval_every_min: float, batch_size: int, target: float,
                  target_name: str) -> argparse.ArgumentParser:
    """The options every learnability benchmark has, with its defaults.

    Args:
        doc (str): The script's docstring; its first paragraph describes
            the parser.
        models (list[str] | tuple[str, ...]): Choices of ``--models``, all
            by default.
        name (str): Names the work dir, ``work_dirs/<name>``.
        toy_set (ToySet): The data; its options are offered too, and it
            goes to ``data/toy_<toy_set.name>_bench`` by default.
        budget_min (float): Default training budget per model in minutes.
        eval_every_min (float): Default minutes between evaluations.
        batch_size (int): Default batch size.
        target (float): Default value of the reported metric to reach.
        target_name (str): The reported metric in words, for the help.

    Returns:
        argparse.ArgumentParser: Add the script's own options to it.
    """
    parser = argparse.ArgumentParser(description=doc.split('\n\n')[0])
    parser.add_argument('--models', nargs='+', default=list(models),
                        choices=list(models))
    parser.add_argument('--budget-min', type=float, default=budget_min)
    parser.add_argument('--eval-every-min', type=float,
                        default=eval_every_min)
    parser.add_argument(
        '--target', type=float, default=target,
        help=f'{target_name} whose first arrival is reported'.replace(
            '%', '%%'))
    parser.add_argument('--data-root',
                        default=f'data/toy_{toy_set.name}_bench/')
    parser.add_argument('--batch-size', type=int, default=batch_size)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--work-dir', default=osp.join('work_dirs', name))
    parser.add_argument('--json-out', default=None,
                        help='also write the curves to this JSON file')
    toy_set.add_arguments(parser)
    return parser


def set_data_root(cfg: Config, data_root: str) -> None:
    """Point the train, val and test datasets of ``cfg`` at ``data_root``.

    Args:
        cfg (Config): Runner config, changed in place.
        data_root (str): Root of the toy set.
    """
    train = cfg.train_dataloader.dataset
    # dataset wrappers (RepeatDataset) hold the real dataset inside
    train = train.get('dataset', train)
    for dataset in (train, cfg.val_dataloader.dataset,
                    cfg.test_dataloader.dataset):
        dataset.data_root = data_root


def same_training_setup(cfg: Config, name: str, args: argparse.Namespace,
                        data_root: str, max_iters: int, weight_decay: float,
                        warmup: int | None = None) -> Config:
    """What every model of a comparison shares: the data, batch size, AdamW
    with gradient clipping, the budget-sized schedule
    (:func:`iteration_based`), a work dir per model and a fixed seed.

    Args:
        cfg (Config): Runner config of the model, changed in place.
        name (str): The model's name (its work dir).
        args (argparse.Namespace): Options of :func:`budget_parser`.
        data_root (str): Root of the toy set (see :func:`set_data_root`).
        max_iters (int): Length of the schedule.
        weight_decay (float): AdamW weight decay.
        warmup (int, optional): Warm-up iterations (see
            :func:`iteration_based`).

    Returns:
        Config: ``cfg``.
    """
    set_data_root(cfg, data_root)
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=args.lr, weight_decay=weight_decay),
        clip_grad=dict(max_norm=10, norm_type=2))
    iteration_based(cfg, max_iters, args.lr, warmup=warmup)
    cfg.work_dir = osp.join(args.work_dir, name)
    cfg.randomness = dict(seed=0)
    return cfg


def run_comparison(args: argparse.Namespace, toy_set: ToySet,
                   build_cfg: Callable[[str, argparse.Namespace, str, int],
                                       Config],
                   title: str, columns: dict[str, str],
                   target_key: str) -> dict:
    """The main of a learnability benchmark: work from the repository root,
    set the threads, make the data, train every model in ``args.models``
    for the budget and print the curves.

    Args:
        args (argparse.Namespace): Options of :func:`budget_parser` and
            the script's own.
        toy_set (ToySet): The data, made in ``args.data_root`` unless it
            is there.
        build_cfg (Callable[[str, argparse.Namespace, str, int], Config]):
            ``(name, args, data_root, max_iters)`` to the runner config.
        title (str): First words of the printed header.
        columns (dict[str, str]): Printed header to metric key.
        target_key (str): Metric whose first arrival at ``args.target`` is
            reported.

    Returns:
        dict: Per model, the result of :func:`train_for`.
    """
    # the default --data-root and --work-dir are relative to the repository
    os.chdir(ROOT)
    if args.threads:
        torch.set_num_threads(args.threads)
    import mmaff  # noqa: F401  (registers AFFNet and the compat fixes)
    data_root = toy_set.make(args.data_root, args)
    results = compare(
        args.models, lambda name, iters: build_cfg(name, args, data_root,
                                                   iters),
        args.budget_min, args.eval_every_min, args.json_out, vars(args))
    print(f'\n{title}, {torch.get_num_threads()} threads, batch '
          f'{args.batch_size}, {args.budget_min:g} min training budget per '
          'model\n')
    print_curves(results, columns, target_key, args.target)
    return results
