"""Helpers shared by the tests: ``from helpers import ...`` (pytest puts
tests/ on ``sys.path``, it has no ``__init__.py``). The fixtures built on
them (the toy data sets) are in conftest.py."""
import importlib
import importlib.util
import os
import os.path as osp
import socket
import subprocess
import sys
import textwrap

from mmengine import Config
from mmengine.registry import DefaultScope, init_default_scope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# The official ImageNet classifiers: channels of the expansion conv (the
# head's input) and parameter counts.
EXP_CHANNELS = {'et': 576, 't': 768, 'base': 960}
OFFICIAL_PARAMS = {'et': 1_436_264, 't': 2_654_232, 'base': 5_568_696}


def num_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def import_file(path, name: str | None = None):
    """A Python file run as a module of its own (not in ``sys.modules``);
    named after the file unless ``name`` is given."""
    path = str(path)
    name = name or osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------
# Configs, models and data sets


def load_config(task: str, name: str) -> Config:
    """``configs/<task>/<name>``."""
    return Config.fromfile(osp.join(ROOT, 'configs', task, name))


def build_model(cfg: Config):
    """``cfg.model`` built as the Runner builds it (the tools' own
    ``build_model_from_config``), in training mode."""
    from mmaff.utils.config import build_model_from_config
    return build_model_from_config(cfg).train()


def build_dataset(scope: str, ds_cfg, data_root: str):
    """The data set of ``ds_cfg`` (left unchanged) read from ``data_root``,
    built in the ``scope`` registry."""
    registry = importlib.import_module(f'{scope}.registry').DATASETS
    ds_cfg = ds_cfg.copy()
    ds_cfg.data_root = data_root
    with DefaultScope.overwrite_default_scope(scope):
        return registry.build(ds_cfg)


def classifier_model(arch: str, backbone: str = 'mmaff.AFFNet',
                     num_classes: int = 1000) -> dict:
    """The official ImageNet classifier as an mmpretrain ImageClassifier
    config: AFFNet (registered as ``backbone``), global average pooling and
    a linear head."""
    return dict(
        type='ImageClassifier',
        backbone=dict(type=backbone, arch=arch),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes,
                  in_channels=EXP_CHANNELS[arch]))


def classifier_config(arch: str, **kwargs) -> str:
    """The text of a config file holding ``classifier_model(arch,
    **kwargs)`` in the mmpretrain scope, with mmaff imported."""
    return textwrap.dedent(f"""\
        default_scope = 'mmpretrain'
        custom_imports = dict(imports=['mmaff'], allow_failed_imports=False)
        model = {classifier_model(arch, **kwargs)!r}
        """)


def build_classifier(arch: str, num_classes: int = 1000):
    """``classifier_model`` built in the mmpretrain scope (made the current
    default scope)."""
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    return MODELS.build(classifier_model(arch, num_classes=num_classes))


# ---------------------------------------------------------------------------
# Commands run as a user runs them


def run(*cmd, cwd=ROOT, env=None, timeout=900) -> subprocess.CompletedProcess:
    """``cmd`` (any items, made strings) in ``cwd``, the repository root by
    default, with ``os.environ`` updated by ``env``; output as text."""
    return subprocess.run([str(c) for c in cmd],
                          cwd=cwd,
                          capture_output=True,
                          text=True,
                          timeout=timeout,
                          env={
                              **os.environ,
                              **(env or {})
                          })


def run_python(*args, **kwargs) -> subprocess.CompletedProcess:
    """``run`` of this interpreter on ``args``: a script, ``-m module`` or
    ``-c code``."""
    return run(sys.executable, *args, **kwargs)


def success_log(result: subprocess.CompletedProcess) -> str:
    """The output (stdout, then stderr) of a run that must have exited with
    0; its tail is the failure message otherwise."""
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    return log


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------
# Toy data sets and the tools on them

# kind: the generator in tools/dataset_converters and its arguments
TOY_SETS = {
    'imagenet': ('make_toy_imagenet.py', '--train-per-class', '8',
                 '--val-per-class', '2', '--size', '64', '--seed', '3'),
    'coco': ('make_toy_coco.py', '--num-train', '8', '--num-val', '4',
             '--size', '128'),
    'ade20k': ('make_toy_ade20k.py', '--num-train', '8', '--num-val', '4',
               '--size', '128'),
}
# task (the configs/ folder): training batch size on its toy set
TOY_BATCH_SIZE = {'classification': 8, 'detection': 4, 'segmentation': 2}


def make_toy(kind: str, out, *extra) -> str:
    """Generates the toy set ``kind`` in ``out``; ``extra`` arguments
    (e.g. another ``--seed``) override the defaults. Returns its data root,
    ending in a slash."""
    script, *args = TOY_SETS[kind]
    result = run_python(f'tools/dataset_converters/{script}', out, *args,
                        *extra)
    assert result.returncode == 0, result.stderr
    return str(out) + '/'


def toy_options(config: str, data_root: str, **extra) -> list[str]:
    """``--cfg-options`` that point the toy config ``configs/<task>/...``
    at the toy set in ``data_root``, with small batches, no dataloader
    workers and a log line per iteration, plus ``extra``."""
    task = osp.basename(osp.dirname(config))
    train_dataset = 'train_dataloader.dataset'
    options = {}
    if task == 'detection':
        train_dataset += '.dataset'  # a RepeatDataset around the COCO set
        ann_file = data_root + 'annotations/instances_val.json'
        options = {
            'val_evaluator.ann_file': ann_file,
            'test_evaluator.ann_file': ann_file,
            'model.test_cfg.score_thr': 0.0,
        }
    options = {
        f'{train_dataset}.data_root': data_root,
        'val_dataloader.dataset.data_root': data_root,
        'test_dataloader.dataset.data_root': data_root,
        **options,
        'train_dataloader.batch_size': TOY_BATCH_SIZE[task],
        **{
            f'{split}_dataloader.{key}': value
            for split in ('train', 'val', 'test')
            for key, value in (('num_workers', 0),
                               ('persistent_workers', False))
        },
        'default_hooks.logger.interval': 1,
        **extra
    }
    return ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]


def schedule(interval: int, **train_cfg) -> dict:
    """Options for a short training run: ``train_cfg`` entries (e.g.
    ``max_epochs=2``), validation and a checkpoint every ``interval``
    epochs or iterations."""
    return {
        **{f'train_cfg.{key}': value for key, value in train_cfg.items()},
        'train_cfg.val_interval': interval,
        'default_hooks.checkpoint.interval': interval,
    }


def run_tool(tool: str, config: str, data_root: str, *args,
             **options) -> subprocess.CompletedProcess:
    """``tools/<tool> config *args`` on the toy set at ``data_root``, with
    its ``toy_options`` and the ``options`` given."""
    return run_python(f'tools/{tool}', config, *args,
                      *toy_options(config, data_root, **options))


def train(config: str, data_root: str, work_dir, *args, interval: int = 1,
          **train_cfg) -> str:
    """A short run of tools/train.py on the toy set at ``data_root`` (see
    ``schedule``), which must succeed; returns its log."""
    return success_log(
        run_tool('train.py', config, data_root, '--work-dir', work_dir, *args,
                 **schedule(interval, **train_cfg)))


def dist_train(config: str, data_root: str, *args,
               **options) -> subprocess.CompletedProcess:
    """``run_tool`` for tools/dist_train.sh: two processes on a free port."""
    return run('bash', 'tools/dist_train.sh', config, 2, *args,
               *toy_options(config, data_root, **options),
               env=dict(PYTHON=sys.executable, PORT=str(free_port())))


def pretrained_child(tmp_path, base: str) -> Config:
    """A config inheriting ``base`` (a path) that only sets the backbone's
    init_cfg to the backbone weights of a converted checkpoint x.pth."""
    child = tmp_path / 'child.py'
    child.write_text(
        f"_base_ = '{base}'\n"
        "model = dict(backbone=dict(init_cfg=dict(_delete_=True, "
        "type='Pretrained', checkpoint='x.pth', prefix='backbone.')))\n")
    return Config.fromfile(str(child))


def start_tool(tool: str, config: str, data_root: str, *args, log,
               **options) -> subprocess.Popen:
    """``run_tool`` without waiting for it: the tool runs in a session of
    its own (``os.killpg(proc.pid, ...)`` stops it with its workers), its
    stdout and stderr going to the open file ``log``."""
    cmd = [sys.executable, f'tools/{tool}', config, *args,
           *toy_options(config, data_root, **options)]
    return subprocess.Popen([str(c) for c in cmd],
                            cwd=ROOT,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            start_new_session=True)
