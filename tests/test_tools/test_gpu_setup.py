"""The GPU path, checked as far as a CPU-only machine allows: the set-up's
decisions (tools/install_env.sh --dry-run, tools/misc/mmcv_build_plan.py),
the mmcv op check, tools/benchmarks/gpu_check.py --device cpu --tiny, and
the run options (--amp-dtype, --device, SyncBN in single-process runs)."""
import importlib.metadata
import json
import os
import re
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from helpers import ROOT, import_file, run, run_python, run_tool

from mmaff.utils.device import DeviceError, pick_device

# the run options of tools/train.py and tools/test.py
cli_common = import_file(Path(ROOT, 'tools', 'cli_common.py'))

TORCH_PIN = re.search(r'^torch==(\S+)$',
                      Path(ROOT, 'requirements/torch.txt').read_text(),
                      re.M).group(1)
TOY_ADE_CFG = ('configs/segmentation/'
               'deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512_toy.py')
VENV_CUDA_HOME = (Path(sys.prefix) / 'lib' /
                  f'python{sys.version_info[0]}.{sys.version_info[1]}' /
                  'site-packages' / 'nvidia')


def dry_run(tmp_path, **env) -> tuple[int, str]:
    """``install_env.sh --dry-run`` with this venv, no GPU visible, a
    wheelhouse root in ``tmp_path`` and ``env``; (exit code, output)."""
    base = {k: v for k, v in os.environ.items()
            if k not in ('FORCE_CUDA', 'TORCH_CUDA_ARCH_LIST', 'CUDA_HOME',
                         'MAX_JOBS')}
    base.update(VENV=sys.prefix, MMAFF_WHEELHOUSE=str(tmp_path / 'wheels'),
                CUDA_VISIBLE_DEVICES='', **env)
    result = run('bash', 'tools/install_env.sh', '--dry-run', env=base)
    assert not (tmp_path / 'wheels').exists(), 'a dry run created files'
    return result.returncode, result.stdout + result.stderr


def torch_cuda_toolkit() -> str:
    """The cuda-toolkit release torch depends on (from torch's metadata)."""
    for requirement in importlib.metadata.requires('torch'):
        match = re.match(r'cuda-toolkit\[[^\]]*\]==([\d.]+)', requirement)
        if match:
            return match.group(1)
    raise AssertionError('torch names no cuda-toolkit release')


def fake_cuda_home(root: Path, release: str) -> Path:
    """A CUDA_HOME whose bin/nvcc reports ``release``."""
    bin_dir = root / f'cuda-{release}' / 'bin'
    bin_dir.mkdir(parents=True)
    nvcc = bin_dir / 'nvcc'
    nvcc.write_text('#!/bin/sh\necho "Cuda compilation tools, release '
                    f'{release}, V{release}.99"\n')
    nvcc.chmod(0o755)
    return bin_dir.parent


# --------------------------------------------------------------- set-up
def test_dry_run_cpu_decisions(tmp_path):
    code, out = dry_run(tmp_path)
    assert code == 0, out
    assert 'dry run: nothing is installed' in out
    assert 'mmcv ops: CPU (no GPU visible and FORCE_CUDA is not set)' in out
    key = f'torch-{TORCH_PIN}-cpu'
    assert f'wheelhouse: {tmp_path}/wheels/{key}' in out
    assert f'would build mmcv 2.1.0 with cpu ops (patched to C++20) into ' \
        f'{tmp_path}/wheels/{key}' in out
    assert 'compiler packages' not in out
    assert re.search(r'MAX_JOBS=\d+ parallel compile jobs', out)


def test_dry_run_forced_cuda_build(tmp_path):
    code, out = dry_run(tmp_path, FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST='9.0',
                        MAX_JOBS='3')
    assert code == 0, out
    cuda = torch.version.cuda
    assert 'mmcv ops: CUDA (FORCE_CUDA=1 asks for CUDA ops)' in out
    assert 'CUDA arch list: 9.0 (from TORCH_CUDA_ARCH_LIST)' in out
    # the compiler of the release torch's own runtime libraries come from,
    # with nvvm pinned to it (a newer nvvm's PTX fails in the older ptxas)
    toolkit = torch_cuda_toolkit()
    packages = re.search(r'compiler packages \(into the venv\): (.*)',
                         out).group(1).split()
    assert packages[0] == f'cuda-toolkit[nvcc,cccl,crt]=={toolkit}'
    nvcc = importlib.metadata.requires('cuda-toolkit')
    nvvm = [r for r in nvcc if r.startswith('nvidia-nvvm')
            and "extra == 'nvcc'" in r.replace('"', "'")]
    assert nvvm and packages[1] == 'nvidia-nvvm==' + re.search(
        r'==([\d.]+?)(\.\*)?\s*;', nvvm[0]).group(1)
    major = cuda.split('.')[0]
    assert f'CUDA_HOME={VENV_CUDA_HOME}/cu{major}' in out
    key = f'torch-{TORCH_PIN}-cu{cuda.replace(".", "")}-sm90'
    assert f'wheelhouse: {tmp_path}/wheels/{key}' in out
    assert f'would install {" ".join(packages)}' in out
    assert 'would build mmcv 2.1.0 with cuda ops' in out
    assert 'MAX_JOBS=3 parallel compile jobs' in out


def test_dry_run_ignores_a_mismatched_system_cuda(tmp_path):
    old = fake_cuda_home(tmp_path, '12.4')
    code, out = dry_run(tmp_path, FORCE_CUDA='1',
                        TORCH_CUDA_ARCH_LIST='8.0;9.0+PTX',
                        CUDA_HOME=str(old),
                        PATH=f'{old}/bin:{os.environ["PATH"]}')
    assert code == 0, out
    assert f'ignoring CUDA_HOME={old}: nvcc 12.4, torch needs CUDA ' \
        f'{torch.version.cuda}' in out
    assert f'not using {old}/bin/nvcc on PATH (nvcc 12.4)' in out
    assert f'CUDA_HOME={VENV_CUDA_HOME}/cu' in out
    assert re.search(r'wheelhouse: .*-cu\d+-sm80-sm90ptx$', out, re.M)


def test_dry_run_uses_a_matching_cuda_home(tmp_path):
    home = fake_cuda_home(tmp_path, torch.version.cuda)
    code, out = dry_run(tmp_path, FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST='9.0',
                        CUDA_HOME=str(home))
    assert code == 0, out
    assert f'CUDA_HOME={home}: nvcc {torch.version.cuda} matches' in out
    assert 'would install' not in out.replace('would install mmengine', '')


@pytest.mark.parametrize('env, message', [
    (dict(FORCE_CUDA='1'), 'FORCE_CUDA=1 without a visible GPU needs '
     'TORCH_CUDA_ARCH_LIST'),
    (dict(FORCE_CUDA='maybe'), "FORCE_CUDA='maybe': use 1 or 0"),
    (dict(FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST='sm_90'),
     "TORCH_CUDA_ARCH_LIST entry 'sm_90' is not a compute capability"),
])
def test_dry_run_refuses_unclear_requests(tmp_path, env, message):
    code, out = dry_run(tmp_path, **env)
    assert code != 0
    assert f'[install_env] error: {message}' in out


def test_dry_run_rejects_unknown_arguments():
    result = run('bash', 'tools/install_env.sh', '--dryrun')
    assert result.returncode == 2
    assert "unknown argument '--dryrun'" in result.stderr


def make_wheel(path: Path, so_bytes: bytes | None) -> Path:
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('mmcv/__init__.py', '')
        if so_bytes is not None:
            archive.writestr('mmcv/_ext.cpython-311-x86_64-linux-gnu.so',
                             so_bytes)
    return path


def test_wheel_kind_tells_cpu_from_cuda_builds(tmp_path):
    import mmcv
    plan = 'tools/misc/mmcv_build_plan.py'
    # the mmcv this suite runs on was built for the CPU
    (ext, ) = Path(mmcv.__file__).parent.glob('_ext*.so')
    cpu = make_wheel(tmp_path / 'cpu.whl', ext.read_bytes())
    assert run_python(plan, 'wheel-kind', cpu).stdout.strip() == 'cpu'
    # a CUDA extension links torch's CUDA library
    cuda = make_wheel(tmp_path / 'cuda.whl',
                      b'\x7fELF...libc10_cuda.so\x00libcudart.so.13\x00')
    assert run_python(plan, 'wheel-kind', cuda).stdout.strip() == 'cuda'
    lite = make_wheel(tmp_path / 'lite.whl', None)
    result = run_python(plan, 'wheel-kind', lite)
    assert result.returncode == 2
    assert 'has no compiled mmcv/_ext*.so' in result.stderr


def test_mmcv_op_check_names_missing_ops():
    result = run_python('tools/misc/check_mmcv_ops.py', '--device', 'cpu')
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert lines['nms'].split() == ['cpu', 'ok']
    assert lines['roi_align'].split() == ['cpu', 'ok']
    # mmcv has no CPU kernel for the focal loss: the check says so
    assert 'missing: sigmoid_focal_loss_forward_impl: implementation for ' \
        'device cpu not found' in lines['sigmoid_focal_loss']
    assert result.returncode == 1
    assert 'mmcv ops failing on cpu: sigmoid_focal_loss' in result.stderr
    if not torch.cuda.is_available():
        result = run_python('tools/misc/check_mmcv_ops.py')
        assert result.returncode == 1
        assert 'torch sees no CUDA device' in result.stderr


def test_focal_loss_reference_matches_mmdet():
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
    check = import_file(Path(ROOT, 'tools/misc/check_mmcv_ops.py'))
    logits = torch.randn(32, 4)
    labels = torch.randint(0, 5, (32, ))
    ours = check.focal_loss_reference(logits, labels, 2.0, 0.25)
    one_hot = torch.nn.functional.one_hot(labels, 5)[:, :4].float()
    ref = py_sigmoid_focal_loss(logits, one_hot, gamma=2.0, alpha=0.25,
                                reduction='none')
    torch.testing.assert_close(ours, ref)


# ------------------------------------------------------------ gpu_check
def test_gpu_check_tiny_on_cpu(tmp_path):
    out = tmp_path / 'rows.json'
    result = run_python('tools/benchmarks/gpu_check.py', '--device', 'cpu',
                        '--tiny', '--json', out, '--out', tmp_path / 'gc.md',
                        timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    report = json.loads(out.read_text())
    assert report['seconds'] < 120
    rows = report['rows']
    equal = [r for r in rows if r['section'] == 'equal']
    # 3 models x 2 sizes x forward/backward, all within 1e-4
    assert len(equal) == 12
    assert {r['model'] for r in equal} == {'AFFNet-ET', 'AFFNet-T', 'AFFNet'}
    assert all(0 <= r['value'] <= 1e-4 and r['check'] == 'ok' for r in equal)
    amp = [r for r in rows if r['section'] == 'amp' and
           r['setting'].startswith('autocast')]
    assert len(amp) == 6
    assert all(r['filter_dtypes'] == ['float32'] for r in amp)
    speed = {(r['model'], r['setting']) for r in rows
             if r['section'] == 'speed'}
    for model in ('AFFNet-ET', 'MobileViT-XXS', 'MobileNetV2-1.0'):
        for setting in ('b1 float32 32x32', 'b2 bfloat16 32x32'):
            assert (model, setting) in speed
    assert ('AFFNet / MobileViT-S', 'b2 float32') in speed
    mixer = {r['setting'] for r in rows if r['section'] == 'mixer'}
    assert '32x32 tokens, 16 ch, bfloat16' in mixer
    table = (tmp_path / 'gc.md').read_text()
    assert '| section | model | setting | result | check |' in table


def test_gpu_check_reports_a_failed_check(monkeypatch):
    # gpu_check imports its sibling modules; undone after the test
    monkeypatch.syspath_prepend(str(Path(ROOT, 'tools/benchmarks')))
    gpu_check = import_file(Path(ROOT, 'tools/benchmarks/gpu_check.py'),
                            'gpu_check')
    monkeypatch.setattr(gpu_check, 'OURS', ('AFFNet-ET', ))
    monkeypatch.setattr(gpu_check, 'EQUAL_TOL', 0.0)
    table = gpu_check.Table()
    gpu_check.check_equal(table, torch.device('cpu'),
                          dict(equal=[(1, 32, 40)]))
    assert len(table.failed) == 2
    assert '| FAILED |' in table.markdown()


# ------------------------------------------------------------ run options
def test_pick_device():
    assert pick_device('cpu') == 'cpu'
    with pytest.raises(DeviceError, match='^device gpu0: use cpu, cuda or '
                       'cuda:N$') as err:
        pick_device('gpu0')
    assert (err.value.device, err.value.problem) == \
        ('gpu0', 'use cpu, cuda or cuda:N')
    # the tools word it as their option
    with pytest.raises(ValueError, match='^--device gpu0: use cpu'):
        cli_common.device_option('gpu0')
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match='torch sees no CUDA device'):
            pick_device('cuda:0')


def test_pick_device_counts_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    assert pick_device('cuda:1') == 'cuda:1'
    with pytest.raises(DeviceError, match=r'sees 2 CUDA device\(s\), cuda:0 '
                       'to cuda:1'):
        pick_device('cuda:2')


def test_amp_dtypes(monkeypatch):
    from mmengine import Config
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper', optimizer={})))
    with pytest.raises(RuntimeError, match='--amp needs a CUDA device'):
        cli_common.enable_amp(cfg, 'float16')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda: True)
    cli_common.enable_amp(cfg, 'float16')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert (cfg.optim_wrapper.dtype, cfg.optim_wrapper.loss_scale) == \
        ('float16', 'dynamic')
    cli_common.enable_amp(cfg, 'bfloat16')
    assert cfg.optim_wrapper.dtype == 'bfloat16'
    assert 'loss_scale' not in cfg.optim_wrapper
    with pytest.raises(ValueError, match='--amp-dtype float8'):
        cli_common.enable_amp(cfg, 'float8')
    # AmpOptimWrapper takes the dtype mmengine builds it with
    from mmengine.optim import AmpOptimWrapper
    assert 'dtype' in AmpOptimWrapper.__init__.__code__.co_varnames


def test_amp_dtype_without_amp_is_an_error(toy_ade):
    result = run_tool('train.py', TOY_ADE_CFG, toy_ade, '--amp-dtype',
                      'bfloat16')
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        'error: --amp-dtype is only used with --amp')


def norm_types(cfg) -> set[str]:
    return set(re.findall(r"'type': '(\w*BN\w*)'", str(cfg.model)))


def test_single_process_runs_use_bn_multi_gpu_runs_keep_syncbn(monkeypatch):
    path = 'configs/segmentation/deeplabv3_affnet-et-d8_4xb4-80k_ade20k-' \
        '512x512.py'
    single = cli_common.load_config(path, launcher='none')
    assert 'SyncBN' not in str(single.model)
    assert norm_types(single) == {'BN'}
    # a distributed run on GPUs keeps SyncBN and mmseg's NCCL backend
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    multi = cli_common.load_config(path, launcher='pytorch')
    assert 'SyncBN' in norm_types(multi)
    assert multi.env_cfg.dist_cfg.backend == 'nccl'
    assert multi.get('model_wrapper_cfg') is None


def test_test_py_device_option_errors(toy_ade, trained_seg):
    # a run with --device cpu: tests/test_tools/test_prepared_inference.py
    bad = run_tool('test.py', TOY_ADE_CFG, toy_ade, trained_seg, '--device',
                   'tpu')
    assert bad.returncode == 1
    assert bad.stderr.strip().endswith(
        'error: --device tpu: use cpu, cuda or cuda:N')
