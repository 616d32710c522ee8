"""Decides how ``tools/install_env.sh`` builds mmcv's compiled ops.

``plan`` prints shell assignments for the install script (stdout) and says
every decision in words (stderr): CPU or CUDA ops and why, the CUDA arch
list, the compiler packages that match torch's CUDA, where ``CUDA_HOME``
points, the wheelhouse and ``MAX_JOBS``. ``wheel-kind WHEEL`` prints
``cpu`` or ``cuda`` for a built mmcv wheel, so that a wheel of one kind is
never installed for the other.

It runs with the venv's Python once torch is installed there; without torch
(a dry run before the first set-up) it says what it cannot know yet.
"""
import argparse
import importlib.metadata
import os
import re
import shlex
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

TRUE = ('1', 'on', 'yes', 'true', 'y')
FALSE = ('0', 'off', 'no', 'false', 'n')
# Extras of the cuda-toolkit meta package that make up a compiler: nvcc and
# ptxas, the CUDA C++ headers nvcc includes (cccl), its runtime headers (crt).
COMPILER_EXTRAS = 'nvcc,cccl,crt'
# A CUDA mmcv extension links against these (torch's CUDAExtension); a CPU
# build does not.
CUDA_LIBRARY_MARK = b'libc10_cuda.so'


def say(message: str) -> None:
    print(f'[install_env] {message}', file=sys.stderr)


class PlanError(Exception):
    """A decision that cannot be made from what the user asked for."""


def torch_facts() -> dict | None:
    """Version, CUDA version and visible GPUs of the installed torch."""
    try:
        import torch
    except ImportError:
        return None
    gpus = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(index)
            gpus.append((torch.cuda.get_device_name(index),
                         f'{major}.{minor}'))
    return dict(
        version=torch.__version__.split('+')[0],
        cuda=torch.version.cuda,
        gpus=gpus)


def nvidia_smi_gpus() -> list[tuple[str, str]]:
    """GPUs the driver reports, for the dry run before torch is installed."""
    try:
        out = subprocess.run(
            ['nvidia-smi', '--query-gpu=name,compute_cap',
             '--format=csv,noheader'],
            capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.splitlines():
        name, _, cap = line.rpartition(',')
        if name.strip() and cap.strip():
            gpus.append((name.strip(), cap.strip()))
    return gpus


def nvcc_release(cuda_home: Path) -> str | None:
    """``X.Y`` of ``cuda_home/bin/nvcc``, or None when it does not run."""
    nvcc = cuda_home / 'bin' / 'nvcc'
    try:
        out = subprocess.run([str(nvcc), '--version'], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'release (\d+\.\d+)', out)
    return match.group(1) if match else None


def compiler_packages() -> list[str]:
    """The registry packages that give the nvcc matching torch's CUDA.

    torch depends on an exact ``cuda-toolkit`` release (its runtime
    libraries); the compiler is the same release's ``nvcc``/``cccl``/``crt``
    extras. ``nvidia-nvvm`` is pinned to the release nvcc asks for: left
    free, pip takes a newer nvvm whose PTX the older ptxas rejects
    ("Unsupported .version 9.5; current version is '9.0'").
    """
    toolkit = importlib.metadata.version('cuda-toolkit')
    nvvm = None
    for requirement in importlib.metadata.requires('cuda-toolkit') or []:
        match = re.match(r'nvidia-nvvm\s*==\s*([\d.]+?)(\.\*)?\s*;(.*)$',
                         requirement)
        if match and "extra == 'nvcc'" in match.group(3).replace('"', "'"):
            nvvm = match.group(1)
    if toolkit.count('.') > 2 and toolkit.endswith('.0'):
        toolkit = toolkit[:-2]
    packages = [f'cuda-toolkit[{COMPILER_EXTRAS}]=={toolkit}']
    if nvvm:
        packages.append(f'nvidia-nvvm=={nvvm}')
    return packages


def normalise_arch_list(arch_list: str) -> list[str]:
    archs = [a for a in re.split(r'[;\s,]+', arch_list.strip()) if a]
    for arch in archs:
        if not re.fullmatch(r'\d+\.\d+[a-z]?(\+PTX)?', arch):
            raise PlanError(
                f'TORCH_CUDA_ARCH_LIST entry {arch!r} is not a compute '
                'capability such as 9.0, 8.6 or 9.0+PTX')
    return archs


def arch_key(archs: list[str]) -> str:
    return '-'.join(
        'sm' + a.replace('+PTX', '').replace('.', '') +
        ('ptx' if a.endswith('+PTX') else '') for a in archs)


def plan(torch_pin: str, wheelhouse_root: Path, env: dict) -> dict:
    """Every decision of the mmcv build, as shell variables."""
    facts = torch_facts()
    out = dict(TORCH_VERSION=torch_pin)
    force = env.get('FORCE_CUDA', '').strip().lower()
    if force and force not in TRUE + FALSE:
        raise PlanError(f'FORCE_CUDA={env["FORCE_CUDA"]!r}: use 1 or 0')

    if facts is None:
        say(f'torch is not installed yet: a real run installs torch '
            f'{torch_pin} first and decides from it; until then the GPUs '
            'come from nvidia-smi and the CUDA version is unknown')
        gpus, torch_cuda = nvidia_smi_gpus(), None
    else:
        if facts['version'] != torch_pin:
            say(f'note: the venv has torch {facts["version"]}; the set-up '
                f'installs the pinned {torch_pin}')
        gpus, torch_cuda = facts['gpus'], facts['cuda']
        say(f'torch {facts["version"]}: ' +
            (f'CUDA {torch_cuda} build' if torch_cuda else 'CPU-only build'))
    for name, cap in gpus:
        say(f'visible GPU: {name} (compute capability {cap})')

    if force in FALSE:
        build, why = 'cpu', 'FORCE_CUDA=0 asks for CPU ops only'
    elif force in TRUE:
        build, why = 'cuda', 'FORCE_CUDA=1 asks for CUDA ops'
    elif gpus:
        build, why = 'cuda', 'torch sees a GPU'
    else:
        build, why = 'cpu', 'no GPU visible and FORCE_CUDA is not set'
    if build == 'cuda' and facts is not None and not torch_cuda:
        raise PlanError(
            f'CUDA ops asked for ({why}) but torch {facts["version"]} is a '
            'CPU-only build: install a CUDA build of torch or unset '
            'FORCE_CUDA')
    say(f'mmcv ops: {build.upper()} ({why})')
    out['MMCV_BUILD'] = build

    if build == 'cpu':
        out['WHEEL_KEY'] = f'torch-{torch_pin}-cpu'
    else:
        if env.get('TORCH_CUDA_ARCH_LIST', '').strip():
            archs = normalise_arch_list(env['TORCH_CUDA_ARCH_LIST'])
            say(f'CUDA arch list: {";".join(archs)} (from '
                'TORCH_CUDA_ARCH_LIST)')
        elif gpus:
            archs = sorted({cap for _, cap in gpus},
                           key=lambda c: tuple(map(int, c.split('.'))))
            say(f'CUDA arch list: {";".join(archs)} (from the visible GPUs; '
                'set TORCH_CUDA_ARCH_LIST to build for others)')
        else:
            raise PlanError(
                'FORCE_CUDA=1 without a visible GPU needs '
                'TORCH_CUDA_ARCH_LIST (e.g. 9.0 for H100/H200, 8.0 for A100, '
                '8.6 for RTX 30xx); building for every arch would take hours')
        out['TORCH_CUDA_ARCH_LIST'] = ';'.join(archs)
        cuda_tag = ('cu' + torch_cuda.replace('.', '')) if torch_cuda \
            else 'cu-unknown'
        out['WHEEL_KEY'] = f'torch-{torch_pin}-{cuda_tag}-{arch_key(archs)}'
        out.update(cuda_compiler(torch_cuda, env))
    out['WHEELHOUSE'] = str(wheelhouse_root / out['WHEEL_KEY'])
    say(f'wheelhouse: {out["WHEELHOUSE"]}')
    out['MAX_JOBS'] = env.get('MAX_JOBS') or str(os.cpu_count() or 1)
    say(f'MAX_JOBS={out["MAX_JOBS"]} parallel compile jobs')
    return out


def cuda_compiler(torch_cuda: str | None, env: dict) -> dict:
    """Where nvcc comes from: a user's CUDA_HOME of torch's CUDA release,
    else the registry's compiler packages inside the venv."""
    site = Path(sysconfig.get_paths()['purelib'])
    major = torch_cuda.split('.')[0] if torch_cuda else None
    venv_home = site / 'nvidia' / f'cu{major}' if major else None
    out = dict(USE_SYSTEM_CUDA='0')
    user_home = env.get('CUDA_HOME', '').strip()
    if user_home:
        release = nvcc_release(Path(user_home))
        if release is not None and release == torch_cuda:
            say(f'CUDA_HOME={user_home}: nvcc {release} matches torch\'s CUDA '
                f'{torch_cuda}; building with it')
            out.update(USE_SYSTEM_CUDA='1', CUDA_HOME=user_home,
                       CUDA_PACKAGES='')
            return out
        found = f'nvcc {release}' if release else 'no working nvcc'
        say(f'ignoring CUDA_HOME={user_home}: {found}, torch needs CUDA '
            f'{torch_cuda or "(unknown until torch is installed)"}')
    for directory in env.get('PATH', '').split(os.pathsep):
        path_nvcc = Path(directory) / 'nvcc'
        if directory and path_nvcc.exists():
            release = nvcc_release(path_nvcc.parent.parent)
            say(f'not using {path_nvcc} on PATH (nvcc {release}): the build '
                'uses the compiler installed into the venv, so it does not '
                'depend on what the machine has')
            break
    if torch_cuda is None:
        say('compiler packages: cuda-toolkit[nvcc,cccl,crt] of torch\'s CUDA '
            'release (known once torch is installed)')
        out.update(CUDA_PACKAGES='', CUDA_HOME='')
        return out
    packages = compiler_packages()
    say(f'compiler packages (into the venv): {" ".join(packages)}')
    say(f'CUDA_HOME={venv_home}')
    out.update(CUDA_PACKAGES=' '.join(packages), CUDA_HOME=str(venv_home))
    return out


def wheel_kind(wheel: Path) -> str:
    """``cuda`` if the wheel's mmcv extension links torch's CUDA library."""
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist()
                 if re.fullmatch(r'mmcv/_ext[^/]*\.so', n)]
        if not names:
            raise PlanError(f'{wheel} has no compiled mmcv/_ext*.so: it is '
                            'not a build with ops')
        return 'cuda' if CUDA_LIBRARY_MARK in archive.read(names[0]) \
            else 'cpu'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p_plan = sub.add_parser('plan', help='print the build decisions')
    p_plan.add_argument('--torch', required=True, help='pinned torch version')
    p_plan.add_argument('--wheelhouse-root', required=True, type=Path)
    p_kind = sub.add_parser('wheel-kind', help='cpu or cuda')
    p_kind.add_argument('wheel', type=Path)
    args = parser.parse_args()
    try:
        if args.command == 'wheel-kind':
            print(wheel_kind(args.wheel))
            return 0
        decisions = plan(args.torch, args.wheelhouse_root, dict(os.environ))
    except (PlanError, zipfile.BadZipFile, OSError) as error:
        print(f'[install_env] error: {error}', file=sys.stderr)
        return 2
    for key, value in decisions.items():
        print(f'{key}={shlex.quote(value)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
