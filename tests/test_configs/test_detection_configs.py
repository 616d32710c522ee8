"""Detection configs, the shared tools on a toy COCO set, and bad input."""
import glob
import json
import os
import os.path as osp
import pickle
import re
import shutil

import pytest
import torch
from helpers import (
    ROOT,
    build_dataset,
    build_model,
    dist_train,
    load_config,
    make_toy,
    pretrained_child,
    run_tool,
    success_log,
    train,
)
from mmengine import Config

DET_CONFIGS = sorted(
    osp.basename(p) for p in glob.glob(osp.join(ROOT, 'configs', 'detection',
                                                '*.py')))
COCO_CONFIGS = [c for c in DET_CONFIGS if c.endswith('_coco.py')]
TOY_CLASSES = ('circle', 'square', 'triangle', 'star')
TOY_SSD = 'configs/detection/ssdlite_affnet-et_8xb24-600e_coco_toy.py'


def test_all_configs_present():
    expected = {
        f'{algo}_affnet{v}_{suffix}'
        for v in ('-et', '-t', '')
        for algo, suffix in (('ssdlite', '8xb24-600e_coco.py'),
                             ('retinanet', 'fpn_1x_coco.py'))
    }
    assert expected <= set(DET_CONFIGS)


@pytest.mark.parametrize(
    'name', COCO_CONFIGS + ['ssdlite_affnet-et_8xb24-600e_coco_toy.py',
                            'retinanet_affnet-et_fpn_1x_coco_toy.py'])
def test_config_builds_and_runs_loss_and_predict(name):
    from mmdet.testing import demo_mm_inputs
    cfg = load_config('detection', name)
    backbone = cfg.model.backbone
    assert backbone.type == 'mmaff.AFFNet'
    assert cfg.model.data_preprocessor.std == [255., 255., 255.]
    model = build_model(cfg)
    num_classes = cfg.model.bbox_head.num_classes
    size = 320 if 'ssdlite' in name else 256
    packed = demo_mm_inputs(
        2, [[3, size, size]] * 2, num_items=[3, 2], num_classes=num_classes)
    data = model.data_preprocessor(packed, True)
    model.train()
    losses = model(**data, mode='loss')
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v)
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total) and total > 0
    total.backward()
    assert model.backbone.stem.conv.weight.grad is not None
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(packed, False),
                        mode='predict')
    assert len(results) == 2
    assert results[0].pred_instances.bboxes.shape[-1] == 4


def test_param_counts_match_paper_layout():
    """SSDLite taps strides 16/32: 2.9M (T) and 5.6M (AFFNet) with 80
    classes, the paper reports 3.0M / 5.6M."""
    counts = {}
    for name in ('ssdlite_affnet-t_8xb24-600e_coco.py',
                 'ssdlite_affnet_8xb24-600e_coco.py'):
        model = build_model(load_config('detection', name))
        counts[name] = sum(p.numel() for p in model.parameters())
    ssd_t = counts['ssdlite_affnet-t_8xb24-600e_coco.py']
    assert abs(ssd_t / 3.0e6 - 1) < 0.05
    assert abs(counts['ssdlite_affnet_8xb24-600e_coco.py'] / 5.6e6 - 1) < 0.05


def test_pretrained_variable_feeds_backbone_init(tmp_path):
    name = 'retinanet_affnet-t_fpn_1x_coco.py'
    cfg = pretrained_child(tmp_path, f'{ROOT}/configs/detection/{name}')
    assert cfg.model.backbone.init_cfg.checkpoint == 'x.pth'
    assert cfg.model.backbone.arch == 't'
    assert load_config('detection', name).model.backbone.init_cfg == dict(
        type='Pretrained',
        checkpoint='checkpoints/affnet-t_in1k.pt',
        prefix='backbone.')


# ---------------------------------------------------------------------------
# End to end through the tools


def test_make_toy_coco_is_valid_coco_and_deterministic(tmp_path, toy_coco):
    from pycocotools.coco import COCO
    coco = COCO(osp.join(toy_coco, 'annotations', 'instances_train.json'))
    assert len(coco.getImgIds()) == 8
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == \
        list(TOY_CLASSES)
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 8 and len({a['category_id'] for a in anns}) > 1
    for img in coco.loadImgs(coco.getImgIds()):
        assert osp.isfile(osp.join(toy_coco, 'train', img['file_name']))
    for ann in anns:
        x, y, w, h = ann['bbox']
        assert w > 0 and h > 0 and x + w <= 128 and y + h <= 128
    again = tmp_path / 'again'
    make_toy('coco', again)
    for rel in ('annotations/instances_train.json', 'train/000001.jpg'):
        with open(osp.join(toy_coco, rel), 'rb') as a, \
                open(again / rel, 'rb') as b:
            assert a.read() == b.read(), rel


@pytest.mark.slow
def test_train_resume_test_end_to_end(tmp_path, toy_coco):
    work = tmp_path / 'work'
    log = train(TOY_SSD, toy_coco, work, max_epochs=2)
    assert 'coco/bbox_mAP_50' in log
    assert osp.isfile(work / 'epoch_2.pth')
    # --resume picks the latest checkpoint and goes on to epoch 3
    log = train(TOY_SSD, toy_coco, work, '--resume', max_epochs=3)
    assert re.search(r'resumed epoch: 2, iter: \d+', log), log[-3000:]
    assert 'Epoch(train) [3]' in log and 'Epoch(train) [1]' not in log
    assert osp.isfile(work / 'epoch_3.pth')
    # tools/test.py: metrics, raw predictions and drawings
    out = tmp_path / 'preds.pkl'
    show = tmp_path / 'show'
    log = success_log(
        run_tool('test.py', TOY_SSD, toy_coco, work / 'epoch_3.pth',
                 '--work-dir', tmp_path / 'test', '--out', out,
                 '--show-dir', show))
    assert 'coco/bbox_mAP' in log
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 4 and 'pred_instances' in preds[0]
    drawings = glob.glob(str(show / '*.jpg'))
    assert len(drawings) == 4


@pytest.mark.slow
def test_dist_train_two_processes_on_cpu(tmp_path, toy_coco):
    work = tmp_path / 'dist'
    log = success_log(
        dist_train(TOY_SSD, toy_coco, '--work-dir', work, **{
            'train_cfg.max_epochs': 1,
            'train_cfg.val_interval': 1
        }))
    assert 'Distributed launcher: pytorch' in log or 'world_size: 2' in log
    assert 'coco/bbox_mAP' in log
    assert osp.isfile(work / 'epoch_1.pth')


def test_amp_on_cpu_is_refused_clearly(toy_coco):
    result = run_tool('train.py', TOY_SSD, toy_coco, '--amp')
    assert result.returncode != 0
    assert '--amp needs a CUDA device' in result.stderr


# ---------------------------------------------------------------------------
# Bad input


def broken_copy(toy_coco: str, tmp_path, edit) -> str:
    root = tmp_path / 'broken'
    shutil.copytree(toy_coco, root)
    path = root / 'annotations' / 'instances_train.json'
    with open(path) as f:
        ann = json.load(f)
    edit(root, ann)
    if path.exists():
        with open(path, 'w') as f:
            json.dump(ann, f)
    return str(root) + '/'


def build_train_dataset(data_root: str):
    cfg = Config.fromfile(osp.join(ROOT, TOY_SSD))
    return build_dataset('mmdet', cfg.train_dataloader.dataset.dataset,
                         data_root)


def test_bad_input_missing_annotation_file(tmp_path, toy_coco):
    root = broken_copy(
        toy_coco, tmp_path,
        lambda r, a: os.remove(r / 'annotations' / 'instances_train.json'))
    with pytest.raises(FileNotFoundError, match='instances_train.json'):
        build_train_dataset(root)


def test_bad_input_listed_image_missing(tmp_path, toy_coco):
    root = broken_copy(toy_coco, tmp_path,
                       lambda r, a: os.remove(r / 'train' / '000001.jpg'))
    dataset = build_train_dataset(root)
    paths = [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]
    index = paths.index(osp.join(root, 'train', '000001.jpg'))
    with pytest.raises(FileNotFoundError, match='000001.jpg'):
        dataset[index]


def test_bad_input_no_annotations(tmp_path, toy_coco):

    def drop_all(root, ann):
        ann['annotations'] = []

    root = broken_copy(toy_coco, tmp_path, drop_all)
    with pytest.raises(ValueError, match='no images left'):
        build_train_dataset(root)


def test_bad_input_unknown_category_id(tmp_path, toy_coco):

    def bad_category(root, ann):
        ann['annotations'][0]['category_id'] = 9

    root = broken_copy(toy_coco, tmp_path, bad_category)
    with pytest.raises(ValueError, match='category_id 9, which the file '
                       'does not define'):
        build_train_dataset(root)


def test_category_outside_metainfo_is_skipped_and_counted(tmp_path, toy_coco):

    def extra_category(root, ann):
        ann['categories'].append(dict(id=5, name='hexagon'))
        ann['annotations'][0]['category_id'] = 5

    root = broken_copy(toy_coco, tmp_path, extra_category)
    dataset = build_train_dataset(root)
    labels = [
        inst['bbox_label'] for i in range(len(dataset))
        for inst in dataset.get_data_info(i)['instances']
    ]
    assert max(labels) < len(TOY_CLASSES)
    assert dataset.skipped_category_counts == {5: 1}


def test_metainfo_class_missing_from_file_is_an_error(tmp_path, toy_coco):

    def rename(root, ann):
        ann['categories'][1]['name'] = 'box'

    root = broken_copy(toy_coco, tmp_path, rename)
    with pytest.raises(ValueError, match=r"classes \['square'\]"):
        build_train_dataset(root)
