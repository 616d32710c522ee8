"""Checkpoints: every way of reading one (tools/test.py, tools/train.py
--resume, load_from, init_cfg=Pretrained, the converter, mmengine's loader)
reports a bad file in one ``error:`` line naming the file and the problem,
and a killed training run resumes from its last complete checkpoint."""
import argparse
import copy
import os
import pickle
import re
import shutil
import signal
import struct
import textwrap
import time
import zipfile

import pytest
import torch
from helpers import (
    ROOT,
    run_python,
    run_tool,
    start_tool,
    success_log,
)

import mmaff  # noqa: F401  (F2: runner checkpoints load weights_only)
from mmaff.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    UnsafeCheckpointError,
    check_checkpoint_file,
    check_model_fits,
    find_resumable_checkpoint,
    install_checkpoint_loader,
    read_checkpoint,
)
from mmaff.engine.hooks import CheckpointFitHook

TOY_CONFIG = 'configs/classification/affnet-et_8xb128_in1k_toy.py'
CONVERTER = 'tools/model_converters/affnet_official_to_mmaff.py'


@pytest.fixture
def trained(trained_cls) -> str:
    """A runner checkpoint of the toy classifier (one epoch; conftest's,
    shared with the other tests)."""
    return trained_cls


def one_error(result, *phrases: str) -> str:
    """The single ``error:`` line of a run that must have failed without a
    traceback; it must contain every phrase."""
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert 'Traceback' not in out, out[-3000:]
    errors = [line for line in out.splitlines() if 'error:' in line]
    assert len(errors) == 1, errors or out[-3000:]
    assert errors[0].startswith('error: checkpoint ') or \
        errors[0].startswith('error: cannot read checkpoint '), errors[0]
    for phrase in phrases:
        assert phrase in errors[0], errors[0]
    return errors[0]


# ---------------------------------------------------------------------------
# Bad files, each made from the trained checkpoint


def write_truncated(good: str, dst: str) -> None:
    with open(good, 'rb') as f:
        data = f.read()
    with open(dst, 'wb') as f:
        f.write(data[:len(data) // 2])


def write_jpeg(good: str, dst: str, toy_root: str) -> None:
    shutil.copy(os.path.join(toy_root, 'train/ring/train_ring_00003.JPEG'),
                dst)


def write_text(good: str, dst: str) -> None:
    with open(dst, 'w') as f:
        f.write('epoch 1: loss 1.38, top-1 25.0\n')


def write_forbidden_global(good: str, dst: str) -> None:
    checkpoint = read_checkpoint(good)
    checkpoint['meta'] = argparse.Namespace(note='not on the allow-list')
    torch.save(checkpoint, dst)
    # the premise: torch's safe loader rejects Namespace
    assert torch.serialization.get_unsafe_globals_in_checkpoint(dst) == \
        ['argparse.Namespace']


def write_other_head(good: str, dst: str) -> None:
    """The toy classifier with 5 classes instead of 4."""
    checkpoint = read_checkpoint(good)
    state = checkpoint['state_dict']
    state['head.fc.weight'] = torch.zeros(5, state['head.fc.weight'].shape[1])
    state['head.fc.bias'] = torch.zeros(5)
    torch.save(checkpoint, dst)


def write_renamed(good: str, dst: str) -> None:
    checkpoint = read_checkpoint(good)
    checkpoint['state_dict'] = {
        k.replace('backbone.', 'encoder.'): v
        for k, v in checkpoint['state_dict'].items()
    }
    torch.save(checkpoint, dst)


# case -> (writer, phrases of the error line); None writes nothing
BAD_FILES = {
    'missing': (None, ['does not exist']),
    'truncated': (write_truncated,
                  ['is truncated', 'zip central directory is missing']),
    'jpeg': (write_jpeg, ['is not a PyTorch checkpoint', 'a JPEG image']),
    'text': (write_text,
             ['is not a PyTorch checkpoint', 'a text file starting with']),
    'forbidden_global': (write_forbidden_global, [
        "outside torch's weights_only allow-list: argparse.Namespace",
        'torch.serialization.add_safe_globals([argparse.Namespace])'
    ]),
    'other_head': (write_other_head, [
        'does not fit the model (ImageClassifier)', '2 shape mismatches',
        'head.fc.weight: checkpoint (5, 576), model (4, 576)',
        "init_cfg=dict(type='Pretrained'"
    ]),
    'renamed': (write_renamed, [
        'does not fit the model', ' missing keys (backbone.stem.',
        ' unexpected keys (encoder.stem.', ', ...)'
    ]),
}


def bad_file(case: str, good: str, tmp_path, toy_root: str) -> str:
    writer = BAD_FILES[case][0]
    path = str(tmp_path / f'{case}.pth')
    if writer is write_jpeg:
        writer(good, path, toy_root)
    elif writer is not None:
        writer(good, path)
    return path


@pytest.mark.parametrize('case', list(BAD_FILES))
def test_test_py_reports_a_bad_checkpoint_in_one_line(case, trained,
                                                      tmp_path, toy_imagenet):
    path = bad_file(case, trained, tmp_path, toy_imagenet)
    result = run_tool('test.py', TOY_CONFIG, toy_imagenet, path,
                      '--work-dir', tmp_path / 'work')
    line = one_error(result, *BAD_FILES[case][1])
    assert line.startswith(f'error: checkpoint {path}: ')
    if case == 'renamed':
        # every backbone key, counted (BN's counters may be missing)
        keys = [
            k for k in read_checkpoint(trained)['state_dict']
            if k.startswith('backbone.')
        ]
        missing = [k for k in keys if not k.endswith('num_batches_tracked')]
        assert f': {len(missing)} missing keys (' in line
        assert f'; {len(keys)} unexpected keys (' in line


def test_test_py_accepts_its_own_checkpoint(trained, tmp_path,
                                            toy_imagenet):
    """The fit check passes a checkpoint of the config."""
    log = success_log(
        run_tool('test.py', TOY_CONFIG, toy_imagenet, trained, '--work-dir',
                 tmp_path / 'work'))
    assert re.search(r'Epoch\(test\) \[1/1\]\s+accuracy/top1: \d', log)
    assert 'does not fit' not in log and 'do not match' not in log


@pytest.mark.parametrize('case', ['truncated', 'other_head'])
def test_train_py_resume_reports_a_bad_checkpoint(case, trained, tmp_path,
                                                  toy_imagenet):
    path = bad_file(case, trained, tmp_path, toy_imagenet)
    result = run_tool('train.py', TOY_CONFIG, toy_imagenet, '--resume', path,
                      '--work-dir', tmp_path / 'work')
    phrases = {
        'truncated': ['is truncated'],
        # mmengine alone only logs the mismatch (it resumes with strict=False)
        'other_head': ['2 shape mismatches', 'Resume needs a checkpoint'],
    }[case]
    assert one_error(result, *phrases).startswith(f'error: checkpoint {path}')


def child_config(tmp_path, body: str) -> str:
    """A config inheriting the toy config; in a folder named after the task
    as ``toy_options`` expects."""
    folder = tmp_path / 'classification'
    folder.mkdir()
    child = folder / 'child.py'
    child.write_text(f"_base_ = '{os.path.join(ROOT, TOY_CONFIG)}'\n{body}")
    return str(child)


def test_load_from_in_a_config_reports_a_bad_checkpoint(
        trained, tmp_path, toy_imagenet):
    path = bad_file('truncated', trained, tmp_path, toy_imagenet)
    config = child_config(tmp_path, f'load_from = {path!r}\n')
    result = run_tool('train.py', config, toy_imagenet, '--work-dir',
                      tmp_path / 'work')
    one_error(result, path, 'is truncated')


def test_pretrained_init_cfg_reports_a_bad_checkpoint(
        trained, tmp_path, toy_imagenet):
    """Read by mmengine's PretrainedInit inside runner.train() (without a
    prefix, train.py leaves the file to it)."""
    path = bad_file('jpeg', trained, tmp_path, toy_imagenet)
    # as helpers.pretrained_child, but the classifier's backbone has no
    # init_cfg to delete
    config = child_config(
        tmp_path, "model = dict(backbone=dict(init_cfg=dict("
        f"type='Pretrained', checkpoint={path!r})))\n")
    result = run_tool('train.py', config, toy_imagenet, '--work-dir',
                      tmp_path / 'work')
    one_error(result, path, 'a JPEG image')


def test_pretrained_prefix_not_in_the_checkpoint(trained, tmp_path,
                                                 toy_imagenet):
    """mmengine would stop inside the run with a bare AssertionError."""
    config = child_config(
        tmp_path, "model = dict(backbone=dict(init_cfg=dict("
        f"type='Pretrained', checkpoint={trained!r}, prefix='encoder')))\n")
    result = run_tool('train.py', config, toy_imagenet, '--work-dir',
                      tmp_path / 'work')
    line = one_error(result, trained,
                     "has no weights under init_cfg's prefix 'encoder.'")
    assert 'backbone., data_preprocessor., head.' in line or \
        'backbone., head.' in line, line


def test_converter_reports_a_non_checkpoint(trained, tmp_path,
                                            toy_imagenet):
    path = bad_file('text', trained, tmp_path, toy_imagenet)
    result = run_python(CONVERTER, path, tmp_path / 'out.pth', timeout=300)
    assert result.returncode == 1
    one_error(result, f'cannot read checkpoint {path}: ',
              'is not a PyTorch checkpoint')
    assert not list(tmp_path.glob('out*'))


# ---------------------------------------------------------------------------
# The library functions, in process


def test_read_checkpoint_classifies_each_problem(trained, tmp_path,
                                                 toy_imagenet):
    expected_class = {
        'missing': CheckpointNotFoundError,
        'forbidden_global': UnsafeCheckpointError,
    }
    for case in ('missing', 'truncated', 'jpeg', 'text', 'forbidden_global'):
        path = bad_file(case, trained, tmp_path, toy_imagenet)
        with pytest.raises(CheckpointError) as err:
            read_checkpoint(path)
        assert type(err.value) is expected_class.get(case, CheckpointError)
        message = str(err.value)
        assert message.startswith(f'checkpoint {path}: ')
        assert '\n' not in message
        for phrase in BAD_FILES[case][1]:
            assert phrase in message, message
    # the types callers caught before keep working
    assert issubclass(CheckpointNotFoundError, FileNotFoundError)
    assert issubclass(UnsafeCheckpointError, pickle.UnpicklingError)
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(CheckpointError, match='is truncated: the file is '
                       'empty'):
        read_checkpoint(str(empty))
    with pytest.raises(CheckpointError, match='is a directory'):
        read_checkpoint(str(tmp_path))
    html = tmp_path / 'download.pth'
    html.write_text('<!DOCTYPE html><html><body>Sign in</body></html>')
    with pytest.raises(CheckpointError, match='HTML/XML page'):
        check_checkpoint_file(str(html))
    tensor = tmp_path / 'tensor.pth'
    torch.save(torch.zeros(2), tensor)
    with pytest.raises(CheckpointError, match='holds a Tensor, not a dict'):
        read_checkpoint(str(tensor))
    # a flipped byte in the pickle: torch's answer is a weights_only notice
    # that suggests weights_only=False; the CRC says what really happened
    corrupt = tmp_path / 'corrupt.pth'
    with zipfile.ZipFile(trained) as archive:
        pkl = next(i for i in archive.infolist()
                   if i.filename.endswith('/data.pkl'))
    with open(trained, 'rb') as f:
        data = bytearray(f.read())
    # the pickle's bytes start after the local header (30 bytes), the name
    # and torch's alignment padding
    name_len, extra_len = struct.unpack(
        '<HH', data[pkl.header_offset + 26:pkl.header_offset + 30])
    start = pkl.header_offset + 30 + name_len + extra_len + 16
    data[start:start + 64] = bytes(64)
    corrupt.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match='is corrupt: zip entry '
                       r'\S+data.pkl fails its CRC check'):
        read_checkpoint(str(corrupt))
    assert read_checkpoint(trained)['meta']['epoch'] == 1


def test_import_mmaff_leaves_mmengine_loader_alone():
    """Only an explicit install_checkpoint_loader() changes mmengine's
    loader for local files (a fresh interpreter: this one may have run a
    tool's main)."""
    code = textwrap.dedent("""\
        from mmengine.runner.checkpoint import (CheckpointLoader,
                                                load_from_local)
        before = CheckpointLoader._schemes['']
        assert before is load_from_local, before
        import mmaff, mmaff.checkpoint, mmaff.engine.hooks, mmaff.utils
        assert CheckpointLoader._schemes[''] is before, 'replaced on import'
        from mmaff.checkpoint import install_checkpoint_loader
        assert install_checkpoint_loader()
        assert CheckpointLoader._schemes[''].__wrapped__ is before
        print('ok')
        """)
    result = run_python('-c', code, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == 'ok'


def test_mmengine_loader_only_changes_the_errors(trained, tmp_path,
                                                 toy_imagenet, monkeypatch):
    """load_from, resume, init_cfg=Pretrained and the Inferencers read
    through CheckpointLoader: once the tools install our wrapper, same
    result as mmengine's own loader, our errors."""
    from mmengine.runner.checkpoint import (
        CheckpointLoader,
        _load_checkpoint,
        load_from_local,
    )
    # mmengine's own loader now, and whatever was there after the test
    # (register_scheme replaces the dict)
    schemes = copy.copy(CheckpointLoader._schemes)
    schemes[''] = load_from_local
    monkeypatch.setattr(CheckpointLoader, '_schemes', schemes)
    assert install_checkpoint_loader() is True
    assert install_checkpoint_loader() is False  # once is enough
    loader = CheckpointLoader._get_checkpoint_loader(trained)
    assert loader is not load_from_local
    assert loader.__wrapped__ is load_from_local
    assert loader.__name__ == 'load_from_local'  # logs "local backend"
    ours = _load_checkpoint(trained, map_location='cpu')
    theirs = load_from_local(trained, 'cpu')
    assert ours.keys() == theirs.keys()
    for key, value in theirs['state_dict'].items():
        assert torch.equal(ours['state_dict'][key], value), key
    # weights_only as before: the forbidden global is still refused
    path = bad_file('forbidden_global', trained, tmp_path, toy_imagenet)
    with pytest.raises(pickle.UnpicklingError):
        load_from_local(path, 'cpu')
    with pytest.raises(UnsafeCheckpointError, match='argparse.Namespace'):
        _load_checkpoint(path, map_location='cpu')
    missing = str(tmp_path / 'nowhere.pth')
    with pytest.raises(FileNotFoundError, match='does not exist'):
        _load_checkpoint(missing)


class Small(torch.nn.Module):

    def __init__(self, out: int = 3) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, out)
        self.bn = torch.nn.BatchNorm1d(out)


def test_check_model_fits():
    model = Small()
    state = model.state_dict()
    path = 'small.pth'
    # the wrappings mmengine's load_checkpoint accepts
    check_model_fits(model, state, path)
    check_model_fits(model, {'state_dict': state, 'meta': {}}, path)
    check_model_fits(model, {f'module.{k}': v for k, v in state.items()},
                     path)
    check_model_fits(model, {f'backbone.{k}': v for k, v in state.items()},
                     path, prefix='backbone')
    # BN's counter may be missing, as mmengine allows
    check_model_fits(
        model, {k: v for k, v in state.items() if 'num_batches' not in k},
        path)
    with pytest.raises(CheckpointMismatchError) as err:
        check_model_fits(model, Small(out=5).state_dict(), path, hint=None)
    message = str(err.value)
    assert message == (
        'checkpoint small.pth: does not fit the model (Small): '
        '6 shape mismatches (fc.weight: checkpoint (5, 4), model (3, 4), '
        'fc.bias: checkpoint (5,), model (3,), bn.weight: checkpoint (5,), '
        'model (3,), ...)')
    # all of them on the exception, for callers
    assert [k for k, _, _ in err.value.mismatched] == [
        'fc.weight', 'fc.bias', 'bn.weight', 'bn.bias', 'bn.running_mean',
        'bn.running_var'
    ]
    renamed = {k.replace('fc.', 'head.'): v for k, v in state.items()}
    with pytest.raises(CheckpointMismatchError) as err:
        check_model_fits(model, renamed, path)
    assert '2 missing keys (fc.weight, fc.bias); 2 unexpected keys ' \
        '(head.weight, head.bias)' in str(err.value)
    assert str(err.value).endswith("prefix='backbone.')")
    with pytest.raises(CheckpointError, match='not a dict'):
        check_model_fits(model, {'state_dict': torch.zeros(1)}, path)


def test_checkpoint_fit_hook_from_a_config():
    """custom_hooks=[dict(type='mmaff.CheckpointFitHook', ...)] builds from
    any scope and refuses a state dict of another model."""
    from mmengine.registry import HOOKS, DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        hook = HOOKS.build(
            dict(type='mmaff.CheckpointFitHook', path='small.pth'))
    assert type(hook) is CheckpointFitHook and hook.priority == 'HIGHEST'
    runner = argparse.Namespace(model=Small())
    hook.after_load_checkpoint(runner, {'state_dict': Small().state_dict()})
    with pytest.raises(CheckpointMismatchError, match='^checkpoint small.pth: '
                       'does not fit the model'):
        hook.after_load_checkpoint(runner, Small(out=5).state_dict())


# ---------------------------------------------------------------------------
# Auto-resume past an incomplete checkpoint


def save_runner_like(path, iteration: int) -> None:
    torch.save({'meta': {'iter': iteration}, 'state_dict': {}}, path)


def test_auto_resume_skips_a_truncated_newest_checkpoint(tmp_path):
    work = tmp_path
    assert find_resumable_checkpoint(str(work)) is None  # a new run
    for i in (1, 2, 3):
        save_runner_like(work / f'iter_{i}.pth', i)
    last = work / 'last_checkpoint'
    last.write_text(str(work / 'iter_3.pth'))
    assert find_resumable_checkpoint(str(work)) == str(work / 'iter_3.pth')
    # iter_3 cut (data lost in a crash after last_checkpoint was written)
    write_truncated(str(work / 'iter_3.pth'), str(work / 'iter_3.pth'))
    assert find_resumable_checkpoint(str(work)) == str(work / 'iter_2.pth')
    # last_checkpoint emptied by an interrupted write: the newest complete
    last.write_text('')
    assert find_resumable_checkpoint(str(work)) == str(work / 'iter_2.pth')
    # while the named file is fine it is used, as mmengine does
    last.write_text(str(work / 'iter_1.pth'))
    assert find_resumable_checkpoint(str(work)) == str(work / 'iter_1.pth')
    # named checkpoint deleted (max_keep_ckpts removes the oldest before a
    # save): the newest complete one, newer ones included
    os.remove(work / 'iter_1.pth')
    assert find_resumable_checkpoint(str(work)) == str(work / 'iter_2.pth')
    # and nothing complete left: an error naming both files
    os.remove(work / 'iter_2.pth')
    with pytest.raises(CheckpointError) as err:
        find_resumable_checkpoint(str(work))
    assert str(err.value) == (
        f'checkpoint {work / "iter_1.pth"}: does not exist (named by '
        f'{last}), and {work} holds no other complete checkpoint to resume '
        'from')

def test_train_py_auto_resume_reports_no_complete_checkpoint(
        tmp_path, toy_imagenet):
    work = tmp_path / 'work'
    work.mkdir()
    save_runner_like(work / 'iter_1.pth', 1)
    write_truncated(str(work / 'iter_1.pth'), str(work / 'iter_1.pth'))
    (work / 'last_checkpoint').write_text(str(work / 'iter_1.pth'))
    result = run_tool('train.py', TOY_CONFIG, toy_imagenet, '--resume',
                      '--work-dir', work)
    one_error(result, f'checkpoint {work / "iter_1.pth"}: is truncated',
              'holds no other complete checkpoint')


# max_iters iterations, a checkpoint after each, the last 2 kept
MAX_ITERS = 4
ITER_SCHEDULE = {
    'train_cfg._delete_': True,
    'train_cfg.type': 'IterBasedTrainLoop',
    'train_cfg.max_iters': MAX_ITERS,
    'train_cfg.val_begin': 1000,  # no validation, not even at the end
    'train_cfg.val_interval': 1000,
    'default_hooks.checkpoint.by_epoch': False,
    'default_hooks.checkpoint.interval': 1,
    'default_hooks.checkpoint.max_keep_ckpts': 2,
    'log_processor.by_epoch': False,
}


def complete_iteration(path) -> int | None:
    """``meta['iter']`` of a checkpoint that loads, else None."""
    try:
        return torch.load(path, map_location='cpu',
                          weights_only=True)['meta']['iter']
    except Exception:  # noqa: BLE001 - any failure: not complete
        return None


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_complete_checkpoint(
        tmp_path, toy_imagenet):
    work = tmp_path / 'work'
    with open(tmp_path / 'killed.log', 'w') as log:
        proc = start_tool('train.py', TOY_CONFIG, toy_imagenet, '--work-dir',
                          work, log=log, **ITER_SCHEDULE)
        try:
            deadline = time.monotonic() + 600
            # killed as soon as the 2nd checkpoint file appears, most often
            # while it is being written
            while not (work / 'iter_2.pth').exists():
                assert proc.poll() is None, \
                    (tmp_path / 'killed.log').read_text()[-3000:]
                assert time.monotonic() < deadline
                time.sleep(0.002)
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    # What a resume must start from, found with torch.load: the checkpoint
    # last_checkpoint names if it loads, else the newest older one that does.
    named = (work / 'last_checkpoint').read_text().strip()
    found = {
        int(p.stem.split('_')[1]): complete_iteration(p)
        for p in work.glob('iter_*.pth')
    }
    print(f'after the kill: last_checkpoint -> {os.path.basename(named)}, '
          f'iteration of each file (None: incomplete): {found}')
    named_iter = int(re.search(r'iter_(\d+)', named)[1])
    expected = found.get(named_iter) or max(
        i for i, it in found.items() if it is not None and i < named_iter)
    assert expected in (1, 2)

    log = success_log(
        run_tool('train.py', TOY_CONFIG, toy_imagenet, '--resume',
                 '--work-dir', work, **ITER_SCHEDULE))
    resumed = re.search(r'resumed epoch: \d+, iter: (\d+)', log)
    assert resumed and int(resumed[1]) == expected, log[-3000:]
    trained_iters = [
        int(i) for i in re.findall(rf'Iter\(train\) \[(\d+)/{MAX_ITERS}\]',
                                   log)
    ]
    assert trained_iters == list(range(expected + 1, MAX_ITERS + 1))
    final = torch.load(work / f'iter_{MAX_ITERS}.pth', weights_only=True)
    assert final['meta']['iter'] == MAX_ITERS
    assert final['message_hub']['runtime_info']['iter'] == MAX_ITERS - 1

    # A crash that loses the newest checkpoint's data after last_checkpoint
    # named it: the next --resume goes back one checkpoint, with a warning.
    newest = work / f'iter_{MAX_ITERS}.pth'
    write_truncated(str(newest), str(newest))
    log = success_log(
        run_tool('train.py', TOY_CONFIG, toy_imagenet, '--resume',
                 '--work-dir', work, **ITER_SCHEDULE))
    assert f'names {newest}, which is truncated' in log
    assert re.search(r'resumed epoch: \d+, iter: (\d+)', log)[1] == \
        str(MAX_ITERS - 1)
    assert complete_iteration(newest) == MAX_ITERS
