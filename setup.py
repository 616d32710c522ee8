"""Install mmaff: ``pip install -e .`` (or ``mim install -e .``)."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))
# demo/ (inference on one's own images) travels like tools/ when it exists.
MIM_FILES = ['configs', 'tools', 'demo', 'model-index.yml']


def read_version() -> str:
    namespace: dict = {}
    with open(osp.join(ROOT, 'mmaff', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_requirements(*names: str) -> list[str]:
    """Requirement lines of requirements/<name>.txt, following ``-r``."""
    requirements = []
    for name in names:
        with open(osp.join(ROOT, 'requirements', name)) as f:
            for line in f:
                line = line.split('#', 1)[0].strip()
                if line.startswith('-r '):
                    requirements += read_requirements(osp.basename(line[3:]))
                elif line:
                    requirements.append(line)
    return requirements


def add_mim_extension() -> None:
    """Expose configs, tools, demo and model-index.yml (those that exist)
    as ``mmaff/.mim/`` so that ``mim train mmaff ...`` and
    ``mmaff``-relative lookups find them.

    Editable installs (``develop`` and PEP 660 ``editable_wheel``) get
    symlinks into the checkout; wheels and sdists get copies.
    """
    if any(cmd in sys.argv for cmd in ('develop', 'editable_wheel')):
        mode = 'symlink'
    elif any(cmd in sys.argv for cmd in ('sdist', 'bdist_wheel', 'build')):
        mode = 'copy'
    else:
        return
    mim_dir = osp.join(ROOT, 'mmaff', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(ROOT, name)
        dst = osp.join(mim_dir, name)
        if not osp.exists(src):
            continue
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)


add_mim_extension()
setup(
    name='mmaff',
    version=read_version(),
    description='AFFNet (Adaptive Frequency Filters) for OpenMMLab 2.0: '
    'backbone, detection, segmentation and classification',
    long_description=open(osp.join(ROOT, 'README.md')).read(),
    long_description_content_type='text/markdown',
    keywords='computer vision, backbone, frequency filter, openmmlab',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'demo')),
    include_package_data=True,
    python_requires='>=3.10',
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'mim': read_requirements('mminstall.txt'),
        'tests': read_requirements('tests.txt'),
        'optional': read_requirements('optional.txt'),
    },
    license='MIT',
    zip_safe=False,
)
