"""Training for a fixed wall-clock budget, for the learnability benchmarks
in ``tools/benchmarks/``.

A model is first timed for a few iterations to size a schedule that fits
the budget (so the learning rate anneals by the end), then trained with
:class:`WallClockBudgetHook`, which evaluates on the validation set every so
many minutes of *training* time and stops when the budget is spent.
"""
import os
import os.path as osp
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from mmengine.config import Config
from mmengine.hooks import Hook


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
    checkpoints (the budget hook evaluates)."""
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
    """Training minutes at which ``curve[key]`` first reached ``target``."""
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
        import json
        with open(json_out, 'w') as f:
            json.dump(dict(meta=meta or {}, results=results), f, indent=1)
    return results


def print_curves(results: dict, columns: dict[str, str], target_key: str,
                 target: float) -> None:
    """Print each model's curve (``columns``: header -> metric key) and the
    training minutes at which ``target_key`` first reached ``target``."""
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


def add_budget_args(parser, *, budget_min: float, eval_every_min: float,
                    target: float, target_help: str, data_root: str,
                    batch_size: int, work_dir: str) -> None:
    """The options every learnability benchmark has, with its defaults."""
    parser.add_argument('--budget-min', type=float, default=budget_min)
    parser.add_argument('--eval-every-min', type=float,
                        default=eval_every_min)
    parser.add_argument('--target', type=float, default=target,
                        help=target_help)
    parser.add_argument('--data-root', default=data_root)
    parser.add_argument('--batch-size', type=int, default=batch_size)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--work-dir', default=work_dir)
    parser.add_argument('--json-out', default=None,
                        help='also write the curves to this JSON file')


def ensure_toy_data(root: str, marker: str, generator: str,
                    generator_args: list[str]) -> str:
    """Run the toy-set ``generator`` script into ``root`` unless ``marker``
    (a path inside it) exists already; return ``root`` with a slash."""
    root = root.rstrip('/') + '/'
    if not osp.exists(osp.join(root, marker)):
        subprocess.run([sys.executable, generator, root, *generator_args],
                       check=True)
    return root


def same_training_setup(cfg: Config, name: str, args, max_iters: int,
                        weight_decay: float,
                        warmup: int | None = None) -> Config:
    """What every model of a comparison shares: batch size, AdamW with
    gradient clipping, the budget-sized schedule (:func:`iteration_based`),
    a work dir per model and a fixed seed."""
    cfg.train_dataloader.batch_size = args.batch_size
    cfg.optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=args.lr, weight_decay=weight_decay),
        clip_grad=dict(max_norm=10, norm_type=2))
    iteration_based(cfg, max_iters, args.lr, warmup=warmup)
    cfg.work_dir = osp.join(args.work_dir, name)
    cfg.randomness = dict(seed=0)
    return cfg


def run_comparison(args, root: str, make_data: Callable[[], str],
                   build_cfg: Callable[[str, str, int], Config],
                   title: str, columns: dict[str, str],
                   target_key: str) -> dict:
    """The main of a learnability benchmark: work from the repository root,
    set the threads, make the data, train every model in ``args.models``
    for the budget and print the curves.

    Args:
        args: Parsed options (see :func:`add_budget_args`) with ``models``.
        root (str): Repository root (configs are relative to it).
        make_data (Callable[[], str]): Creates the toy set if needed and
            returns its root.
        build_cfg (Callable[[str, str, int], Config]): ``(name, data_root,
            max_iters)`` to the runner config.
        title (str): First words of the printed header.
        columns (dict[str, str]): Printed header to metric key.
        target_key (str): Metric whose first arrival at ``args.target`` is
            reported.
    """
    os.chdir(root)
    if args.threads:
        torch.set_num_threads(args.threads)
    import mmaff  # noqa: F401
    data_root = make_data()
    results = compare(
        args.models, lambda name, iters: build_cfg(name, data_root, iters),
        args.budget_min, args.eval_every_min, args.json_out, vars(args))
    print(f'\n{title}, {torch.get_num_threads()} threads, batch '
          f'{args.batch_size}, {args.budget_min:g} min training budget per '
          'model\n')
    print_curves(results, columns, target_key, args.target)
    return results
