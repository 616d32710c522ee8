"""Build the offline kit: everything mmaff needs on a machine that has
Python, torch, torchvision, numpy and opencv but no package index.

    python tools/kit/build_kit.py --python 3.12 [--out kit] \
        [--wheel-cache DIR] [--platform manylinux_2_28_x86_64] [--max-mib 60]

Run on a connected machine (``tools/offline_kit.sh`` is the usual entry).
The kit folder gets:

- ``wheels/``: the wheels of mmengine, mmdet, mmsegmentation, mmpretrain,
  their dependencies and the build tools mmcv's setup.py needs, for the
  target Python (resolved by pip for that Python and platform, metadata
  only, then downloaded with ``--no-deps`` at the resolved versions), and
  mmaff's own wheel built from this checkout (it carries configs/ and
  tools/ under ``mmaff/.mim``). torch, torchvision, numpy, opencv and
  everything the installed torch / torchvision depend on are left out: the
  offline machine has them, and the kit must never replace them.
- ``src/mmcv-2.1.0.tar.gz``: mmcv's source with ``setup.py`` patched to
  ``-std=c++20`` exactly as ``tools/install_env.sh`` patches it (torch
  2.14's headers require C++20; torch 2.11's accept it).
- ``install_and_check.sh`` and its helpers (``tools/``), ``manifest.json``
  (name, version, sha256, size of every file) and ``SHA256SUMS``.

The kit must stay under ``--max-mib`` (default 60): the script prints its
size and fails with one line if it is larger.
"""
import argparse
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
MMCV_VERSION = '2.1.0'
# What the offline machine brings; the kit never carries (or replaces) them
# nor what the installed torch and torchvision depend on.
BASE = ('torch', 'torchvision', 'numpy', 'opencv-python',
        'opencv-python-headless', 'opencv-contrib-python',
        'opencv-contrib-python-headless')
# Never in the kit whatever asks for them: torch's own CUDA runtime.
BASE_PREFIXES = ('nvidia-', 'cuda-', 'triton')
# The same patch as tools/install_env.sh (test_offline_kit.py checks that
# the two stay equal).
CXX_PATCH = (('-std=c++14', '-std=c++20'), ('-std=c++17', '-std=c++20'))
# Files of the checkout that the checks run from the installed mmaff wheel
# (mmaff/.mim/...): the wheel is refused without them.
NEEDED_IN_WHEEL = (
    'tools/misc/check_mmcv_ops.py', 'tools/misc/mmcv_build_plan.py',
    'tools/benchmarks/gpu_check.py', 'tools/train.py', 'tools/test.py',
    'tools/dataset_converters/make_toy_coco.py',
    'tools/dataset_converters/make_toy_ade20k.py',
    'configs/detection/ssdlite_affnet-et_8xb24-600e_coco_toy.py',
    'configs/segmentation/'
    'deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512_toy.py')
# Copied into the kit next to install_and_check.sh: needed before mmaff is
# installed.
MARK = '.mmaff-kit'
KIT_TOOLS = ('tools/kit/kit_steps.py', 'tools/misc/mmcv_build_plan.py')


class KitError(Exception):
    """A problem that stops the build, said in one line."""


def say(message: str) -> None:
    print(f'[offline_kit] {message}', flush=True)


def pip(python: str, *args: str, quiet: bool = True) -> str:
    """Run ``python -m pip args``; its output, or KitError with the tail."""
    cmd = [python, '-m', 'pip', '--disable-pip-version-check', *args]
    if quiet:
        cmd.append('-q')
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines()
                 if not line.startswith("WARNING: Location 'file:")]
        raise KitError(f'pip {args[0]} failed: ' +
                       ' / '.join(lines[-3:]).strip())
    return result.stdout


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def requirement_lines(*names: str) -> list[str]:
    """Requirement lines of requirements/<name>.txt (comments dropped)."""
    lines = []
    for name in names:
        for line in (ROOT / 'requirements' / name).read_text().splitlines():
            line = line.split('#', 1)[0].strip()
            if line:
                lines.append(line)
    return lines


def base_closure() -> set[str]:
    """BASE and, as far as this Python has them installed, everything torch
    and torchvision depend on (a machine with torch has all of it)."""
    names = {canonicalize_name(n) for n in BASE}
    todo = ['torch', 'torchvision']
    while todo:
        name = todo.pop()
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker and not req.marker.evaluate({'extra': ''}):
                continue
            dep = canonicalize_name(req.name)
            if dep not in names:
                names.add(dep)
                todo.append(dep)
    return names


def excluded(name: str, base: set[str], keep: set[str]) -> bool:
    name = canonicalize_name(name)
    if name in keep:
        return False
    return name in base or name.startswith(BASE_PREFIXES)


# ---------------------------------------------------------------- mmcv
def mmcv_source(python: str, cache: Path, out: Path, work: Path) -> dict:
    """mmcv's sdist, patched to C++20 and repacked into ``out``; returns its
    manifest entry plus its run-time requirements."""
    sdist = cache / f'mmcv-{MMCV_VERSION}.tar.gz'
    if not sdist.exists():
        say(f'downloading mmcv {MMCV_VERSION} source')
        # --no-build-isolation: preparing its metadata runs setup.py, which
        # imports torch; an isolated build would download a torch for that.
        pip(python, 'download', '--no-deps', '--no-binary', ':all:',
            '--no-build-isolation', '-d', str(cache), f'mmcv=={MMCV_VERSION}')
    with tarfile.open(sdist) as archive:
        archive.extractall(work, filter='data')
    src = work / f'mmcv-{MMCV_VERSION}'
    setup_py = src / 'setup.py'
    text = setup_py.read_text()
    count = sum(text.count(old) for old, _ in CXX_PATCH)
    for old, new in CXX_PATCH:
        text = text.replace(old, new)
    if count == 0 or re.search(r'-std=c\+\+1[47]', text):
        raise KitError('the C++20 patch of mmcv setup.py did not apply')
    setup_py.write_text(text)
    say(f'patched mmcv setup.py to -std=c++20 ({count} places; torch 2.14 '
        'headers require C++20)')
    requires = [line.split('#', 1)[0].strip() for line in
                (src / 'requirements' / 'runtime.txt').read_text()
                .splitlines()]
    target = out / 'src' / sdist.name
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, 'w:gz') as archive:
        archive.add(src, arcname=src.name)
    return dict(name='mmcv', version=MMCV_VERSION, role='mmcv source, '
                'setup.py patched to C++20', path=str(target.relative_to(out)),
                requires=[r for r in requires if r])


# ---------------------------------------------------------------- mmaff
def checkout_files() -> list[str]:
    """The checkout's files as git sees them: tracked (as they are now) and
    untracked but not ignored."""
    result = subprocess.run(
        ['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=ROOT,
        capture_output=True, text=True)
    if result.returncode != 0:
        raise KitError(f'git ls-files failed in {ROOT}: '
                       f'{result.stderr.strip()}')
    return [f for f in result.stdout.split('\0')
            if f and (ROOT / f).is_file()]


def mmaff_wheel(python: str, wheels: Path, work: Path) -> Path:
    """mmaff's wheel built from a copy of the checkout (building in place
    would turn an editable install's ``mmaff/.mim`` links into copies)."""
    src = work / 'mmaff-src'
    for name in checkout_files():
        dst = src / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dst)
    say('building the mmaff wheel from the checkout')
    pip(python, 'wheel', '--no-deps', '--no-build-isolation', '-w',
        str(wheels), str(src))
    built = sorted(wheels.glob('mmaff-*.whl'))
    if len(built) != 1:
        raise KitError(f'expected one mmaff wheel, found {len(built)}')
    with zipfile.ZipFile(built[0]) as archive:
        names = set(archive.namelist())
    missing = [f for f in NEEDED_IN_WHEEL if f'mmaff/.mim/{f}' not in names]
    if missing:
        raise KitError(f'the mmaff wheel lacks {", ".join(missing)}')
    return built[0]


def git_revision() -> str:
    head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain'], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return head + ('+uncommitted changes' if dirty else '') if head else ''


# ---------------------------------------------------------------- wheels
def platforms(platform: str) -> list[str]:
    """``platform`` and the older manylinux tags it runs (pip does not
    widen a ``--platform`` by itself): manylinux_2_28 also takes
    manylinux_2_17 (= manylinux2014) wheels."""
    match = re.fullmatch(r'manylinux_2_(\d+)_(\w+)', platform)
    if not match:
        return [platform]
    glibc, arch = int(match.group(1)), match.group(2)
    tags = [f'manylinux_2_{v}_{arch}' for v in range(glibc, 4, -1)]
    legacy = {17: 'manylinux2014', 12: 'manylinux2010', 5: 'manylinux1'}
    return tags + [f'{name}_{arch}' for v, name in legacy.items()
                   if v <= glibc]


def target_options(python_version: str, platform: str) -> list[str]:
    tag = python_version.replace('.', '')
    options = ['--only-binary=:all:', '--python-version', python_version,
               '--implementation', 'cp', '--abi', f'cp{tag}', '--abi',
               'abi3', '--abi', 'none']
    for name in platforms(platform) + ['any']:
        options += ['--platform', name]
    return options


def resolve(python: str, roots: list[str], options: list[str],
            work: Path) -> list[dict]:
    """pip's resolution of ``roots`` for the target (metadata only): one
    dict per distribution with name, version, file name and sha256."""
    report = work / 'report.json'
    pip(python, 'install', '--dry-run', '--ignore-installed', '--target',
        str(work / 'unused'), '--report', str(report), *options, *roots)
    items = []
    for item in json.loads(report.read_text())['install']:
        url = item['download_info']['url']
        hashes = item['download_info'].get('archive_info', {}).get(
            'hashes', {})
        items.append(dict(
            name=item['metadata']['name'],
            version=item['metadata']['version'],
            file=urllib.parse.unquote(url.rsplit('/', 1)[-1]),
            sha256=hashes.get('sha256')))
    return items


def download(python: str, items: list[dict], options: list[str],
             cache: Path, wheels: Path) -> None:
    """The wheels of ``items`` (exact versions, no dependencies) through
    ``cache`` into ``wheels``, checked against the resolved sha256."""
    missing = [i for i in items if not (cache / i['file']).exists()]
    if missing:
        say(f'downloading {len(missing)} wheels ({len(items) - len(missing)} '
            f'already in {cache})')
        pip(python, 'download', '--no-deps', *options, '-d', str(cache),
            *(f'{i["name"]}=={i["version"]}' for i in missing))
    for item in items:
        path = cache / item['file']
        if not path.exists():
            raise KitError(f'pip did not download {item["file"]}')
        if item['sha256'] and sha256(path) != item['sha256']:
            raise KitError(f'{path} does not match its sha256 on the index')
        shutil.copy2(path, wheels / item['file'])


def repack_lzma(wheel: Path, cache: Path) -> Path:
    """``wheel`` with its members compressed by LZMA instead of deflate
    (same files, same RECORD; pip installs it like the original), kept in
    ``cache/lzma`` so that it is made once."""
    cached = cache / 'lzma' / wheel.name
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix('.partial')
        with zipfile.ZipFile(wheel) as src, \
                zipfile.ZipFile(partial, 'w', zipfile.ZIP_LZMA) as dst:
            for info in src.infolist():
                dst.writestr(info, src.read(info),
                             compress_type=zipfile.ZIP_LZMA)
        partial.rename(cached)
    return cached


def fit_size(items: list[dict], wheels: Path, cache: Path, out: Path,
             limit: int) -> None:
    """Repack the largest wheels with LZMA, largest first, until the kit
    fits ``limit`` bytes (scipy alone is over half of it)."""
    for item in sorted(items, key=lambda i: -(wheels / i['file']).stat()
                       .st_size):
        size = folder_bytes(out)
        if size <= limit:
            return
        path = wheels / item['file']
        before = path.stat().st_size
        shutil.copy2(repack_lzma(path, cache), path)
        item['repacked'] = True
        say(f'kit at {size / 2**20:.1f} MiB: {item["file"]} repacked with '
            f'LZMA, {before / 2**20:.1f} -> {path.stat().st_size / 2**20:.1f}'
            ' MiB')


# ---------------------------------------------------------------- kit
def write_manifest(out: Path, meta: dict, entries: list[dict]) -> None:
    for entry in entries:
        path = out / entry['path']
        entry['sha256'] = sha256(path)
        entry['bytes'] = path.stat().st_size
    (out / 'manifest.json').write_text(
        json.dumps(dict(meta, files=entries), indent=1) + '\n')
    (out / 'SHA256SUMS').write_text(''.join(
        f'{e["sha256"]}  {e["path"]}\n' for e in entries))


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob('*') if p.is_file())


def prepare_out(out: Path) -> None:
    """An empty kit folder; an earlier kit there is replaced, anything else
    is refused."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARK).exists():
            raise KitError(f'{out} exists, is not empty and holds no kit '
                           f'(no {MARK}): give another --out')
        shutil.rmtree(out)
    (out / 'wheels').mkdir(parents=True)
    # marks the folder as a kit, also a half-built one, so that the next
    # build may replace it
    (out / MARK).write_text('mmaff offline kit\n')


def build(args: argparse.Namespace) -> int:
    start = time.time()
    python = sys.executable
    out, cache = args.out.resolve(), args.wheel_cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    prepare_out(out)
    wheels = out / 'wheels'
    options = target_options(args.python, args.platform)
    say(f'kit for CPython {args.python} on {args.platform} in {out}')
    entries = []
    with tempfile.TemporaryDirectory(prefix='mmaff-kit-') as tmp:
        work = Path(tmp)
        mmcv = mmcv_source(python, cache, out, work)
        build_tools = requirement_lines('build.txt')
        roots = list(dict.fromkeys(
            requirement_lines('mminstall.txt', 'runtime.txt') +
            mmcv.pop('requires') + build_tools + ['pycocotools']))
        base = base_closure()
        keep = {canonicalize_name(Requirement(r).name) for r in build_tools}
        say('resolving ' + ', '.join(sorted(
            {Requirement(r).name for r in roots})) + f' for CPython '
            f'{args.python}')
        items = resolve(python, roots, options, work)
        left_out = sorted(i['name'] for i in items
                          if excluded(i['name'], base, keep))
        items = [i for i in items if not excluded(i['name'], base, keep)]
        say(f'left out (the offline machine has them with torch): '
            f'{", ".join(left_out) or "nothing"}')
        download(python, items, options, cache, wheels)
        mmaff = mmaff_wheel(python, wheels, work)
        # the scripts and manifest add a few kB
        fit_size(items, wheels, cache, out, int(args.max_mib * 2**20) - 2**17)
        for i in items:
            entry = dict(name=i['name'], version=i['version'], role='wheel',
                         path=f'wheels/{i["file"]}')
            if i.get('repacked'):
                entry.update(role='wheel, repacked with LZMA',
                             index_sha256=i['sha256'])
            entries.append(entry)
    entries.append(mmcv)
    entries.append(dict(name='mmaff', version=mmaff.name.split('-')[1],
                        role='mmaff wheel (configs and tools in mmaff/.mim)',
                        path=f'wheels/{mmaff.name}'))
    tools = out / 'tools'
    tools.mkdir()
    for name in KIT_TOOLS:
        shutil.copy2(ROOT / name, tools / Path(name).name)
        entries.append(dict(name=Path(name).name, version='', role='script',
                            path=f'tools/{Path(name).name}'))
    script = out / 'install_and_check.sh'
    shutil.copy2(ROOT / 'tools' / 'kit' / 'install_and_check.sh', script)
    script.chmod(0o755)
    entries.append(dict(name=script.name, version='', role='script',
                        path=script.name))
    entries.sort(key=lambda e: (not e['role'].startswith('wheel'), e['path']))
    meta = dict(
        python=args.python, platform=args.platform,
        mmcv=MMCV_VERSION, built=time.strftime('%Y-%m-%d %H:%M:%S'),
        checkout=git_revision(),
        roots=[r for r in roots if canonicalize_name(Requirement(r).name)
               not in base or canonicalize_name(Requirement(r).name) in keep],
        left_out=left_out)
    write_manifest(out, meta, entries)
    size = folder_bytes(out)
    for entry in entries:
        say(f'  {entry["bytes"] / 2**20:7.2f} MiB  {entry["name"]} '
            f'{entry["version"]}  ({entry["role"]})')
    say(f'kit: {len(entries)} files, {size / 2**20:.1f} MiB in {out} '
        f'({time.time() - start:.0f} s)')
    if size > args.max_mib * 2**20:
        raise KitError(f'the kit is {size / 2**20:.1f} MiB, over the '
                       f'{args.max_mib} MiB limit')
    say(f'on the offline machine: bash {out.name}/install_and_check.sh')
    return 0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--python', required=True,
                        help='the offline machine\'s Python, e.g. 3.12')
    parser.add_argument('--out', type=Path, default=ROOT / 'kit',
                        help='kit folder (default: kit/ in the checkout)')
    parser.add_argument(
        '--wheel-cache', type=Path,
        default=Path.home() / '.cache' / 'mmaff' / 'kit-downloads',
        help='downloads are kept here and not fetched again')
    parser.add_argument('--platform', default='manylinux_2_28_x86_64',
                        help='wheel platform tag of the offline machine '
                        '(default: manylinux_2_28_x86_64, as torch needs)')
    parser.add_argument('--max-mib', type=float, default=60,
                        help='size limit of the kit (default: 60)')
    args = parser.parse_args(argv)
    if not re.fullmatch(r'3\.\d{1,2}', args.python):
        parser.exit(2, f'error: --python {args.python!r}: give the offline '
                    'machine\'s CPython version as 3.N, e.g. 3.12\n')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return build(args)
    except (KitError, OSError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    os.environ.setdefault('PIP_DISABLE_PIP_VERSION_CHECK', '1')
    sys.exit(main())
