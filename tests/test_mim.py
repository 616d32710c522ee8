"""``mim install .`` (a regular install) and mim's train / test / run
commands, as the README gives them.

The install goes into a throwaway environment layered over the test
environment: it sees .venv's packages (torch, the mm stack, openmim)
through a path entry, so nothing large is installed twice, while its own
site-packages (first on ``sys.path``) holds the regular install of mmaff
that mim looks for. The editable install of .venv is not visible there:
the ``.pth`` files that install it are only run for site directories.
"""
import os
import os.path as osp
import shutil
import sys
import sysconfig

import pytest
from helpers import ROOT, run, success_log, toy_options

SEG_TOY = 'deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512_toy.py'


@pytest.fixture(scope='module')
def mim_env(tmp_path_factory):
    """Python of a throwaway environment in which ``mim install`` put a
    copy of this checkout."""
    base = tmp_path_factory.mktemp('mim')
    env = base / 'env'
    result = run(sys.executable, '-m', 'venv', '--without-pip', env)
    assert result.returncode == 0, result.stderr
    python = str(env / 'bin' / 'python')
    purelib = run(python, '-c',
                  'import sysconfig; print(sysconfig.get_paths()["purelib"])'
                  ).stdout.strip()
    with open(osp.join(purelib, 'layer_over_test_env.pth'), 'w') as f:
        f.write(sysconfig.get_paths()['purelib'] + '\n')
    src = base / 'src'
    shutil.copytree(
        ROOT, src,
        ignore=shutil.ignore_patterns('.venv', '.git', 'data', 'work_dirs',
                                      '.mim', 'build', '*.egg-info',
                                      '__pycache__', '.pytest_cache'))
    # PIP_RETRIES=0: without internet, pip would retry the package index
    # and mim's mmcv link five times each (25 s) before using local wheels.
    log = success_log(
        run(python, '-m', 'mim', 'install', src, cwd=base, timeout=600,
            env=dict(PIP_RETRIES='0')))
    assert 'Successfully installed mmaff' in log, log[-2000:]
    return python, purelib, base


def mim(env, *args, cwd) -> str:
    python, _, _ = env
    return success_log(run(python, '-m', 'mim', *args, cwd=cwd))


def test_mim_install_is_a_regular_install(mim_env):
    """What mim finds: mmaff imported from the environment's own
    site-packages, configs and tools copied into ``mmaff/.mim``."""
    python, purelib, base = mim_env
    # not from ROOT: `python -c` puts the working directory on sys.path
    where = run(python, '-c', 'import mmaff; print(mmaff.__file__)',
                cwd=base)
    assert where.stdout.strip() == osp.join(purelib, 'mmaff',
                                            '__init__.py'), where.stderr
    mim_dir = osp.join(purelib, 'mmaff', '.mim')
    for name in ('tools/train.py', 'tools/test.py', 'tools/dist_train.sh',
                 'tools/analysis_tools/get_flops.py', 'model-index.yml',
                 'configs/segmentation/' + SEG_TOY,
                 'configs/detection/ssdlite_affnet-et_8xb24-600e_coco.py'):
        path = osp.join(mim_dir, name)
        assert osp.isfile(path) and not osp.islink(path), path


@pytest.mark.slow
def test_mim_train_test_and_run(mim_env, toy_ade, tmp_path):
    """``mim train mmaff NAME`` finds the shipped config by its name, trains
    and validates; ``mim test`` evaluates the checkpoint; ``mim run mmaff
    get_flops`` counts the model."""
    options = toy_options('configs/segmentation/' + SEG_TOY, toy_ade,
                          **{
                              'train_cfg.max_iters': 2,
                              'train_cfg.val_interval': 2,
                              'default_hooks.checkpoint.interval': 2,
                          })
    log = mim(mim_env, 'train', 'mmaff', SEG_TOY, '--gpus', '0',
              '--work-dir', 'work', *options, cwd=tmp_path)
    assert 'Training finished successfully' in log
    # the copy in the regular install ran, not the checkout's script
    assert osp.join('mmaff', '.mim', 'tools', 'train.py') in log
    assert 'Iter(val) [4/4]' in log and 'mIoU:' in log
    checkpoint = tmp_path / 'work' / 'iter_2.pth'
    assert checkpoint.is_file()

    log = mim(mim_env, 'test', 'mmaff', SEG_TOY, '--checkpoint', checkpoint,
              '--gpus', '0', '--work-dir', 'test', *options, cwd=tmp_path)
    assert 'Testing finished successfully' in log
    assert 'Iter(test) [4/4]' in log and 'mIoU:' in log

    log = mim(mim_env, 'run', 'mmaff', 'get_flops', SEG_TOY, '--shape', 128,
              cwd=tmp_path)
    assert 'FLOPs (multiply-accumulates):' in log
    assert 'params:' in log


def test_editable_install_is_not_what_mim_finds():
    """The README's reason why ``make setup`` (editable) does not serve mim:
    mim looks at ``<location of the mmaff distribution>/mmaff/.mim``, and a
    PEP 660 editable install leaves no ``mmaff`` folder there."""
    from mim.utils import get_installed_path

    import mmaff
    assert osp.dirname(osp.dirname(mmaff.__file__)) == ROOT, \
        'the test environment has the editable install of make setup'
    pkg_root = get_installed_path('mmaff')
    assert not osp.exists(osp.join(pkg_root, '.mim', 'tools', 'train.py'))
    assert os.path.realpath(pkg_root) != osp.join(ROOT, 'mmaff')
