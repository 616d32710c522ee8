"""The offline kit end to end on the CPU (tools/offline_kit.sh,
tools/kit/): the kit is built for this Python, installed with
``pip --no-index`` into a fresh venv that holds only torch, torchvision,
numpy, opencv and their own run-time dependencies, and its CPU check runs
there. The kit build needs the package registry; the install must not."""
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from helpers import ROOT, import_file, run
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

build_kit = import_file(Path(ROOT, 'tools', 'kit', 'build_kit.py'))

PYTHON = f'{sys.version_info[0]}.{sys.version_info[1]}'
TORCH_PIN = re.search(r'^torch==(\S+)$',
                      Path(ROOT, 'requirements/torch.txt').read_text(),
                      re.M).group(1)
OPENMMLAB = ('mmengine', 'mmdet', 'mmsegmentation', 'mmpretrain', 'mmaff')
# never in the kit: the offline machine has them
BASE = ('torch', 'torchvision', 'numpy', 'opencv-python', 'pillow')
# the fresh venv gets these and what they need, as the offline machine has
VENV_ROOTS = ('torch', 'torchvision', 'numpy', 'opencv-python')


def cpu_mmcv_wheel() -> Path:
    """The mmcv wheel with CPU ops that ``make setup`` built (its keyed
    wheelhouse); the test installs it instead of a 15-minute build."""
    root = Path(os.environ.get('MMAFF_WHEELHOUSE',
                               Path.home() / '.cache' / 'mmaff' / 'wheels'))
    wheels = sorted(root.glob(f'torch-{TORCH_PIN}-cpu/mmcv-2.1.0-*.whl'))
    if not wheels:
        pytest.fail(f'no CPU mmcv wheel under {root}/torch-{TORCH_PIN}-cpu: '
                    'run make setup (tools/install_env.sh) first')
    return wheels[0]


def base_distributions() -> set[str]:
    """VENV_ROOTS and their run-time dependencies as installed here,
    extras followed (torch's ``cuda-toolkit[...]``); pip and setuptools
    stay the new venv's own."""
    names, seen = set(), set()
    todo = [(name, ()) for name in VENV_ROOTS]
    while todo:
        name, extras = todo.pop()
        name = canonicalize_name(name)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        names.add(name)
        for line in importlib.metadata.requires(name) or []:
            req = Requirement(line)
            if req.marker and not any(req.marker.evaluate({'extra': e})
                                      for e in ('', ) + extras):
                continue
            todo.append((req.name, tuple(sorted(req.extras))))
    return names - {'pip', 'setuptools'}


def fresh_venv(folder: Path) -> Path:
    """A new venv whose site-packages links exactly the top-level entries
    (packages, their .libs and dist-info) of ``base_distributions`` from
    this one: torch is usable at once (no 5 GB copy), pip sees those
    distributions as installed, and nothing of the OpenMMLab stack is
    importable. Returns its Python."""
    base_python = getattr(sys, '_base_executable', sys.executable)
    subprocess.run([base_python, '-m', 'venv', str(folder)], check=True)
    site = folder / 'lib' / f'python{PYTHON}' / 'site-packages'
    source = Path(importlib.metadata.distribution('torch').locate_file(''))
    tops = set()
    for name in base_distributions():
        for entry in importlib.metadata.distribution(name).files or []:
            top = Path(entry).parts[0]
            if top not in ('..', '__pycache__'):
                tops.add(top)
    for top in sorted(tops):
        if not (site / top).exists():
            (site / top).symlink_to(source / top)
    return folder / 'bin' / 'python'


def venv_versions(python: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(python), '-c', 'import importlib.metadata as m, json; '
         'print(json.dumps({d.metadata["Name"].lower(): d.version '
         'for d in m.distributions()}))'],
        capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_patch_matches_install_env():
    """The kit's mmcv source is patched exactly as install_env.sh patches
    the one it builds."""
    script = Path(ROOT, 'tools', 'install_env.sh').read_text()
    seds = re.findall(r"-e 's/(-std=c\+\+\d+)/(-std=c\+\+\d+)/g'", script)
    assert seds and tuple(map(tuple, seds)) == build_kit.CXX_PATCH


def test_platform_tags():
    tags = build_kit.platforms('manylinux_2_28_x86_64')
    assert tags[0] == 'manylinux_2_28_x86_64'
    assert 'manylinux2014_x86_64' in tags and 'manylinux_2_17_x86_64' in tags
    assert build_kit.platforms('linux_x86_64') == ['linux_x86_64']


def test_bad_arguments(tmp_path):
    result = run('bash', 'tools/offline_kit.sh', '--python', 'py3')
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith('error:')
    (tmp_path / 'keep.txt').write_text('not a kit')
    result = run('bash', 'tools/offline_kit.sh', '--python', PYTHON,
                 '--out', tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f'error: {tmp_path} exists, is not empty and holds no kit (no '
        '.mmaff-kit): give another --out']
    result = run('bash', 'tools/kit/install_and_check.sh', '--device', 'tpu')
    assert result.returncode == 1
    assert result.stderr.strip().startswith('error: --device tpu')


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kit_installs_and_checks_offline(tmp_path):
    """Build the kit (registry), install it into a fresh venv without any
    index and run the CPU path of install_and_check.sh: gpu_check --device
    cpu --tiny and short train + test runs of the two toy configs. Nothing
    is fetched, nothing is missing, and torch & co are left alone."""
    kit = tmp_path / 'kit'
    result = run('bash', 'tools/offline_kit.sh', '--python', PYTHON, '--out',
                 kit, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    size = sum(p.stat().st_size for p in kit.rglob('*') if p.is_file())
    assert size <= 60 * 2**20, log[-2000:]

    manifest = json.loads((kit / 'manifest.json').read_text())
    names = {canonicalize_name(e['name']) for e in manifest['files']}
    assert set(OPENMMLAB) | {'mmcv', 'pycocotools', 'scipy',
                             'setuptools'} <= names
    assert not names & set(BASE), names & set(BASE)
    assert not [n for n in names if n.startswith(('nvidia', 'cuda', 'triton'))]
    assert manifest['python'] == PYTHON
    for entry in manifest['files']:
        assert len(entry['sha256']) == 64 and entry['bytes'] > 0, entry
    # the mmcv source is the patched one
    with tarfile.open(kit / 'src' / 'mmcv-2.1.0.tar.gz') as archive:
        setup_py = archive.extractfile('mmcv-2.1.0/setup.py').read().decode()
    assert '-std=c++20' in setup_py
    assert not re.search(r'-std=c\+\+1[47]', setup_py)

    python = fresh_venv(tmp_path / 'venv')
    before = venv_versions(python)
    assert not set(OPENMMLAB) & set(before)
    assert 'mmcv' not in before

    results = tmp_path / 'results'
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('PIP_') and k not in ('PYTHONPATH',
                                                      'VIRTUAL_ENV')}
    env.update(PIP_NO_INDEX='1', PATH=f'{python.parent}:{env["PATH"]}')
    proc = subprocess.run(
        ['bash', str(kit / 'install_and_check.sh'), '--python', str(python),
         '--mmcv-wheel', str(cpu_mmcv_wheel()), '--device', 'cpu',
         '--results', str(results)],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]

    summary = json.loads((results / 'summary.json').read_text())
    status = {s['step']: s['status'] for s in summary['steps']}
    assert status == {
        'verify': 'ok', 'preflight': 'ok', 'install': 'ok',
        'mmcv-install': 'ok', 'imports': 'ok', 'check_mmcv_ops': 'skipped',
        'gpu_check': 'ok', 'toy-data': 'ok',
        'train ssdlite float32': 'ok', 'test ssdlite float32': 'ok',
        'train deeplabv3 float32': 'ok', 'test deeplabv3 float32': 'ok'
    }, status
    table = (results / 'summary.md').read_text()
    assert '| step | status | seconds | budget s |' in table
    assert 'coco/bbox_mAP' in table and 'mIoU' in table

    # nothing fetched: pip read the kit's files only
    install_log = (results / 'logs' / 'install.log').read_text()
    assert not re.search(r'Downloading|https?://|Looking in indexes',
                         install_log)
    assert re.findall(r'^Looking in links: (.*)$', install_log, re.M) == [
        str(kit / 'wheels')]
    after = venv_versions(python)
    kit_versions = {canonicalize_name(e['name']): e['version']
                    for e in manifest['files']}
    for name in OPENMMLAB:
        assert after.get(name) == kit_versions[name], name
        wheel = next(e['path'] for e in manifest['files']
                     if canonicalize_name(e['name']) == name)
        assert f'Processing {kit / wheel}' in install_log or \
            f'Processing ./kit/{wheel}' in install_log, (name, wheel)
    assert after['mmcv'] == '2.1.0'
    # torch and the rest of the base are as they were
    for name in VENV_ROOTS:
        assert after[name] == before[name], name
    site = python.parent.parent / 'lib' / f'python{PYTHON}' / 'site-packages'
    assert (site / 'torch').is_symlink()
    assert not (site / 'mmdet').is_symlink()
