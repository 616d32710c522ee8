"""AFFNet resolves as ``mmaff.AFFNet`` everywhere and as ``AFFNet`` under
the mmdet, mmseg and mmpretrain default scopes; the registries and the
plain-name alias table of :mod:`mmaff.registry`."""
import glob
import json
import os.path as osp
import re
import textwrap

import pytest
from helpers import OFFICIAL_PARAMS, ROOT, classifier_config, run_python
from mmengine import Config
from mmengine.registry import DefaultScope


def write_config(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
@pytest.mark.parametrize('type_name', ['AFFNet', 'mmaff.AFFNet'])
def test_backbone_from_config_in_each_scope(tmp_path, scope, type_name):
    import importlib

    from mmaff.models import AFFNet
    path = write_config(
        tmp_path, 'cfg.py', f"""
        default_scope = '{scope}'
        custom_imports = dict(imports=['mmaff'], allow_failed_imports=False)
        backbone = dict(type='{type_name}', arch='t', out_indices=(2, 3, 4))
        """)
    cfg = Config.fromfile(path)
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        backbone = registry.build(cfg.backbone)
    assert type(backbone) is AFFNet
    assert backbone.out_indices == [2, 3, 4]


@pytest.mark.parametrize('arch', ['et', 't', 'base'])
def test_imagenet_classifier_has_official_parameter_count(tmp_path, arch):
    from mmpretrain.registry import MODELS
    path = write_config(tmp_path, 'cls.py',
                        classifier_config(arch, backbone='AFFNet'))
    cfg = Config.fromfile(path)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    count = sum(p.numel() for p in model.parameters())
    assert count == OFFICIAL_PARAMS[arch]


FRESH_PROCESS = """
import json, sys
from mmengine import Config
from mmengine.registry import DefaultScope
import mmdet.registry, mmseg.registry, mmpretrain.registry
registries = {'mmdet': mmdet.registry.MODELS, 'mmseg': mmseg.registry.MODELS,
              'mmpretrain': mmpretrain.registry.MODELS}
results = {}
for scope, registry in registries.items():
    for type_name in ('AFFNet', 'mmaff.AFFNet'):
        with DefaultScope.overwrite_default_scope(scope):
            try:
                model = registry.build(dict(type=type_name, arch='et'))
                results[f'{scope}:{type_name}'] = type(model).__module__
            except KeyError as e:
                results[f'{scope}:{type_name}'] = 'KeyError: ' + str(e)
print(json.dumps(results))
"""


def test_prefixed_name_needs_no_import_plain_name_needs_custom_imports():
    """In a fresh process without ``custom_imports``, ``mmaff.AFFNet`` is
    found through the scope prefix (lazy import of mmaff), while the plain
    name is unknown: the aliases come from importing mmaff."""
    result = run_python('-c', FRESH_PROCESS, timeout=300)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for scope in ('mmdet', 'mmseg', 'mmpretrain'):
        assert found[f'{scope}:mmaff.AFFNet'] == \
            'mmaff.models.backbones.affnet'
    # mmdet was asked first for the plain name: nothing had imported mmaff.
    assert found['mmdet:AFFNet'].startswith('KeyError')
    assert 'not in the mmdet::model registry' in found['mmdet:AFFNet']


def test_every_downstream_alias_resolves_to_the_mmaff_class():
    import importlib

    import mmaff.datasets  # noqa: F401
    import mmaff.models.decode_heads  # noqa: F401
    import mmaff.models.dense_heads  # noqa: F401
    import mmaff.models.heads  # noqa: F401
    import mmaff.visualization  # noqa: F401
    from mmaff import registry
    for (kind, name), packages in registry.DOWNSTREAM_ALIASES.items():
        ours = getattr(registry, kind).module_dict[name]
        assert isinstance(ours, type), (kind, name)
        for package in packages:
            downstream = getattr(
                importlib.import_module(f'{package}.registry'), kind)
            assert downstream.module_dict[name] is ours, (package, name)
    with pytest.raises(KeyError, match='NotListed'):
        registry.register_downstream_aliases(['NotListed'])


TAKEN_NAME = """
import json
import mmdet.registry


class OtherAFFNet:
    pass


mmdet.registry.MODELS.register_module(name='AFFNet', module=OtherAFFNet)
import mmaff
from mmaff.registry import register_downstream_aliases
import mmseg.registry
print(json.dumps(dict(
    again=register_downstream_aliases(['AFFNet']),
    mmdet=mmdet.registry.MODELS.module_dict['AFFNet'].__name__,
    mmseg=mmseg.registry.MODELS.module_dict['AFFNet'] is
    mmaff.models.AFFNet)))
"""


def test_alias_leaves_an_existing_downstream_entry_in_place():
    result = run_python('-c', TAKEN_NAME, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == dict(again=dict(AFFNet=['mmseg', 'mmpretrain']),
                         mmdet='OtherAFFNet',
                         mmseg=True)


def test_registries_keep_their_names_scopes_parents_and_locations():
    import mmengine.registry

    from mmaff import registry
    kinds = dict(MODELS='model', DATASETS='dataset', TRANSFORMS='transform',
                 VISUALIZERS='visualizer', HOOKS='hook')
    for attr, kind in kinds.items():
        ours = getattr(registry, attr)
        assert (ours.name, ours.scope) == (kind, 'mmaff')
        assert ours.parent is getattr(mmengine.registry, attr)
        assert ours._locations == registry.REGISTRY_LOCATIONS[attr][1]
    assert registry.MODELS._locations == [
        'mmaff.models', 'mmaff.models.heads', 'mmaff.models.decode_heads',
        'mmaff.models.dense_heads'
    ]
    assert registry.HOOKS._locations == ['mmaff.engine.hooks']


@pytest.mark.parametrize(
    'path',
    sorted(
        osp.relpath(p, ROOT)
        for p in glob.glob(osp.join(ROOT, 'configs', '*', '*.py'))))
def test_auto_scale_lr_base_is_the_batch_the_lr_is_for(path):
    """``train.py --auto-scale-lr`` scales from ``base_batch_size``: the
    total batch of the name's ``NxB`` (RetinaNet: mmdet's 8x2), or, for a
    toy config, its one process's batch."""
    cfg = Config.fromfile(osp.join(ROOT, path))
    name = osp.basename(path)
    if name.endswith('_toy.py'):
        expected = cfg.train_dataloader.batch_size
    elif name.startswith('retinanet_'):
        expected = 16
    else:
        gpus, per_gpu = re.search(r'_(\d+)xb(\d+)', name).groups()
        expected = int(gpus) * int(per_gpu)
    assert cfg.auto_scale_lr.base_batch_size == expected
