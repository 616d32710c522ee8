"""ImageNet classification configs (official recipe), the dropout head, the
toy ImageNet set, the shared tools end to end, and the model index."""
import os
import os.path as osp
import re
import textwrap

import pytest
import torch
import yaml
from helpers import (
    EXP_CHANNELS,
    OFFICIAL_PARAMS,
    ROOT,
    build_model,
    import_file,
    load_config,
    make_toy,
    run_python,
    run_tool,
    success_log,
    train,
)
from mmengine import Config
from mmengine.registry import DefaultScope

CLS_DIR = osp.join(ROOT, 'configs', 'classification')
IN1K_CONFIGS = {
    'et': 'affnet-et_8xb128_in1k.py',
    't': 'affnet-t_8xb128_in1k.py',
    'base': 'affnet_8xb128_in1k.py',
}
PAPER_TOP1 = {'et': 73.0, 't': 77.0, 'base': 79.8}
TOY_CONFIG = 'configs/classification/affnet-et_8xb128_in1k_toy.py'


@pytest.fixture(scope='module')
def et_cfg() -> Config:
    return load_config('classification', IN1K_CONFIGS['et'])


@pytest.fixture(scope='module')
def et_model(et_cfg):
    return build_model(et_cfg)


# ---------------------------------------------------------------------------
# Configs and model


@pytest.mark.parametrize('arch', ['et', 't', 'base'])
def test_config_builds_with_official_parameter_count(arch):
    from mmaff.models import AFFNet
    from mmaff.models.heads import DropoutLinearClsHead
    cfg = load_config('classification', IN1K_CONFIGS[arch])
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.model.backbone.type == 'mmaff.AFFNet'
    assert cfg.model.backbone.arch == arch
    model = build_model(cfg)
    assert type(model.backbone) is AFFNet
    assert type(model.head) is DropoutLinearClsHead
    assert model.head.fc.in_features == EXP_CHANNELS[arch]
    assert model.head.fc.out_features == 1000
    assert sum(p.numel() for p in model.parameters()) == \
        OFFICIAL_PARAMS[arch]


def test_config_follows_the_official_recipe(et_cfg):
    cfg = et_cfg
    head = cfg.model.head
    assert head.type == 'mmaff.DropoutLinearClsHead'
    assert head.dropout_rate == 0.1
    assert head.loss == dict(type='LabelSmoothLoss', label_smooth_val=0.1)
    assert cfg.model.neck.type == 'GlobalAveragePooling'
    pre = cfg.data_preprocessor
    assert (pre.mean, pre.std, pre.to_rgb) == ([0.] * 3, [255.] * 3, True)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, tuple(opt.betas), opt.weight_decay) == \
        ('AdamW', 0.009, (0.9, 0.999), 0.008)
    assert cfg.optim_wrapper.get('type', 'OptimWrapper') == 'OptimWrapper'
    assert cfg.train_cfg.max_epochs == 300
    assert cfg.train_dataloader.batch_size == 128
    assert cfg.auto_scale_lr.base_batch_size == 8 * 128
    (ema, ) = cfg.custom_hooks
    assert (ema.type, ema.momentum, ema.update_buffers) == \
        ('EMAHook', 0.0005, True)
    train = cfg.train_dataloader.dataset.pipeline
    assert [t.type for t in train] == [
        'LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', 'PackInputs'
    ]
    crop = train[1]
    assert (crop.scale, tuple(crop.crop_ratio_range), crop.interpolation) \
        == (256, (0.08, 1.0), 'bilinear')
    assert (train[2].prob, train[2].direction) == (0.5, 'horizontal')
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        test = loader.dataset.pipeline
        assert [t.type for t in test] == [
            'LoadImageFromFile', 'ResizeEdge', 'CenterCrop', 'PackInputs'
        ]
        assert (test[1].scale, test[1].edge, test[1].interpolation) == \
            (288, 'short', 'bilinear')
        assert test[2].crop_size == 256


@pytest.mark.parametrize('name', list(IN1K_CONFIGS.values()))
def test_child_configs_only_change_the_arch(name, et_cfg):
    cfg = load_config('classification', name)
    for key in ('optim_wrapper', 'param_scheduler', 'custom_hooks',
                'train_dataloader', 'val_dataloader', 'data_preprocessor',
                'train_cfg', 'auto_scale_lr'):
        assert cfg[key] == et_cfg[key], key
    assert cfg.model.head.dropout_rate == 0.1


def test_weight_decay_off_exactly_for_1d_parameters(et_cfg, et_model):
    from mmengine.optim import build_optim_wrapper
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        wrapper = build_optim_wrapper(et_model, et_cfg.optim_wrapper)
    optimizer = wrapper.optimizer
    assert type(optimizer) is torch.optim.AdamW
    decay = {}
    for group in optimizer.param_groups:
        for p in group['params']:
            assert id(p) not in decay, 'a parameter is in two groups'
            decay[id(p)] = group['weight_decay']
    named = dict(et_model.named_parameters())
    assert len(decay) == len(named)
    seen = {'norm': 0, 'filter': 0, 'conv': 0}
    for name, p in named.items():
        wd = decay[id(p)]
        if p.ndim == 1:
            assert wd == 0, name
        else:
            assert wd == 0.008, name
        if re.search(r'\.(bn|norm\d?)\.(weight|bias)$', name):
            seen['norm'] += 1
            assert wd == 0, name
        if re.search(r'filter\.(w1|b1|w2|b2)$', name):
            seen['filter'] += 1
            assert p.ndim >= 3 and wd == 0.008, name
        if name.endswith('conv.weight'):
            seen['conv'] += 1
            assert wd == 0.008, name
    assert min(seen.values()) > 0, seen
    assert decay[id(named['head.fc.bias'])] == 0
    assert decay[id(named['head.fc.weight'])] == 0.008


def test_lr_schedule_warmup_then_per_epoch_cosine(et_cfg):
    """Step the config's schedulers like the Runner's ParamSchedulerHook
    over 300 ImageNet epochs at a total batch of 1024."""
    from mmengine.optim import OptimWrapper
    from mmengine.registry import PARAM_SCHEDULERS
    iters_per_epoch = 1252  # ceil(1,281,167 / 1024)
    param = torch.nn.Parameter(torch.zeros(1))
    wrapper = OptimWrapper(
        torch.optim.AdamW([param], lr=et_cfg.optim_wrapper.optimizer.lr))
    schedulers = [
        PARAM_SCHEDULERS.build(dict(cfg, optimizer=wrapper))
        for cfg in et_cfg.param_scheduler
    ]
    wrapper.step()  # before any scheduler step, as in training
    by_iter = [s for s in schedulers if not s.by_epoch]
    by_epoch = [s for s in schedulers if s.by_epoch]
    assert len(by_iter) == 1 and len(by_epoch) == 1
    lrs = []  # the lr each iteration trains with
    for _epoch in range(et_cfg.train_cfg.max_epochs):
        for _ in range(iters_per_epoch):
            lrs.append(wrapper.get_lr()['lr'][0])
            for s in by_iter:
                s.step()
        for s in by_epoch:
            s.step()
    assert lrs[0] == pytest.approx(1e-6, rel=1e-6)
    assert lrs[10_000] == pytest.approx((1e-6 + 0.009) / 2, rel=1e-3)
    assert lrs[19_999] == pytest.approx(0.009, rel=1e-9)  # warmup end
    assert lrs[20_000] == pytest.approx(0.009, rel=1e-9)
    warmup = lrs[:20_000]
    assert all(a < b for a, b in zip(warmup, warmup[1:]))
    after = lrs[20_000:]
    assert all(a >= b for a, b in zip(after, after[1:]))
    # constant within an epoch: per-epoch steps after the warmup
    epoch_100 = lrs[100 * iters_per_epoch:101 * iters_per_epoch]
    assert len(set(epoch_100)) == 1
    assert lrs[-1] == pytest.approx(0.0009, rel=1e-3)
    assert min(lrs[20_000:]) >= 0.0009 * (1 - 1e-9)


def test_ema_hook_averages_weights_and_buffers(et_cfg):
    from mmengine.registry import HOOKS, MODELS
    hook_cfg = et_cfg.custom_hooks[0].copy()
    # the Runner takes the priority off before building a hook
    assert hook_cfg.pop('priority') == 'ABOVE_NORMAL'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        hook = HOOKS.build(hook_cfg)
    assert type(hook).__module__.startswith('mmpretrain')
    source = torch.nn.BatchNorm1d(2)
    ema = MODELS.build(
        dict(**hook.ema_cfg, model=source))  # as EMAHook.before_run does
    ema.update_parameters(source)  # first step copies
    with torch.no_grad():
        source.weight.fill_(3.)
        source.running_mean.fill_(2.)
    ema.update_parameters(source)
    m = 0.0005
    torch.testing.assert_close(ema.module.weight.data,
                               torch.full((2, ), 1 - m + 3 * m))
    torch.testing.assert_close(ema.module.running_mean,
                               torch.full((2, ), 2 * m))


def test_dropout_head_train_eval_and_state_dict():
    import mmpretrain.registry

    import mmaff.registry
    from mmaff.models.heads import DropoutLinearClsHead
    assert mmaff.registry.MODELS.get('DropoutLinearClsHead') is \
        DropoutLinearClsHead
    assert mmpretrain.registry.MODELS.get('DropoutLinearClsHead') is \
        DropoutLinearClsHead
    # the head builds its loss in the current scope, as in a config run
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        head = DropoutLinearClsHead(num_classes=3, in_channels=4000,
                                    dropout_rate=0.5)
    assert set(head.state_dict()) == {'fc.weight', 'fc.bias'}
    feats = (torch.ones(2, 4000), )
    head.train()
    dropped = head.pre_logits(feats)
    zeros = (dropped == 0).float().mean().item()
    assert 0.4 < zeros < 0.6
    assert set(dropped.unique().tolist()) == {0., 2.}
    head.eval()
    assert torch.equal(head.pre_logits(feats), feats[0])
    torch.testing.assert_close(head(feats), head.fc(feats[0]))
    # the rate is checked before the loss is built: in the mmengine scope
    # (which a Runner leaves current) building the loss itself would fail
    for rate in (-0.1, 1.0):
        with DefaultScope.overwrite_default_scope('mmengine'), \
                pytest.raises(ValueError, match='dropout_rate'):
            DropoutLinearClsHead(num_classes=3, in_channels=4,
                                 dropout_rate=rate)


def test_classifier_dropout_state_dict_and_modes(et_model):
    keys = [k for k in et_model.state_dict() if k.startswith('head.')]
    assert keys == ['head.fc.weight', 'head.fc.bias']
    assert isinstance(et_model.head.dropout, torch.nn.Dropout)
    assert et_model.head.dropout.p == 0.1
    et_model.train()
    assert et_model.head.dropout.training
    et_model.eval()
    assert not et_model.head.dropout.training


def test_forward_loss_and_predict(et_model):
    from mmpretrain.structures import DataSample
    model = et_model
    images = [torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
              for _ in range(2)]
    images[0][0] = 255  # BGR blue channel
    images[0][1:] = 0
    packed = dict(
        inputs=images,
        data_samples=[DataSample().set_gt_label(3),
                      DataSample().set_gt_label(7)])
    data = model.data_preprocessor(packed, True)
    # BGR -> RGB and /255: the blue image is (0, 0, 1)
    assert torch.equal(data['inputs'][0],
                       torch.stack([torch.zeros(64, 64)] * 2 +
                                   [torch.ones(64, 64)]))
    model.train()
    losses = model(**data, mode='loss')
    loss = losses['loss']
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    filter_grad = model.backbone.layers[2][1].blocks[0].filter.w1.grad
    assert filter_grad is not None and filter_grad.abs().sum() > 0
    assert model.head.fc.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(packed, False),
                        mode='predict')
    assert len(results) == 2
    assert results[0].pred_score.shape == (1000, )
    torch.testing.assert_close(results[0].pred_score.sum(),
                               torch.tensor(1.))
    assert 0 <= int(results[1].pred_label) < 1000
    # eval forward is deterministic (no dropout)
    with torch.no_grad():
        again = model(**model.data_preprocessor(packed, False),
                      mode='predict')
    torch.testing.assert_close(again[0].pred_score, results[0].pred_score)


def test_mmaff_imports_without_mmpretrain():
    """mmpretrain is optional: mmaff imports, the head is simply absent,
    and asking the head module for it says why."""
    code = textwrap.dedent("""
        import sys
        sys.modules['mmpretrain'] = None  # as if not installed
        import mmaff
        from mmaff.registry import register_downstream_aliases
        import mmaff.registry
        assert 'DropoutLinearClsHead' not in \\
            mmaff.registry.MODELS.module_dict
        print(register_downstream_aliases(['AFFNet'])['AFFNet'])
        try:
            from mmaff.models.heads import DropoutLinearClsHead
        except ImportError as e:
            print('heads:', e)
        """)
    result = run_python('-c', code, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-2] == "['mmdet', 'mmseg']"
    assert lines[-1].startswith(
        'heads: mmaff.models.heads.DropoutLinearClsHead needs mmpretrain')


def test_import_mmaff_stays_light():
    """The heads (mmpretrain, and through it mmdet's models) load lazily;
    the plain-name aliases import only the downstream registries."""
    code = ('import sys, mmaff; print(sorted(m for m in ("mmpretrain.models",'
            ' "mmdet.models", "mmseg.models", "mmaff.models.heads", '
            '"mmaff.models.dense_heads") if m in sys.modules))')
    result = run_python('-c', code, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == '[]'


# ---------------------------------------------------------------------------
# Toy set and the tools end to end


def toy_generator():
    return import_file(
        osp.join(ROOT, 'tools', 'dataset_converters', 'make_toy_imagenet.py'))


def test_toy_set_layout_is_read_by_mmpretrain_imagenet(tmp_path,
                                                       toy_imagenet):
    from mmpretrain.registry import DATASETS
    cfg = Config.fromfile(osp.join(ROOT, TOY_CONFIG))
    classes = tuple(name for name, _ in toy_generator().CLASSES[:4])
    assert tuple(cfg.train_dataloader.dataset.metainfo.classes) == classes
    assert cfg.model.head.num_classes == len(classes)
    with open(osp.join(toy_imagenet, 'meta', 'classes.txt')) as f:
        assert tuple(f.read().split()) == classes
    for split, per_class in (('train', 8), ('val', 2)):
        loader = cfg[f'{split}_dataloader']
        ds_cfg = loader.dataset.copy()
        ds_cfg.data_root = toy_imagenet
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            dataset = DATASETS.build(ds_cfg)
            # the same folders without the annotation lists
            scanned = DATASETS.build(
                dict(type='CustomDataset', data_root=toy_imagenet,
                     data_prefix=split, with_label=True))
        assert type(dataset).__name__ == 'ImageNet'
        assert dataset.ann_file.endswith(f'meta/{split}.txt')
        assert len(dataset) == 4 * per_class
        assert dataset.CLASSES == classes
        assert scanned.CLASSES == classes
        assert sorted((osp.relpath(d['img_path'], toy_imagenet),
                       d['gt_label']) for d in dataset.load_data_list()) \
            == sorted((osp.relpath(d['img_path'], toy_imagenet),
                       d['gt_label']) for d in scanned.load_data_list())
        for info in dataset.load_data_list():
            folder = osp.basename(osp.dirname(info['img_path']))
            assert classes[info['gt_label']] == folder
            assert info['img_path'].endswith('.JPEG')
        sample = dataset[0]
        assert sample['inputs'].shape == (3, 64, 64)
    # deterministic for a seed, different for another
    again = tmp_path / 'again'
    make_toy('imagenet', again)
    for rel in ('meta/train.txt', 'train/ring/train_ring_00003.JPEG',
                'val/checker/val_checker_00001.JPEG'):
        with open(osp.join(toy_imagenet, rel), 'rb') as a, \
                open(again / rel, 'rb') as b:
            assert a.read() == b.read(), rel
    other = tmp_path / 'other'
    make_toy('imagenet', other, '--train-per-class', '1', '--val-per-class',
             '1', '--seed', '4', '--num-classes', '2')
    assert sorted(os.listdir(other / 'train')) == list(classes[:2])
    with open(other / 'train/checker/train_checker_00000.JPEG', 'rb') as a, \
            open(osp.join(toy_imagenet,
                          'train/checker/train_checker_00000.JPEG'),
                 'rb') as b:
        assert a.read() != b.read()


def test_toy_config_evaluates_top1_only():
    cfg = Config.fromfile(osp.join(ROOT, TOY_CONFIG))
    assert tuple(cfg.val_evaluator.topk) == (1, )
    assert tuple(cfg.test_evaluator.topk) == (1, )
    assert cfg.model.backbone.type == 'mmaff.AFFNet'
    assert cfg.model.head.type == 'mmaff.DropoutLinearClsHead'
    assert cfg.data_preprocessor.num_classes == 4


TOP1 = re.compile(r'accuracy/top1: (\d+\.\d+)')


@pytest.mark.slow
def test_train_then_test_end_to_end(tmp_path, toy_imagenet):
    work = tmp_path / 'work'
    log = train(TOY_CONFIG, toy_imagenet, work, max_epochs=2)
    assert 'Epoch(train) [2][4/4]' in log
    val = re.findall(r'Epoch\(val\) \[(\d+)\]\[1/1\]\s+accuracy/top1: '
                     r'(\d+\.\d+)', log)
    assert [epoch for epoch, _ in val] == ['1', '2']
    assert all(0 <= float(acc) <= 100 for _, acc in val)
    ckpt_path = work / 'epoch_2.pth'
    assert osp.isfile(ckpt_path)
    import mmaff  # noqa: F401  (F2: weights_only loads of runner checkpoints)
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    assert ckpt['state_dict']['head.fc.weight'].shape == (4, 576)
    assert not any('dropout' in k for k in ckpt['state_dict'])
    log = success_log(
        run_tool('test.py', TOY_CONFIG, toy_imagenet, ckpt_path,
                 '--work-dir', tmp_path / 'test'))
    match = re.search(r'Epoch\(test\) \[1/1\]\s+accuracy/top1: '
                      r'(\d+\.\d+)', log)
    assert match, log[-3000:]
    # the checkpoint's weights: test accuracy equals the last validation
    assert float(match.group(1)) == pytest.approx(float(val[-1][1]))


# ---------------------------------------------------------------------------
# Model index and metafiles


# The figures the metafiles must list, as PAPER FIGURES (not reproduced
# here), by (model family, dataset, metric) and variant. Sources
# (shared/docs/affnet_spec.md section D): ImageNet-1k top-1 and the
# DeepLabv3 mIoU from the official README (microsoft/TokenMixers, folder
# "Adaptive Frequency Filters"), which quotes the AFFNet paper; the SSDLite
# COCO mAP second-hand from the AFIDAF paper's comparison table (arXiv
# 2407.12217), which reports none for AFFNet-ET. Anything not listed
# (AFFNet-ET's SSDLite, RetinaNet) has no known figure and must list none.
PAPER_FIGURES = {
    ('affnet', 'ImageNet-1k', 'Top 1 Accuracy'): {
        'et': 73.0, 't': 77.0, 'base': 79.8},
    ('deeplabv3', 'ADE20K', 'mIoU'): {'et': 33.0, 't': 36.9, 'base': 38.4},
    ('deeplabv3', 'Pascal VOC 2012 Aug', 'mIoU'): {
        'et': 76.1, 't': 77.8, 'base': 80.5},
    ('ssdlite', 'COCO', 'box AP'): {'t': 25.3, 'base': 28.4},
}
# What each metafile's results are measured on, and the source its
# `Paper Result` field must name.
METAFILE_TASKS = {
    'configs/classification/metafile.yml': (
        'Image Classification', 'Top 1 Accuracy', 'TokenMixers'),
    'configs/detection/metafile.yml': ('Object Detection', 'box AP',
                                       'AFIDAF'),
    'configs/segmentation/metafile.yml': ('Semantic Segmentation', 'mIoU',
                                          'TokenMixers'),
}


def model_dataset(name: str) -> str:
    """The dataset a metafile model's name says it is trained on."""
    for key, dataset in (('_in1k', 'ImageNet-1k'), ('_coco', 'COCO'),
                         ('_ade20k', 'ADE20K'),
                         ('_voc12aug', 'Pascal VOC 2012 Aug')):
        if key in name:
            return dataset
    raise AssertionError(f'no dataset in the model name {name}')


def test_model_index_and_metafiles():
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    imports = index['Import']
    assert imports == list(METAFILE_TASKS)
    seen = set()
    for metafile, (task, metric, source) in METAFILE_TASKS.items():
        path = osp.join(ROOT, metafile)
        assert osp.isfile(path), metafile
        with open(path) as f:
            meta = yaml.safe_load(f)
        assert meta['Models'], metafile
        collections = {c['Name'] for c in meta['Collections']}
        for model in meta['Models']:
            name = model['Name']
            assert osp.isfile(osp.join(ROOT, model['Config'])), model
            assert osp.basename(model['Config']) == f'{name}.py'
            assert model['In Collection'] in collections
            # Nothing has been reproduced at full scale here yet.
            assert model['Reproduced Here'] is False, name
            family = name.split('_')[0]
            if family.startswith('affnet'):
                family = 'affnet'  # the classifiers are named by variant
            arch = re.search(r'affnet(-et|-t)?[-_]', name).group(1)
            arch = arch[1:] if arch else 'base'
            dataset = model_dataset(name)
            expected = PAPER_FIGURES.get((family, dataset, metric), {})
            if arch not in expected:
                # no known figure: none invented
                assert 'Results' not in model and \
                    'Paper Result' not in model, name
                continue
            seen.add((family, dataset, metric, arch))
            (result, ) = model['Results']
            assert (result['Task'], result['Dataset']) == (task, dataset)
            assert result['Metrics'] == {metric: expected[arch]}, name
            assert source in model['Paper Result'], name
    # every paper figure is listed by some model
    assert seen == {(*key, arch)
                    for key, figures in PAPER_FIGURES.items()
                    for arch in figures}
    with open(osp.join(CLS_DIR, 'metafile.yml')) as f:
        models = {m['Config']: m for m in yaml.safe_load(f)['Models']}
    for arch, name in IN1K_CONFIGS.items():
        model = models[f'configs/classification/{name}']
        assert model['Metadata']['Parameters'] == OFFICIAL_PARAMS[arch]
        assert model['Results'][0]['Metrics']['Top 1 Accuracy'] == \
            PAPER_TOP1[arch]
        assert model['Converted From']['Code'] == \
            'https://github.com/microsoft/TokenMixers'
        # where the official weights are published
        assert model['Converted From']['Weights'] == (
            'https://github.com/microsoft/TokenMixers/tree/main/'
            'Adaptive%20Frequency%20Filters')
