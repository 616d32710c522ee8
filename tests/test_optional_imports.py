"""``import mmaff`` and ``import mmaff.datasets`` work without each
downstream package; what needs the missing one fails with a message naming
it. Each case runs in a subprocess whose import system refuses the package.
"""
import textwrap

import pytest
from helpers import run_python

SCRIPT = textwrap.dedent('''
    import importlib.abc
    import sys

    BLOCKED = sys.argv[1]


    class Block(importlib.abc.MetaPathFinder):

        def find_spec(self, name, path=None, target=None):
            if name == BLOCKED or name.startswith(BLOCKED + '.'):
                raise ModuleNotFoundError(
                    f'No module named {name!r} (blocked)', name=name)


    sys.meta_path.insert(0, Block())

    import torch

    import mmaff
    import mmaff.datasets
    from mmaff.registry import DATASETS, MODELS, TRANSFORMS

    assert BLOCKED not in sys.modules, f'{BLOCKED} got imported'
    backbone = MODELS.build(dict(type='mmaff.AFFNet', arch='et',
                                 out_indices=(4, )))
    print('BACKBONE', tuple(backbone(torch.rand(1, 3, 64, 64))[0].shape))
    TRANSFORMS.build(dict(type='mmaff.CheckSegLabels', num_classes=3))
    print('TRANSFORM ok')

    # name -> the module that holds it, the registry it is built from
    asks = {
        'CheckedCocoDataset': ('mmaff.datasets', DATASETS),
        'AFFNetASPPHead': ('mmaff.models.decode_heads', MODELS),
        'DropoutLinearClsHead': ('mmaff.models.heads', MODELS),
        'SSDHeadWithLossCls': ('mmaff.models.dense_heads', MODELS),
    }
    for name, (module, registry) in asks.items():
        for how, action in (
                ('import', lambda: exec(f'from {module} import {name}')),
                ('build', lambda: registry.build(dict(type=f'mmaff.{name}')))):
            try:
                action()
            except ImportError as error:
                print('MISSING', name, how, error)
            except Exception as error:  # present: fails on missing args
                print('PRESENT', name, how, type(error).__name__)
            else:
                print('PRESENT', name, how, 'ok')
''')
NEEDS = {
    'mmdet': ('CheckedCocoDataset', 'SSDHeadWithLossCls'),
    'mmseg': ('AFFNetASPPHead', ),
    'mmpretrain': ('DropoutLinearClsHead', ),
}


@pytest.mark.parametrize('blocked', sorted(NEEDS))
def test_mmaff_imports_without(blocked, tmp_path):
    script = tmp_path / 'probe.py'
    script.write_text(SCRIPT)
    result = run_python(script, blocked, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert 'BACKBONE (1, 144, 2, 2)' in lines
    assert 'TRANSFORM ok' in lines
    for name in sum(NEEDS.values(), ()):
        for how in ('import', 'build'):
            line = next(x for x in lines
                        if x.startswith(('MISSING', 'PRESENT'))
                        and x.split()[1:3] == [name, how])
            if name in NEEDS[blocked]:
                # names the piece, the missing package and how to install it
                assert line.startswith(f'MISSING {name} {how} '), line
                assert f'{name} needs {blocked}' in line, line
                assert 'pip install' in line, line
            else:
                assert line.startswith(f'PRESENT {name} {how}'), line
