"""Segmentation (DeepLabv3) configs, the toy set generator, the shared tools
end to end on it, and bad label files."""
import glob
import os
import os.path as osp
import re
import shutil
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine import Config
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SEG_DIR = osp.join(ROOT, 'configs', 'segmentation')
STAGE5_CHANNELS = {'et': 144, 't': 192, 'base': 320}
# name: (arch, num_classes, measured parameters)
SEG_CONFIGS = {
    'deeplabv3_affnet-et-d8_4xb4-40k_voc12aug-512x512.py':
    ('et', 21, 2_180_373),
    'deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512.py':
    ('et', 150, 2_213_526),
    'deeplabv3_affnet-t-d8_4xb4-40k_voc12aug-512x512.py':
    ('t', 21, 3_497_797),
    'deeplabv3_affnet-t-d8_4xb4-80k_ade20k-512x512.py':
    ('t', 150, 3_530_950),
    'deeplabv3_affnet-d8_4xb4-40k_voc12aug-512x512.py':
    ('base', 21, 7_010_405),
    'deeplabv3_affnet-d8_4xb4-80k_ade20k-512x512.py':
    ('base', 150, 7_043_558),
}
# The official DeepLabv3 (1x1 fusion of the five ASPP branches) recomputed
# from the official code, in millions (affnet_spec.md D.2).
OFFICIAL_PARAMS_M = {
    ('et', 21): 2.180, ('et', 150): 2.214,
    ('t', 21): 3.498, ('t', 150): 3.531,
    ('base', 21): 7.010, ('base', 150): 7.044,
}
TOY_ADE = ('configs/segmentation/'
           'deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512_toy.py')
TOY_VOC = ('configs/segmentation/'
           'deeplabv3_affnet-et-d8_4xb4-40k_voc12aug-512x512_toy.py')
TOY_CLASSES = ('circle', 'square', 'triangle', 'star', 'cross')


def load(name: str) -> Config:
    return Config.fromfile(osp.join(SEG_DIR, name))


def build_model(cfg: Config):
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(cfg.model)


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_all_configs_present():
    names = {osp.basename(p) for p in glob.glob(osp.join(SEG_DIR, '*.py'))}
    assert set(SEG_CONFIGS) | {osp.basename(TOY_ADE), osp.basename(TOY_VOC)
                               } <= names
    for meta in ('README.md', 'metafile.yml'):
        assert osp.isfile(osp.join(SEG_DIR, meta))


@pytest.mark.parametrize('name', list(SEG_CONFIGS))
def test_config_builds_with_official_head_layout(name):
    arch, num_classes, params = SEG_CONFIGS[name]
    cfg = load(name)
    model_cfg = cfg.model
    assert model_cfg.pretrained is None
    assert model_cfg.auxiliary_head is None
    assert model_cfg.backbone.type == 'mmaff.AFFNet'
    assert model_cfg.backbone.out_indices == (4, )
    assert model_cfg.backbone.output_stride == 8
    assert model_cfg.backbone.init_cfg is None
    preprocessor = model_cfg.data_preprocessor
    assert preprocessor.mean == [0., 0., 0.]
    assert preprocessor.std == [255., 255., 255.]
    assert preprocessor.bgr_to_rgb and preprocessor.size == (512, 512)
    head = model_cfg.decode_head
    assert head.type == 'mmaff.AFFNetASPPHead' and head.in_index == 0
    assert (head.channels, tuple(head.dilations)) == (256, (1, 6, 12, 18))
    assert head.dropout_ratio == 0.1
    crops = [t for t in cfg.train_pipeline if t.type == 'RandomCrop']
    assert crops[0].crop_size == (512, 512)

    model = build_model(cfg)
    assert model.backbone.out_channels[4] == STAGE5_CHANNELS[arch]
    assert model.decode_head.in_channels == STAGE5_CHANNELS[arch]
    assert model.decode_head.num_classes == num_classes
    assert not model.with_auxiliary_head
    assert num_params(model) == params
    # The official head fuses the five ASPP branches with a 1x1 conv
    # (mmseg's ASPPHead: 3x3, 2,621,440 more weights).
    fuse = model.decode_head.bottleneck.conv
    assert fuse.kernel_size == (1, 1)
    assert fuse.in_channels == 5 * 256 and fuse.bias is None
    assert round(params / 1e6, 3) == OFFICIAL_PARAMS_M[arch, num_classes]


def test_metafile_lists_every_config_with_measured_params():
    import yaml
    with open(osp.join(SEG_DIR, 'metafile.yml')) as f:
        meta = yaml.safe_load(f)
    models = {m['Name'] + '.py': m for m in meta['Models']}
    assert set(models) == set(SEG_CONFIGS)
    targets = {'et': (33.0, 76.1), 't': (36.9, 77.8), 'base': (38.4, 80.5)}
    for name, model in models.items():
        arch, num_classes, params = SEG_CONFIGS[name]
        assert osp.isfile(osp.join(ROOT, model['Config']))
        assert model['In Collection'] == meta['Collections'][0]['Name']
        assert model['Metadata']['Parameters'] == params
        (result, ) = model['Results']
        assert result['Task'] == 'Semantic Segmentation'
        ade, voc = targets[arch]
        assert result['Metrics']['mIoU'] == (ade if num_classes == 150 else
                                             voc)


def test_pretrained_backbone_from_child_config(tmp_path):
    child = tmp_path / 'child.py'
    child.write_text(
        f"_base_ = '{SEG_DIR}/"
        "deeplabv3_affnet-t-d8_4xb4-40k_voc12aug-512x512.py'\n"
        "model = dict(backbone=dict(init_cfg=dict(_delete_=True, "
        "type='Pretrained', checkpoint='x.pth', prefix='backbone.')))\n")
    cfg = Config.fromfile(str(child))
    assert cfg.model.backbone.init_cfg.checkpoint == 'x.pth'
    assert cfg.model.backbone.arch == 't'
    assert cfg.model.pretrained is None
    model = build_model(cfg)
    assert model.backbone.init_cfg['checkpoint'] == 'x.pth'


@pytest.mark.parametrize('name', [
    'deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512.py',
    'deeplabv3_affnet-et-d8_4xb4-40k_voc12aug-512x512.py',
    osp.basename(TOY_ADE)
])
def test_loss_and_full_resolution_predict_at_odd_size(name):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    cfg = load(name)
    cfg.model.data_preprocessor.size = (104, 136)  # keep the loss pass small
    model = build_model(cfg)
    num_classes = model.decode_head.num_classes
    torch.manual_seed(0)
    h, w = 97, 131

    def batch():
        samples = []
        for _ in range(2):
            sample = SegDataSample(
                metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
            sample.gt_sem_seg = PixelData(
                data=torch.randint(0, num_classes, (1, h, w)))
            samples.append(sample)
        inputs = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
                  for _ in range(2)]
        return dict(inputs=inputs, data_samples=samples)

    model.train()
    data = model.data_preprocessor(batch(), True)
    losses = model(**data, mode='loss')
    loss = losses['decode.loss_ce']
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert model.backbone.stem.conv.weight.grad is not None
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(batch(), False),
                        mode='predict')
    assert len(results) == 2
    for result in results:
        assert result.pred_sem_seg.shape == (h, w)
        assert result.seg_logits.data.shape == (num_classes, h, w)
        pred = result.pred_sem_seg.data
        assert pred.min() >= 0 and pred.max() < num_classes


def _conv_out(size: int, times: int) -> int:
    for _ in range(times):
        size = (size + 1) // 2  # 3x3, stride 2, padding 1
    return size


@pytest.mark.parametrize('arch', ['et', 't', 'base'])
def test_output_stride_feature_sizes_and_params(arch):
    from mmaff.models import AFFNet
    h, w = 97, 131
    shapes, counts, states = {}, {}, {}
    for output_stride in (8, 16, 32):
        model = AFFNet(arch, out_indices=(0, 1, 2, 3, 4),
                       output_stride=output_stride).eval()
        with torch.no_grad():
            outs = model(torch.rand(1, 3, h, w))
        shapes[output_stride] = [tuple(o.shape[2:]) for o in outs]
        counts[output_stride] = num_params(model)
        states[output_stride] = {
            k: v.shape
            for k, v in model.state_dict().items()
        }
        channels = [o.shape[1] for o in outs]
        assert channels == model.out_channels[:5]
    for output_stride, sizes in shapes.items():
        # stage i has stride 2 ** (i + 1), capped at the output stride
        halvings = [min(i + 1, int(np.log2(output_stride)))
                    for i in range(5)]
        assert sizes == [(_conv_out(h, n), _conv_out(w, n))
                         for n in halvings], output_stride
    assert shapes[8][4] == (13, 17) and shapes[32][4] == (4, 5)
    assert counts[8] == counts[16] == counts[32]
    # one checkpoint fits every output stride
    assert states[8] == states[16] == states[32]


def test_check_seg_labels_registry_and_arguments():
    from mmseg.registry import TRANSFORMS

    from mmaff.datasets import CheckSegLabels
    with DefaultScope.overwrite_default_scope('mmseg'):
        for type_name in ('mmaff.CheckSegLabels', 'CheckSegLabels'):
            transform = TRANSFORMS.build(dict(type=type_name, num_classes=3))
            assert type(transform) is CheckSegLabels
    with pytest.raises(ValueError, match='num_classes'):
        CheckSegLabels(num_classes=0)
    with pytest.raises(ValueError, match='invalid'):
        CheckSegLabels(num_classes=3, invalid='clip')
    with pytest.raises(KeyError, match='after LoadAnnotations'):
        CheckSegLabels(num_classes=3)(
            dict(img=np.zeros((2, 2, 3)), seg_map_path='a.png'))
    # inference pipelines (no label file at all) pass through unchanged
    results = dict(img=np.zeros((2, 2, 3)))
    assert CheckSegLabels(num_classes=3)(results) is results


# ---------------------------------------------------------------------------
# Toy data


def run_tool(*args, timeout=600, env=None):
    return subprocess.run(
        list(args),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={
            **os.environ,
            **(env or {})
        })


def make_toy(out, *extra):
    result = run_tool(sys.executable,
                      'tools/dataset_converters/make_toy_ade20k.py',
                      str(out), '--num-train', '8', '--num-val', '4',
                      '--size', '128', *extra)
    assert result.returncode == 0, result.stderr
    return str(out) + '/'


@pytest.fixture(scope='module')
def toy_ade(tmp_path_factory):
    return make_toy(tmp_path_factory.mktemp('toy_ade20k'))


@pytest.fixture(scope='module')
def toy_voc(tmp_path_factory):
    return make_toy(tmp_path_factory.mktemp('toy_voc'), '--layout', 'voc')


def read_label(path) -> np.ndarray:
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert label is not None and label.dtype == np.uint8, path
    return label


def test_toy_ade20k_layout_reads_with_mmseg_ade20k_dataset(toy_ade,
                                                          tmp_path):
    from mmseg.datasets import ADE20KDataset
    for split, prefix, num in (('training', 'ADE_train_', 8),
                               ('validation', 'ADE_val_', 4)):
        images = sorted(glob.glob(f'{toy_ade}images/{split}/*.jpg'))
        labels = sorted(glob.glob(f'{toy_ade}annotations/{split}/*.png'))
        assert len(images) == len(labels) == num
        assert all(osp.basename(p).startswith(prefix) for p in images)
        for image_path, label_path in zip(images, labels):
            image = cv2.imread(image_path)
            label = read_label(label_path)
            assert label.ndim == 2 and label.shape == image.shape[:2]
            assert 128 <= image.shape[1] <= 128 * 4 // 3 + 1
            assert set(np.unique(label)) <= set(range(6))
        dataset = ADE20KDataset(
            data_root=toy_ade,
            data_prefix=dict(
                img_path=f'images/{split}',
                seg_map_path=f'annotations/{split}'),
            lazy_init=False)
        assert len(dataset) == num
        info = dataset.get_data_info(0)
        assert osp.isfile(info['img_path'])
        assert osp.isfile(info['seg_map_path'])
        assert info['reduce_zero_label'] is True
    values = np.concatenate([
        read_label(p).ravel()
        for p in glob.glob(f'{toy_ade}annotations/*/*.png')
    ])
    assert set(np.unique(values)) == set(range(6))  # "other" + 5 shapes
    # deterministic for a seed, different for another seed
    again = make_toy(tmp_path / 'again')
    other = make_toy(tmp_path / 'other', '--seed', '1')
    image = 'images/training/ADE_train_00000003.jpg'
    label = 'annotations/validation/ADE_val_00000010.png'
    for rel in (image, label):
        with open(toy_ade + rel, 'rb') as a, open(again + rel, 'rb') as b:
            assert a.read() == b.read(), rel
    assert not np.array_equal(
        read_label(toy_ade + label), read_label(other + label))


def test_toy_voc_layout_reads_with_mmseg_voc_dataset(toy_voc):
    from mmseg.datasets import PascalVOCDataset
    for split, num in (('train', 8), ('val', 4)):
        dataset = PascalVOCDataset(
            data_root=toy_voc,
            data_prefix=dict(
                img_path='JPEGImages', seg_map_path='SegmentationClass'),
            ann_file=f'ImageSets/Segmentation/{split}.txt')
        assert len(dataset) == num
        for i in range(num):
            info = dataset.get_data_info(i)
            label = read_label(info['seg_map_path'])
            assert label.shape == cv2.imread(info['img_path']).shape[:2]
    labels = [read_label(p)
              for p in glob.glob(f'{toy_voc}SegmentationClass/*.png')]
    assert len(labels) == 12
    values = set(np.unique(np.concatenate([lb.ravel() for lb in labels])))
    assert values == set(range(6)) | {255}
    # 255 only on thin bands along the borders, as in VOC
    for label in labels:
        border = label == 255
        assert border.any() == (label % 255 > 0).any()
        assert border.mean() < 0.2
        near_label = cv2.dilate((~border).astype(np.uint8),
                                np.ones((5, 5), np.uint8))
        assert near_label[border].all()


@pytest.mark.parametrize('config,fixture', [(TOY_ADE, 'toy_ade'),
                                            (TOY_VOC, 'toy_voc')])
def test_toy_datasets_pass_label_check(config, fixture, request):
    data_root = request.getfixturevalue(fixture)
    cfg = Config.fromfile(osp.join(ROOT, config))
    num_classes = cfg.model.decode_head.num_classes
    assert len(cfg.train_dataloader.dataset.metainfo.classes) == num_classes
    np.random.seed(0)  # the random crops of the training pipeline
    for name in ('train_dataloader', 'val_dataloader'):
        dataset = build_dataset(cfg[name].dataset, data_root)
        assert any(t['type'] == 'mmaff.CheckSegLabels'
                   for t in cfg[name].dataset.pipeline)
        seen = set()
        for i in range(len(dataset)):
            seg = dataset[i]['data_samples'].gt_sem_seg.data
            values = set(torch.unique(seg).tolist())
            assert values <= set(range(num_classes)) | {255}
            seen |= values
        assert len(seen - {255}) >= 3, (name, seen)


def build_dataset(ds_cfg, data_root: str):
    from mmseg.registry import DATASETS
    ds_cfg = ds_cfg.copy()
    ds_cfg.data_root = data_root
    with DefaultScope.overwrite_default_scope('mmseg'):
        return DATASETS.build(ds_cfg)


# ---------------------------------------------------------------------------
# End to end through the tools


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def toy_options(data_root: str, **extra) -> list[str]:
    options = {
        'train_dataloader.dataset.data_root': data_root,
        'val_dataloader.dataset.data_root': data_root,
        'test_dataloader.dataset.data_root': data_root,
        'train_dataloader.batch_size': 2,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'test_dataloader.num_workers': 0,
        'test_dataloader.persistent_workers': False,
        'default_hooks.logger.interval': 1,
        **extra
    }
    return ['--cfg-options'] + [f'{k}={v}' for k, v in options.items()]


def test_train_resume_test_end_to_end(tmp_path, toy_ade):
    work = tmp_path / 'work'
    schedule = {
        'train_cfg.val_interval': 2,
        'default_hooks.checkpoint.interval': 2
    }
    result = run_tool(
        sys.executable, 'tools/train.py', TOY_ADE, '--work-dir', str(work),
        *toy_options(toy_ade, **{'train_cfg.max_iters': 4, **schedule}))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'Iter(train) [4/4]' in log
    assert len(re.findall(r'Iter\(val\) \[4/4\] .*mIoU: [\d.]+', log)) == 2
    for name in TOY_CLASSES:  # the per-class IoU table
        assert re.search(rf'\|\s+{name}\s+\|', log), name
    assert osp.isfile(work / 'iter_4.pth')
    # --resume picks the latest checkpoint and goes on from iteration 4
    result = run_tool(
        sys.executable, 'tools/train.py', TOY_ADE, '--work-dir', str(work),
        '--resume',
        *toy_options(toy_ade, **{'train_cfg.max_iters': 6, **schedule}))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'resumed epoch: 0, iter: 4' in log, log[-4000:]
    assert 'Iter(train) [5/6]' in log and 'Iter(train) [6/6]' in log
    assert 'Iter(train) [1/6]' not in log
    assert osp.isfile(work / 'iter_6.pth')
    # tools/test.py: IoU metric and one overlay drawing per val image
    show = tmp_path / 'show'
    result = run_tool(sys.executable, 'tools/test.py', TOY_ADE,
                      str(work / 'iter_6.pth'), '--work-dir',
                      str(tmp_path / 'test'), '--show-dir', str(show),
                      *toy_options(toy_ade))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert re.search(r'Iter\(test\) \[4/4\] .*mIoU: [\d.]+', log)
    drawings = sorted(glob.glob(str(show / '**' / '*.png'), recursive=True))
    assert len(drawings) == 4, drawings
    for path in drawings:
        assert osp.getsize(path) > 0
        image = cv2.imread(path)
        # ground truth and prediction side by side at the image size
        assert image is not None and image.shape[0] == 128
        assert image.shape[1] >= 2 * 128 and image.std() > 0


def test_dist_train_two_processes_on_cpu(tmp_path, toy_ade):
    work = tmp_path / 'dist'
    result = run_tool(
        'bash', 'tools/dist_train.sh', TOY_ADE, '2', '--work-dir', str(work),
        *toy_options(toy_ade, **{
            'train_cfg.max_iters': 2,
            'train_cfg.val_interval': 2,
            'default_hooks.checkpoint.interval': 2
        }),
        env=dict(PYTHON=sys.executable, PORT=str(free_port())))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'Distributed launcher: pytorch' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    assert 'mIoU' in log
    assert osp.isfile(work / 'iter_2.pth')


def test_toy_voc_trains(tmp_path, toy_voc):
    work = tmp_path / 'voc'
    result = run_tool(
        sys.executable, 'tools/train.py', TOY_VOC, '--work-dir', str(work),
        *toy_options(toy_voc, **{
            'train_cfg.max_iters': 1,
            'train_cfg.val_interval': 1,
            'default_hooks.checkpoint.interval': 1
        }))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'Iter(train) [1/1]' in log
    assert re.search(r'Iter\(val\) \[4/4\] .*mIoU: [\d.]+', log)
    assert re.search(r'\|\s+background\s+\|', log)
    assert osp.isfile(work / 'iter_1.pth')


# ---------------------------------------------------------------------------
# Bad label files: mmseg alone crashes far from the cause or ignores them
# silently (see configs/segmentation/README.md); the toy configs'
# CheckSegLabels names the file.


def broken_copy(toy_ade: str, tmp_path, split: str, edit) -> tuple[str,
                                                                   str]:
    root = tmp_path / 'broken'
    shutil.copytree(toy_ade, root)
    label = sorted(glob.glob(str(root / 'annotations' / split / '*.png')))[0]
    edit(label)
    return str(root) + '/', label


def toy_dataset(data_root: str, split: str):
    cfg = Config.fromfile(osp.join(ROOT, TOY_ADE))
    loader = 'train_dataloader' if split == 'training' else 'val_dataloader'
    return build_dataset(cfg[loader].dataset, data_root)


def item_for(dataset, label_path: str) -> int:
    paths = [dataset.get_data_info(i)['seg_map_path']
             for i in range(len(dataset))]
    return paths.index(label_path)


def resize_label(scale_w: float, scale_h: float):

    def edit(path):
        label = read_label(path)
        h, w = label.shape
        cv2.imwrite(path, cv2.resize(label, (int(w * scale_w),
                                             int(h * scale_h)),
                                     interpolation=cv2.INTER_NEAREST))

    return edit


@pytest.mark.parametrize('split', ['training', 'validation'])
@pytest.mark.parametrize('scale', [(0.5, 0.5), (1.0, 0.75)])
def test_bad_input_label_size_differs_from_image(tmp_path, toy_ade, split,
                                                 scale):
    # same aspect ratio (half size) or not: both are reported
    root, label = broken_copy(toy_ade, tmp_path, split, resize_label(*scale))
    dataset = toy_dataset(root, split)
    with pytest.raises(ValueError,
                       match=r'is \d+x\d+ \(HxW\) but its image .*\.jpg '
                       r'is 128x\d+') as info:
        dataset[item_for(dataset, label)]
    assert label in str(info.value)


def test_bad_input_missing_label_file(tmp_path, toy_ade):
    root, label = broken_copy(toy_ade, tmp_path, 'training', os.remove)
    dataset = toy_dataset(root, 'training')
    with pytest.raises(FileNotFoundError, match=re.escape(label)):
        dataset[item_for(dataset, label)]


def add_class_id(value: int):

    def edit(path):
        label = read_label(path)
        label[:4, :4] = value
        cv2.imwrite(path, label)

    return edit


@pytest.mark.parametrize('split', ['training', 'validation'])
def test_bad_input_class_ids_above_num_classes(tmp_path, toy_ade, split):
    # 7 in the file is class 6 after reduce_zero_label; the model has 5
    root, label = broken_copy(toy_ade, tmp_path, split, add_class_id(7))
    dataset = toy_dataset(root, split)
    with pytest.raises(ValueError,
                       match=r'class ids \[6\] on 16 pixels, outside 0\.\.4 '
                       r'.*the file holds \[7\]') as info:
        dataset[item_for(dataset, label)]
    assert label in str(info.value)


def test_bad_input_class_ids_can_be_ignored_instead():
    from mmaff.datasets import CheckSegLabels
    seg = np.zeros((5, 6), np.uint8)
    seg[0, :3] = (9, 255, 4)
    results = dict(gt_seg_map=seg, seg_map_path='x.png', ori_shape=(5, 6))
    with pytest.warns(UserWarning, match=r'x\.png has class ids \[9\]'):
        out = CheckSegLabels(num_classes=5, invalid='ignore')(results)
    assert out['gt_seg_map'][0, :3].tolist() == [255, 255, 4]
    assert seg[0, 0] == 9  # the loaded array is not changed in place
    # ignore_index itself and the top class are valid: nothing to do
    out = CheckSegLabels(num_classes=10)(dict(results, gt_seg_map=seg))
    assert out['gt_seg_map'] is seg


def test_bad_input_colour_label_png(tmp_path, toy_ade):

    def to_rgb(path):
        label = read_label(path)
        cv2.imwrite(path, np.stack([label] * 3, axis=-1))

    root, label = broken_copy(toy_ade, tmp_path, 'training', to_rgb)
    dataset = toy_dataset(root, 'training')
    with pytest.raises(ValueError, match=r'has shape \(128, \d+, 3\)'):
        dataset[item_for(dataset, label)]
