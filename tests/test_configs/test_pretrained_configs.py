"""Every shipped config starts from ImageNet weights the same way:
``--cfg-options model.backbone.init_cfg.checkpoint=FILE_OR_URL``, each
names its own variant's weights, and none can load another variant's."""
import glob
import os.path as osp

import pytest
import torch
from helpers import ROOT, build_model, run_tool, success_log
from mmengine import Config
from mmengine.config import DictAction
from official_reference import official_state_dict

from mmaff.checkpoint import (
    ARCH_NAMES,
    DEFAULT_WEIGHTS,
    CheckpointMismatchError,
    convert_official_state_dict,
)
from mmaff.models import AFFNet
from mmaff.registry import MODELS

SHIPPED = sorted(
    osp.relpath(p, ROOT)
    for task in ('classification', 'detection', 'segmentation')
    for p in glob.glob(osp.join(ROOT, 'configs', task, '*.py')))
OPTION = 'model.backbone.init_cfg.checkpoint'
ARCHS = ('et', 't', 'base')


def config_arch(cfg: Config) -> str:
    arch = cfg.model.backbone.arch
    return AFFNet.arch_aliases.get(arch, arch)


@pytest.fixture(scope='module')
def official_files(tmp_path_factory) -> dict:
    """An official-layout ImageNet file of each variant."""
    folder = tmp_path_factory.mktemp('official')
    files = {}
    for arch in ARCHS:
        files[arch] = str(folder / f'{arch}_checkpoint_ema.pt')
        torch.save(official_state_dict(arch), files[arch])
    return files


def test_every_task_is_covered():
    tasks = {path.split('/')[1] for path in SHIPPED}
    assert tasks == {'classification', 'detection', 'segmentation'}
    assert len(SHIPPED) >= 20


@pytest.mark.parametrize('path', SHIPPED)
def test_each_config_names_its_own_variants_weights(path):
    cfg = Config.fromfile(osp.join(ROOT, path))
    init = cfg.model.backbone.init_cfg
    assert init.type == 'Pretrained' and init.prefix == 'backbone.'
    if path.startswith('configs/classification') or path.endswith('_toy.py'):
        # the paper's ImageNet models and the toy runs start from scratch
        assert init.checkpoint is None
    else:
        assert init.checkpoint == DEFAULT_WEIGHTS[config_arch(cfg)]


@pytest.mark.parametrize('path', SHIPPED)
def test_cfg_option_loads_only_the_configs_variant(path, official_files):
    """What ``tools/train.py CONFIG --cfg-options
    model.backbone.init_cfg.checkpoint=FILE`` builds, for a file of each
    variant: the config's own loads, the others stop naming both archs."""
    cfg = Config.fromfile(osp.join(ROOT, path))
    arch = config_arch(cfg)
    for file_arch, file in official_files.items():
        cfg.merge_from_dict({OPTION: file})
        backbone = MODELS.build(cfg.model.backbone)
        if file_arch == arch:
            backbone.init_weights()
            expected = convert_official_state_dict(
                official_state_dict(arch))
            for key, value in backbone.state_dict().items():
                assert torch.equal(value, expected[f'backbone.{key}']), key
        else:
            with pytest.raises(CheckpointMismatchError,
                               match=f'holds {ARCH_NAMES[file_arch]} weights '
                               f'but the backbone is {ARCH_NAMES[arch]} '):
                backbone.init_weights()


def test_the_option_parses_a_path_and_none():
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    for value, expected in (('w.pt', 'w.pt'), ('None', None)):
        args = parser.parse_args(['--cfg-options', f'{OPTION}={value}'])
        cfg = Config.fromfile(
            osp.join(ROOT, 'configs/detection/'
                     'ssdlite_affnet-t_8xb24-600e_coco.py'))
        cfg.merge_from_dict(args.cfg_options)
        assert cfg.model.backbone.init_cfg.checkpoint == expected
        assert cfg.model.backbone.init_cfg.type == 'Pretrained'


@pytest.mark.parametrize('path', [
    'configs/detection/ssdlite_affnet-et_8xb24-600e_coco.py',
    'configs/detection/retinanet_affnet-t_fpn_1x_coco.py',
    'configs/segmentation/deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512.py',
])
def test_fine_tuning_knobs_in_the_comments_work(path):
    """The frozen_stages / norm_eval / backbone lr_mult settings the det
    and seg configs show in their comments."""
    from mmengine.optim import build_optim_wrapper
    # the -t and base configs point to their -et config's comments
    text = open(osp.join(ROOT, path.replace('affnet-t', 'affnet-et'))).read()
    for knob in ('frozen_stages', 'norm_eval', "custom_keys={'backbone': "
                 'dict(lr_mult=0.1)}'):
        assert knob in text, knob
    cfg = Config.fromfile(osp.join(ROOT, path))
    cfg.merge_from_dict({
        'model.backbone.frozen_stages': 1,
        'model.backbone.norm_eval': True,
        OPTION: None,
        'optim_wrapper.paramwise_cfg': {
            'custom_keys': {
                'backbone': {
                    'lr_mult': 0.1
                }
            }
        },
    })
    model = build_model(cfg)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    assert not any(p.requires_grad for p in model.backbone.stem.parameters())
    assert not any(p.requires_grad
                   for p in model.backbone.layers[0].parameters())
    assert all(p.requires_grad for p in model.backbone.layers[1].parameters())
    assert not model.backbone.layers[2][0].expand_conv.bn.training
    base_lr = cfg.optim_wrapper.optimizer.lr
    backbone_params = {id(p) for p in model.backbone.parameters()}
    lrs = {(id(p) in backbone_params, round(group['lr'] / base_lr, 6))
           for group in optim.optimizer.param_groups
           for p in group['params']}
    assert lrs == {(True, 0.1), (False, 1.0)}


# ---------------------------------------------------------------------------
# Through tools/train.py


TOY_SSD = 'configs/detection/ssdlite_affnet-et_8xb24-600e_coco_toy.py'


def test_train_from_an_official_file(tmp_path, toy_coco, official_files):
    log = success_log(
        run_tool(
            'train.py', TOY_SSD, toy_coco, '--work-dir', tmp_path, **{
                OPTION: official_files['et'],
                'train_cfg.max_epochs': 1,
                'train_cfg.val_interval': 1,
            }))
    # 414 tensors less the expansion conv's 6, a module SSDLite does not use
    assert ('Loaded 408 AFFNet-ET backbone tensors from '
            f'{official_files["et"]} (official layout, converted)') in log


def test_train_with_another_variants_file_is_one_error_line(
        tmp_path, toy_coco, official_files):
    result = run_tool('train.py', TOY_SSD, toy_coco, '--work-dir', tmp_path,
                      **{OPTION: official_files['t']})
    assert result.returncode != 0
    errors = [
        line for line in result.stderr.splitlines()
        if line.startswith('error:')
    ]
    assert errors == [
        f'error: checkpoint {official_files["t"]}: holds AFFNet-T weights '
        "but the backbone is AFFNet-ET (arch='et'): use AFFNet-ET's weights, "
        "or set model.backbone.arch='t'"
    ], result.stderr[-2000:]


@pytest.mark.parametrize('path', [
    'configs/segmentation/deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512_toy.py',
    'configs/detection/ssdlite_affnet-et_8xb24-600e_coco_toy.py',
])
def test_fine_tuning_from_a_classifier_loads_only_the_backbone(
        path, trained_cls):
    """The pretrain -> fine-tune path (tools/benchmarks/pretrain_finetune.py):
    after init_weights the backbone holds the classifier checkpoint's
    weights and everything else is what the same seed gives without it."""
    def built(checkpoint) -> torch.nn.Module:
        cfg = Config.fromfile(osp.join(ROOT, path))
        cfg.merge_from_dict({OPTION: checkpoint})
        torch.manual_seed(0)
        model = build_model(cfg)
        model.init_weights()
        return model

    scratch, tuned = built(None), built(trained_cls)
    saved = torch.load(trained_cls, weights_only=False)['state_dict']
    backbone = tuned.backbone.state_dict()
    for key, value in backbone.items():
        assert torch.equal(value, saved[f'backbone.{key}']), key
    assert any(not torch.equal(value, scratch.backbone.state_dict()[key])
               for key, value in backbone.items())
    rest = {k: v for k, v in tuned.state_dict().items()
            if not k.startswith('backbone.')}
    assert len(rest) > 10
    for key, value in scratch.state_dict().items():
        if not key.startswith('backbone.'):
            assert torch.equal(rest[key], value), key


def test_pretrain_finetune_benchmark_reads_the_last_validation(tmp_path):
    from helpers import import_file
    bench = import_file(f'{ROOT}/tools/benchmarks/pretrain_finetune.py')
    run = tmp_path / 'seg' / '20261205_000000' / 'vis_data'
    run.mkdir(parents=True)
    (run / 'scalars.json').write_text(
        '{"loss": 1.0, "step": 1}\n{"mIoU": 12.5, "step": 100}\n'
        '{"loss": 0.5, "step": 150}\n{"mIoU": 30.25, "step": 200}\n')
    assert bench.last_metric(str(tmp_path / 'seg'), 'mIoU') == 30.25
    with pytest.raises(SystemExit, match="no 'coco/bbox_mAP' in the logs"):
        bench.last_metric(str(tmp_path / 'seg'), 'coco/bbox_mAP')
    options = bench.data_options('det', '/data/coco/')
    assert options['train_dataloader.dataset.dataset.data_root'] == \
        '/data/coco/'
    assert options['val_evaluator.ann_file'] == \
        '/data/coco/annotations/instances_val.json'
