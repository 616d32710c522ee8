"""Tests of :mod:`mmaff.compat`, the fixes F1-F6 for the pinned stack, and
of the head that fixes F1 (``mmaff.SSDHeadWithLossCls``).

For every fix one test shows it is needed: the upstream failure, seen in a
subprocess that does not use the fix (F2 changes global state: torch's safe
globals), and one shows it works.
"""
import collections
import json
import os
import pickle
import uuid

import numpy as np
import pytest
import torch
import torch.distributed as dist
from helpers import free_port, import_file, run_python
from mmengine.config import Config
from mmengine.logging.history_buffer import HistoryBuffer

from mmaff import compat

TIMEOUT = 120
CPU_ONLY = pytest.mark.skipif(torch.cuda.is_available(),
                              reason='checks the CPU-only code path')

# A toy model and data set for real mmengine Runners, in a module of its own
# so that subprocesses can use them without importing mmaff.
TOYS = '''
import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, MODELS
from torch import nn


@MODELS.register_module(force=True)
class CompatToyModel(BaseModel):

    def __init__(self, norm_cfg=dict(type='BN')):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 1)
        self.norm = build_norm_layer(norm_cfg, 4)[1]
        self.head = nn.Linear(4, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        x = self.norm(self.conv(torch.stack(inputs))).mean((2, 3))
        out = self.head(x).squeeze(1)
        if mode == 'loss':
            return dict(loss=(out - torch.stack(labels)).pow(2).mean())
        return out


@DATASETS.register_module(force=True)
class CompatToyDataset(torch.utils.data.Dataset):
    metainfo = dict(classes=('toy', ))

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.arange(4.).view(1, 2, 2) + i,
                    labels=torch.tensor(i / 8))


def runner_cfg(work_dir, max_iters, **kwargs):
    cfg = dict(
        model=dict(type='CompatToyModel'),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=dict(type='CompatToyDataset'),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        param_scheduler=dict(
            type='MultiStepLR', milestones=[1], by_epoch=False),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', interval=2, by_epoch=False)),
        randomness=dict(seed=0),
        log_level='WARNING')
    cfg.update(kwargs)
    return cfg
'''


@pytest.fixture(scope='module')
def toys_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp('toys')
    (path / 'compat_toys.py').write_text(TOYS)
    return path


@pytest.fixture(scope='module')
def toys(toys_dir):
    return import_file(toys_dir / 'compat_toys.py')


# --------------------------------------------------------------------------
# No global patches: ``import mmaff`` leaves the import system alone


NO_HOOKS = """
import sys
import mmdet.registry, mmseg.registry, mmpretrain.registry
before = list(sys.meta_path)
import mmaff
print(sys.meta_path == before, len(before))
"""


def test_import_mmaff_adds_no_import_hooks():
    """``import mmaff`` leaves ``sys.meta_path`` as it was. The downstream
    registries it imports for the plain-name aliases are imported first:
    ``mmpretrain`` (through ``importlib_metadata``) appends a finder of its
    own on first import."""
    result = run_python('-c', NO_HOOKS, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    same, count = result.stdout.split()[-2:]
    assert same == 'True' and int(count) > 0


# --------------------------------------------------------------------------
# F1: SSDHead.loss_cls, fixed by the registered mmaff.SSDHeadWithLossCls

SSD_PROBE = '''
import json
import sys

import torch


def predict(cfg_path):
    """One test step of an SSDLite on a random image."""
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    model = MODELS.build(Config.fromfile(cfg_path).model).eval()
    torch.manual_seed(0)
    img = torch.randint(0, 256, (3, 320, 320), dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(
        img_shape=(320, 320), ori_shape=(320, 320), scale_factor=(1., 1.)))
    with torch.no_grad():
        return model.test_step(dict(inputs=[img], data_samples=[sample]))


if __name__ == '__main__':
    if sys.argv[2] == 'with-mmaff':
        import mmaff  # noqa: F401
    out = dict(ssd_head_before='mmdet.models.dense_heads.ssd_head' in
               sys.modules)
    try:
        out['labels'] = predict(sys.argv[1])[0].pred_instances.labels.tolist()
    finally:
        out['mmaff'] = 'mmaff' in sys.modules
        print(json.dumps(out))
'''

SSD_CONFIG = '''
_base_ = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'
model = dict(bbox_head=dict(num_classes=3),
             test_cfg=dict(score_thr=0.0, max_per_img=5))
'''
# what our SSDLite configs do; nothing imports mmaff but the prefix
SSD_MMAFF_CONFIG = '''
_base_ = './ssdlite.py'
model = dict(bbox_head=dict(type='mmaff.SSDHeadWithLossCls'))
'''


@pytest.fixture(scope='module')
def ssd_files(tmp_path_factory):
    path = tmp_path_factory.mktemp('ssd')
    (path / 'ssd_probe.py').write_text(SSD_PROBE)
    (path / 'ssdlite.py').write_text(SSD_CONFIG)
    (path / 'ssdlite_mmaff.py').write_text(SSD_MMAFF_CONFIG)
    return path


@pytest.mark.parametrize('mmaff', ['no-mmaff', 'with-mmaff'])
def test_f1_needed_ssd_test_step_crashes_upstream(ssd_files, mmaff):
    """mmdet's own SSD config fails at test time, also after ``import
    mmaff``: mmaff does not patch mmdet's SSDHead (nor import it)."""
    result = run_python('ssd_probe.py', 'ssdlite.py', mmaff,
                        cwd=ssd_files, timeout=TIMEOUT)
    assert result.returncode != 0
    assert ("AttributeError: 'SSDHead' object has no attribute 'loss_cls'"
            in result.stderr)
    assert 'in predict_by_feat' in result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out == dict(ssd_head_before=False, mmaff=mmaff == 'with-mmaff')


def test_f1_registered_head_works_in_a_fresh_process(ssd_files):
    """``type='mmaff.SSDHeadWithLossCls'`` alone: the scope prefix imports
    mmaff and its head, and the test step works."""
    result = run_python('ssd_probe.py', 'ssdlite_mmaff.py', 'no-mmaff',
                        cwd=ssd_files, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out['mmaff'] and not out['ssd_head_before']
    assert len(out['labels']) == 5
    assert all(0 <= label < 3 for label in out['labels'])


def test_f1_registered_head_predicts_in_process(ssd_files):
    from mmdet.models.dense_heads import SSDHead
    from mmdet.registry import MODELS as MMDET_MODELS

    from mmaff.models.dense_heads import SSDHeadWithLossCls
    from mmaff.registry import MODELS
    probe = import_file(ssd_files / 'ssd_probe.py')
    (sample, ) = probe.predict(str(ssd_files / 'ssdlite_mmaff.py'))
    pred = sample.pred_instances
    assert pred.bboxes.shape == (5, 4)
    assert torch.all((pred.scores >= 0) & (pred.scores <= 1))
    assert torch.all(pred.scores[:-1] >= pred.scores[1:])
    assert torch.all((pred.labels >= 0) & (pred.labels < 3))
    assert not hasattr(SSDHead, 'loss_cls')  # mmdet's class is untouched
    assert issubclass(SSDHeadWithLossCls, SSDHead)
    assert MODELS.get('SSDHeadWithLossCls') is SSDHeadWithLossCls
    assert MMDET_MODELS.get('SSDHeadWithLossCls') is SSDHeadWithLossCls


def test_f1_registered_head_keeps_a_loss_cls_mmdet_sets(ssd_files,
                                                        monkeypatch):
    """On an mmdet whose SSDHead sets ``self.loss_cls``, that one wins."""
    from mmdet.models.dense_heads import SSDHead

    from mmaff.registry import MODELS
    cfg = Config.fromfile(ssd_files / 'ssdlite_mmaff.py').model.bbox_head
    fixed_init = SSDHead.__init__
    loss = object()

    def init(self, *args, **kwargs):
        fixed_init(self, *args, **kwargs)
        self.loss_cls = loss

    monkeypatch.setattr(SSDHead, '__init__', init)
    assert MODELS.build(cfg).loss_cls is loss
    monkeypatch.undo()
    assert MODELS.build(cfg).loss_cls is None


# --------------------------------------------------------------------------
# F2: runner checkpoints under torch.load(weights_only=True)

F2_SCRIPT = '''
import importlib.util
import json
import os
import sys

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner

toys_dir, work, compat_file = sys.argv[1:]
sys.path.insert(0, toys_dir)
import compat_toys  # noqa: E402

runner = Runner.from_cfg(Config(compat_toys.runner_cfg(work, 2)))
runner.train()
history = {k: [v.data[0].tolist(), v.data[1].tolist()]
           for k, v in runner.message_hub.log_scalars.items()}
with open(os.path.join(work, 'history.json'), 'w') as f:
    json.dump(history, f)
runner.save_checkpoint(work, 'meta.pth', meta=dict(
    np_float=np.float64(0.25), np_int=np.int64(7),
    np_array=np.arange(3, dtype=np.int32)))
torch.save(dict(meta=dict(lr=np.float64(0.1))),
           os.path.join(work, 'numpy_only.pth'))


def probe(tag, name):
    try:
        torch.load(os.path.join(work, name))
        print(tag, 'LOADED')
    except Exception as e:
        print(tag, f'{type(e).__name__}: {e}'.replace('\\n', ' '))


probe('NUMPY', 'numpy_only.pth')
probe('PLAIN', 'iter_2.pth')
# Everything mmaff allow-lists but the getattr stand-in; compat.py is read
# as a file of its own, so no mmaff fix is applied.
spec = importlib.util.spec_from_file_location('compat_file', compat_file)
compat = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compat)
partial = [g for g in compat.checkpoint_safe_globals()
           if not isinstance(g, tuple)]
with torch.serialization.safe_globals(partial):
    probe('NO_GETATTR', 'iter_2.pth')
assert 'mmaff' not in sys.modules
print('RESUMING now', flush=True)
Runner.from_cfg(Config(compat_toys.runner_cfg(
    work + '_resumed', 4, resume=True,
    load_from=os.path.join(work, 'iter_2.pth')))).train()
'''


@pytest.fixture(scope='module')
def upstream_checkpoints(tmp_path_factory, toys_dir):
    """Runner checkpoints written by plain mmengine (no mmaff), and what
    loading them does there."""
    path = tmp_path_factory.mktemp('f2')
    (path / 'f2.py').write_text(F2_SCRIPT)
    work = path / 'work'
    result = run_python('f2.py', toys_dir, work, compat.__file__, cwd=path,
                        timeout=TIMEOUT)
    lines = dict(
        line.split(' ', 1) for line in result.stdout.splitlines()
        if line.split(' ')[0] in ('NUMPY', 'PLAIN', 'NO_GETATTR', 'RESUMING'))
    return work, result, lines


def test_f2_needed_resume_fails_upstream(upstream_checkpoints):
    work, result, lines = upstream_checkpoints
    assert (work / 'iter_2.pth').is_file() and (work / 'meta.pth').is_file()
    assert 'RESUMING' in lines
    assert result.returncode != 0
    err = result.stderr
    assert '_pickle.UnpicklingError: Weights only load failed' in err
    assert ('Unsupported global: GLOBAL '
            'mmengine.logging.history_buffer.HistoryBuffer') in err
    assert 'in resume' in err and 'in load_from_local' in err
    # torch.load itself fails the same way on the runner checkpoint, and on
    # numpy scalars such as the ones mmengine keeps in ``meta``.
    assert 'GLOBAL mmengine.logging.history_buffer.HistoryBuffer' in (
        lines['PLAIN'])
    assert lines['NUMPY'].startswith('UnpicklingError')
    assert 'GLOBAL numpy._core.multiarray.scalar' in lines['NUMPY']
    # HistoryBuffer and numpy are not enough: pickle protocol 2 stores its
    # statistics methods as getattr(HistoryBuffer, 'min') and so on.
    assert lines['NO_GETATTR'].startswith('UnpicklingError')
    assert 'Unsupported global: GLOBAL getattr ' in lines['NO_GETATTR']


def test_f2_works_resume_from_upstream_checkpoint(upstream_checkpoints,
                                                  toys, tmp_path):
    from mmengine.runner import Runner
    work, _, _ = upstream_checkpoints
    history = json.loads((work / 'history.json').read_text())
    runner = Runner.from_cfg(Config(toys.runner_cfg(
        tmp_path, 4, resume=True, load_from=str(work / 'iter_2.pth'),
        experiment_name=f'resume_{uuid.uuid4().hex}')))
    saved = torch.load(work / 'iter_2.pth')
    runner.load_or_resume()  # what train() starts with
    assert runner.iter == 2
    for key, value in runner.model.state_dict().items():
        torch.testing.assert_close(value, saved['state_dict'][key])
    assert runner.optim_wrapper.state_dict()['state']  # momentum buffers
    loss = runner.message_hub.get_scalar('train/loss')
    np.testing.assert_array_equal(loss.data[0], history['train/loss'][0])
    runner.train()
    assert runner.iter == 4
    # Two logged iterations came from the checkpoint, two were added.
    assert len(runner.message_hub.get_scalar('train/loss').data[0]) == 4


def test_f2_works_checkpoint_round_trip(upstream_checkpoints, toys):
    from mmengine.runner import load_checkpoint
    work, _, _ = upstream_checkpoints
    history = json.loads((work / 'history.json').read_text())
    model = toys.CompatToyModel()
    checkpoint = load_checkpoint(model, str(work / 'meta.pth'))
    for key, value in checkpoint['state_dict'].items():
        torch.testing.assert_close(model.state_dict()[key], value)
    meta = checkpoint['meta']
    assert type(meta['np_float']) is np.float64 and meta['np_float'] == 0.25
    assert type(meta['np_int']) is np.int64 and meta['np_int'] == 7
    assert meta['np_array'].dtype == np.int32
    np.testing.assert_array_equal(meta['np_array'], [0, 1, 2])
    assert meta['iter'] == 2 and meta['dataset_meta'] == dict(
        classes=('toy', ))
    # torch.load with its default (weights_only=True) gives the same.
    plain = torch.load(work / 'meta.pth')
    for loaded in (checkpoint, plain):
        scalars = loaded['message_hub']['log_scalars']
        assert set(scalars) == set(history)
        for key, (logs, counts) in history.items():
            buffer = scalars[key]
            assert type(buffer) is HistoryBuffer
            np.testing.assert_array_equal(buffer.data[0], logs)
            np.testing.assert_array_equal(buffer.data[1], counts)
            assert buffer.statistics('mean') == pytest.approx(np.mean(logs))
    assert type(plain['message_hub']['runtime_info']['eta']) is np.float64


class _PickledOrderedDict(collections.OrderedDict):
    pass


class _Reduces:

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_f2_allow_list_does_not_weaken_the_check(tmp_path):
    safe = compat.checkpoint_safe_globals()
    assert getattr not in safe
    assert all(g[0] is not getattr for g in safe if isinstance(g, tuple))
    assert getattr not in torch.serialization.get_safe_globals()
    assert all(g[0] is not getattr
               for g in torch.serialization.get_safe_globals()
               if isinstance(g, tuple))

    def load(obj):
        path = tmp_path / 'obj.pth'
        torch.save(obj, path)
        return torch.load(path, weights_only=True)

    marker = tmp_path / 'pwned'
    with pytest.raises(pickle.UnpicklingError, match='GLOBAL posix.system'):
        load(_Reduces(os.system, f'touch {marker}'))
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError, match='_PickledOrderedDict'):
        load(_PickledOrderedDict(a=1))
    # getattr in a checkpoint answers the four HistoryBuffer methods only.
    for owner, name in ((HistoryBuffer, '__init__'),
                        (HistoryBuffer, 'update'),
                        (HistoryBuffer, '__class__'),
                        (np.ndarray, 'tofile')):
        with pytest.raises(pickle.UnpicklingError, match='is not allowed'):
            load(_Reduces(getattr, owner, name))
    assert load(_Reduces(getattr, HistoryBuffer, 'mean')) is (
        HistoryBuffer.mean)


# --------------------------------------------------------------------------
# F3-F6: CPU multi-process runs

DIST_SCRIPT = '''
import json
import os
import sys
import warnings

import torch.distributed as dist
from mmengine.config import Config
from mmengine.runner import Runner

toys_dir, mode, work = sys.argv[1:]
sys.path.insert(0, toys_dir)
import compat_toys  # noqa: E402


def make_cfg(name, **kwargs):
    kwargs = dict(
        dict(experiment_name=name,
             model=dict(type='CompatToyModel', norm_cfg=dict(type='SyncBN')),
             sync_bn='torch', launcher='pytorch',
             env_cfg=dict(dist_cfg=dict(backend='nccl')),
             default_hooks=dict(checkpoint=None)), **kwargs)
    return Config(compat_toys.runner_cfg(os.path.join(work, name), 3,
                                         **kwargs))


def attempt(cfg):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            runner = Runner.from_cfg(cfg)
            runner.train()
            error = None
        except Exception as e:
            runner, error = None, f'{type(e).__name__}: {e}'
    future = [str(w.message) for w in caught
              if issubclass(w.category, FutureWarning)]
    return runner, error, future


def dump(res):
    with open(os.path.join(work, f'{mode}{dist.get_rank()}.json'), 'w') as f:
        json.dump(res, f)


if mode == 'plain':
    # Upstream alone, then the fixes done by hand one by one: each run
    # fails (or warns) at the next one.
    assert 'mmaff' not in sys.modules
    try:
        Runner.from_cfg(make_cfg('plain'))
    except RuntimeError as e:
        upstream = e
    dist.init_process_group('gloo')  # F3
    res = dict(no_f4=attempt(make_cfg('no_f4'))[1:])
    f4 = dict(device_ids=None)
    res['no_f5'] = attempt(make_cfg('no_f5', model_wrapper_cfg=f4))[1:]
    f5 = dict(model=dict(type='CompatToyModel', norm_cfg=dict(type='BN')),
              sync_bn=None)
    res['no_f6'] = attempt(make_cfg(
        'no_f6', model_wrapper_cfg=dict(f4, broadcast_buffers=False),
        **f5))[1:]
    assert 'mmaff' not in sys.modules
    dump(res)
    raise upstream

from mmaff.compat import prepare_cpu_distributed  # noqa: E402

cfg = make_cfg('fixed')
changed = prepare_cpu_distributed(cfg, cfg.launcher)
runner, error, future = attempt(cfg)
assert error is None, error
model = runner.model
dump(dict(
    changed=changed, rank=dist.get_rank(), world_size=dist.get_world_size(),
    backend=dist.get_backend(), iter=runner.iter,
    wrapper=type(model).__name__, device_ids=model.device_ids,
    forward_sync_buffers=model.forward_sync_buffers,
    norms=sorted({type(m).__name__ for m in model.modules()
                  if 'Norm' in type(m).__name__}),
    weight=model.module.head.weight.detach().flatten().tolist(),
    samples=list(runner.train_dataloader.sampler), future=future))
# a rank leaving with gloo threads alive can abort ("terminate called
# without an active exception"): shut down together
dist.barrier()
dist.destroy_process_group()
'''


def torchrun(tmp_path, toys_dir, mode):
    script = tmp_path / 'dist_train.py'
    script.write_text(DIST_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = run_python('-m', 'torch.distributed.run', '--nproc_per_node',
                        '2', '--master_addr', '127.0.0.1', '--master_port',
                        free_port(), script, toys_dir, mode, tmp_path,
                        cwd=tmp_path, env=env, timeout=TIMEOUT)
    return result, result.stdout + result.stderr


@pytest.mark.slow
@CPU_ONLY
def test_f3_to_f6_needed_two_process_run_fails_upstream(tmp_path, toys_dir):
    result, output = torchrun(tmp_path, toys_dir, 'plain')
    assert result.returncode != 0
    # F3: mmengine's pytorch launcher wants a GPU, on both ranks.
    assert output.count('RuntimeError: Found no NVIDIA driver on your '
                        'system') == 2
    assert 'torch.cuda.set_device(local_rank)' in output
    for rank in (0, 1):
        res = json.loads((tmp_path / f'plain{rank}.json').read_text())
        # F4: with a gloo group, mmengine's device_ids=[LOCAL_RANK] for
        # the CPU model.
        error, _ = res['no_f4']
        assert error.startswith('ValueError: DistributedDataParallel '
                                'device_ids and output_device arguments')
        assert f'device_ids [{rank}]' in error
        # F5: with device_ids=None too, SyncBN in a CPU model.
        error, _ = res['no_f5']
        assert error == ('ValueError: SyncBatchNorm layers only work with '
                         'GPU modules')
        # F6: with BN too, the run works but mmengine's
        # broadcast_buffers=False warns.
        error, future = res['no_f6']
        assert error is None and len(future) == 1
        assert future[0].startswith('`broadcast_buffers` is deprecated. '
                                    'Use `forward_sync_buffers` instead.')


@pytest.mark.slow
@CPU_ONLY
def test_f3_to_f6_work_two_process_run(tmp_path, toys_dir):
    result, output = torchrun(tmp_path, toys_dir, 'fixed')
    assert result.returncode == 0, output[-3000:]
    ranks = [
        json.loads((tmp_path / f'fixed{i}.json').read_text()) for i in (0, 1)
    ]
    for rank, res in enumerate(ranks):
        assert res['rank'] == rank and res['world_size'] == 2
        assert res['changed'] and res['backend'] == 'gloo'  # F3
        assert res['iter'] == 3
        assert res['wrapper'] == 'MMDistributedDataParallel'
        assert res['device_ids'] is None  # F4
        assert res['norms'] == ['BatchNorm2d']  # F5
        assert res['forward_sync_buffers'] is False  # F6
        assert res['future'] == []
    # Different data on each rank, the same weights: gradients were reduced.
    assert set(ranks[0]['samples']).isdisjoint(ranks[1]['samples'])
    assert ranks[0]['weight'] == ranks[1]['weight']
    assert 'broadcast_buffers' not in output  # F6: no warning printed
    assert 'NVIDIA' not in output


# --------------------------------------------------------------------------
# prepare_cpu_distributed: config edits


def nested_cfg():
    return Config(dict(
        model=dict(
            type='Toy',
            backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True)),
            necks=[
                dict(norm_cfg=dict(type='MMSyncBN')),
                dict(conv_cfg=dict(type='Conv2d'))
            ],
            head=dict(blocks=(dict(norm_cfg=dict(type='SyncBN', eps=1e-3)),
                              ))),
        sync_bn='torch',
        env_cfg=dict(cudnn_benchmark=False,
                     dist_cfg=dict(backend='nccl', timeout=60)),
        model_wrapper_cfg=dict(find_unused_parameters=True,
                               broadcast_buffers=False)))


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)


@pytest.fixture
def process_group(monkeypatch, no_cuda):
    """torchrun's environment for a 1-process group, torn down after."""
    assert not dist.is_initialized()
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
                           MASTER_ADDR='127.0.0.1',
                           MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(key, value)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


@pytest.mark.parametrize('launcher, cuda', [('none', False),
                                             ('pytorch', True)])
def test_prepare_does_nothing_without_launcher_or_with_cuda(
        monkeypatch, launcher, cuda):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
    cfg = nested_cfg()
    before = cfg.to_dict()
    assert compat.prepare_cpu_distributed(cfg, launcher) is False
    assert cfg.to_dict() == before
    assert not dist.is_initialized()


def test_prepare_rejects_mpi_launcher(no_cuda):
    cfg = nested_cfg()
    before = cfg.to_dict()
    with pytest.raises(ValueError, match='pytorch launcher'):
        compat.prepare_cpu_distributed(cfg, 'mpi')
    assert cfg.to_dict() == before


def test_prepare_explains_missing_torchrun_environment(monkeypatch, no_cuda):
    assert not dist.is_initialized()
    monkeypatch.setenv('WORLD_SIZE', '2')
    for key in ('RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match='torchrun') as info:
        compat.prepare_cpu_distributed(nested_cfg(), 'pytorch')
    assert "['RANK', 'MASTER_ADDR', 'MASTER_PORT']" in str(info.value)
    assert not dist.is_initialized()


def test_prepare_edits_config_and_starts_gloo(process_group):
    cfg = nested_cfg()
    assert compat.prepare_cpu_distributed(cfg, 'pytorch') is True
    assert dist.is_initialized() and dist.get_backend() == 'gloo'
    expected = nested_cfg().to_dict()
    model = expected['model']
    model['backbone']['norm_cfg']['type'] = 'BN'
    model['necks'][0]['norm_cfg']['type'] = 'BN'
    model['head']['blocks'][0]['norm_cfg']['type'] = 'BN'
    expected.update(
        sync_bn=None,
        env_cfg=dict(cudnn_benchmark=False,
                     dist_cfg=dict(backend='gloo', timeout=60)),
        model_wrapper_cfg=dict(type='MMDistributedDataParallel',
                               find_unused_parameters=True,
                               device_ids=None,
                               forward_sync_buffers=False))
    assert cfg.to_dict() == expected
    # A second call (group already up) changes nothing more.
    assert compat.prepare_cpu_distributed(cfg, 'pytorch') is True
    assert cfg.to_dict() == expected


def test_prepare_fills_a_bare_config(process_group):
    cfg = Config(dict(model=dict(type='Toy')))
    assert compat.prepare_cpu_distributed(cfg, 'pytorch') is True
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.to_dict() == dict(
        type='MMDistributedDataParallel',
        device_ids=None,
        forward_sync_buffers=False)
    assert cfg.model.to_dict() == dict(type='Toy')


def test_prepare_keeps_asked_for_buffer_sync(process_group):
    cfg = Config(dict(model_wrapper_cfg=dict(broadcast_buffers=True)))
    compat.prepare_cpu_distributed(cfg, 'pytorch')
    assert 'broadcast_buffers' not in cfg.model_wrapper_cfg
    assert cfg.model_wrapper_cfg.forward_sync_buffers is True


# --------------------------------------------------------------------------
# Version gates: each fix only for the versions it was written for


def test_every_fix_applies_to_the_pinned_stack():
    for fix in compat.TESTED_VERSIONS:
        assert compat.fix_applies(fix), fix


@pytest.fixture
def untested(monkeypatch):
    """Pretend newer releases of every package are installed."""
    newer = {'mmdet': '3.4.0', 'mmengine': '0.10.8', 'torch': '2.15.0+cpu'}
    monkeypatch.setattr(compat, 'installed_version', newer.get)
    monkeypatch.setattr(compat, '_warned', set())


def test_version_matching_by_release_prefix(monkeypatch):
    versions = {'torch': '2.14.1+cu130', 'mmdet': '3.3.0'}
    monkeypatch.setattr(compat, 'installed_version', versions.get)
    assert compat.fix_applies('F6') and compat.fix_applies('F1')
    assert compat.fix_applies('F2') is False  # mmengine not installed
    versions.update(torch='2.1.4', mmdet='3.3.0rc1')
    monkeypatch.setattr(compat, '_warned', set())
    with pytest.warns(UserWarning):
        assert compat.fix_applies('F6') is False
    # a pre-release of the tested version has the same release numbers
    assert compat.fix_applies('F1') is True


def test_untested_mmengine_leaves_checkpoint_loading_alone_and_warns_once(
        untested, monkeypatch):
    added = []
    monkeypatch.setattr(torch.serialization, 'add_safe_globals', added.append)
    with pytest.warns(UserWarning) as record:
        assert compat.allow_mmengine_checkpoints() is False
        assert compat.allow_mmengine_checkpoints() is False
    assert [str(w.message) for w in record] == [
        'mmaff.compat: fix F2 (weights_only loads of runner checkpoints) was '
        'written for mmengine 0.10.7; found mmengine 0.10.8, so it is not '
        'applied. If the problem persists with this version, please report '
        'it.'
    ]
    assert added == []


def test_untested_mmengine_leaves_the_distributed_config_alone(
        untested, no_cuda):
    cfg = nested_cfg()
    before = cfg.to_dict()
    with pytest.warns(UserWarning, match='fix F3-F5 .* found mmengine'):
        assert compat.prepare_cpu_distributed(cfg, 'pytorch') is False
    assert cfg.to_dict() == before
    assert not dist.is_initialized()


def test_untested_torch_keeps_broadcast_buffers(monkeypatch, process_group):
    versions = {'mmengine': '0.10.7', 'torch': '2.15.0'}
    monkeypatch.setattr(compat, 'installed_version', versions.get)
    monkeypatch.setattr(compat, '_warned', set())
    cfg = Config(dict(model_wrapper_cfg=dict(broadcast_buffers=True)))
    with pytest.warns(UserWarning, match='fix F6 .* found torch 2.15.0'):
        assert compat.prepare_cpu_distributed(cfg, 'pytorch') is True
    assert cfg.model_wrapper_cfg.to_dict() == dict(
        broadcast_buffers=True,
        type='MMDistributedDataParallel',
        device_ids=None)
