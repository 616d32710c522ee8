"""Segmentation (DeepLabv3) configs, the toy set generator, the shared tools
end to end on it, and bad label files."""
import glob
import os
import os.path as osp
import re
import shutil

import cv2
import numpy as np
import pytest
import torch
from helpers import (
    ROOT,
    build_dataset,
    build_model,
    dist_train,
    load_config,
    make_toy,
    num_params,
    pretrained_child,
    run_tool,
    schedule,
    success_log,
    train,
)
from mmengine import Config
from mmengine.registry import DefaultScope

SEG_DIR = osp.join(ROOT, 'configs', 'segmentation')
STAGE5_CHANNELS = {'et': 144, 't': 192, 'base': 320}
# (arch, num_classes): measured parameters of the config
MEASURED_PARAMS = {
    ('et', 21): 2_180_373, ('et', 150): 2_213_526,
    ('t', 21): 3_497_797, ('t', 150): 3_530_950,
    ('base', 21): 7_010_405, ('base', 150): 7_043_558,
}
ARCH_NAME = {'et': 'affnet-et', 't': 'affnet-t', 'base': 'affnet'}
DATASET_NAME = {21: '40k_voc12aug', 150: '80k_ade20k'}
# name: (arch, num_classes, measured parameters)
SEG_CONFIGS = {
    f'deeplabv3_{ARCH_NAME[arch]}-d8_4xb4-{DATASET_NAME[num_classes]}'
    '-512x512.py': (arch, num_classes, params)
    for (arch, num_classes), params in MEASURED_PARAMS.items()
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


def test_all_configs_present():
    names = {osp.basename(p) for p in glob.glob(osp.join(SEG_DIR, '*.py'))}
    assert set(SEG_CONFIGS) | {osp.basename(TOY_ADE), osp.basename(TOY_VOC)
                               } <= names
    for meta in ('README.md', 'metafile.yml'):
        assert osp.isfile(osp.join(SEG_DIR, meta))


@pytest.mark.parametrize('name', list(SEG_CONFIGS))
def test_config_builds_with_official_head_layout(name):
    arch, num_classes, params = SEG_CONFIGS[name]
    cfg = load_config('segmentation', name)
    model_cfg = cfg.model
    assert model_cfg.pretrained is None
    assert model_cfg.auxiliary_head is None
    assert model_cfg.backbone.type == 'mmaff.AFFNet'
    assert model_cfg.backbone.out_indices == (4, )
    assert model_cfg.backbone.output_stride == 8
    # the checkpoint each config names: test_pretrained_configs.py
    assert model_cfg.backbone.init_cfg.type == 'Pretrained'
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
    cfg = pretrained_child(
        tmp_path,
        f'{SEG_DIR}/deeplabv3_affnet-t-d8_4xb4-40k_voc12aug-512x512.py')
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
    cfg = load_config('segmentation', name)
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
    again = make_toy('ade20k', tmp_path / 'again')
    other = make_toy('ade20k', tmp_path / 'other', '--seed', '1')
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
        dataset = build_dataset('mmseg', cfg[name].dataset, data_root)
        assert any(t['type'] == 'mmaff.CheckSegLabels'
                   for t in cfg[name].dataset.pipeline)
        seen = set()
        for i in range(len(dataset)):
            seg = dataset[i]['data_samples'].gt_sem_seg.data
            values = set(torch.unique(seg).tolist())
            assert values <= set(range(num_classes)) | {255}
            seen |= values
        assert len(seen - {255}) >= 3, (name, seen)


# ---------------------------------------------------------------------------
# End to end through the tools


@pytest.mark.slow
def test_train_resume_test_end_to_end(tmp_path, toy_ade):
    work = tmp_path / 'work'
    log = train(TOY_ADE, toy_ade, work, interval=2, max_iters=4)
    assert 'Iter(train) [4/4]' in log
    assert len(re.findall(r'Iter\(val\) \[4/4\] .*mIoU: [\d.]+', log)) == 2
    for name in TOY_CLASSES:  # the per-class IoU table
        assert re.search(rf'\|\s+{name}\s+\|', log), name
    assert osp.isfile(work / 'iter_4.pth')
    # --resume picks the latest checkpoint and goes on from iteration 4
    log = train(TOY_ADE, toy_ade, work, '--resume', interval=2, max_iters=6)
    assert 'resumed epoch: 0, iter: 4' in log, log[-4000:]
    assert 'Iter(train) [5/6]' in log and 'Iter(train) [6/6]' in log
    assert 'Iter(train) [1/6]' not in log
    assert osp.isfile(work / 'iter_6.pth')
    # tools/test.py: IoU metric and one overlay drawing per val image
    show = tmp_path / 'show'
    log = success_log(
        run_tool('test.py', TOY_ADE, toy_ade, work / 'iter_6.pth',
                 '--work-dir', tmp_path / 'test', '--show-dir', show))
    assert re.search(r'Iter\(test\) \[4/4\] .*mIoU: [\d.]+', log)
    drawings = sorted(glob.glob(str(show / '**' / '*.png'), recursive=True))
    assert len(drawings) == 4, drawings
    for path in drawings:
        picture = cv2.imread(path)
        name = re.search(r'(ADE_val_\d+)\.jpg', path).group(1)
        label = cv2.imread(
            f'{toy_ade}annotations/validation/{name}.png',
            cv2.IMREAD_UNCHANGED)
        h, w = label.shape
        # titles row, then ground truth | prediction, then the legend
        assert picture.shape[1] == 2 * w and picture.shape[0] > 20 + h
        gt, pred = picture[20:20 + h, :w], picture[20:20 + h, w:]
        # "other" (0, ignored) is the same neutral grey in both maps,
        # whatever the model predicts there
        other = label == 0
        assert other.any() and (~other).any()
        np.testing.assert_array_equal(gt[other], pred[other])
        spread = gt[other].astype(int).max(-1) - gt[other].min(-1)
        assert (spread <= 2).all()
        assert (gt[~other].astype(int).max(-1) - gt[~other].min(-1)
                > 2).mean() > 0.9


@pytest.mark.slow
def test_dist_train_two_processes_on_cpu(tmp_path, toy_ade):
    work = tmp_path / 'dist'
    log = success_log(
        dist_train(TOY_ADE, toy_ade, '--work-dir', work,
                   **schedule(2, max_iters=2)))
    assert 'Distributed launcher: pytorch' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    assert 'mIoU' in log
    assert osp.isfile(work / 'iter_2.pth')


@pytest.mark.slow
def test_toy_voc_trains(tmp_path, toy_voc):
    work = tmp_path / 'voc'
    log = train(TOY_VOC, toy_voc, work, max_iters=1)
    assert 'Iter(train) [1/1]' in log
    assert re.search(r'Iter\(val\) \[4/4\] .*mIoU: [\d.]+', log)
    assert re.search(r'\|\s+background\s+\|', log)
    assert osp.isfile(work / 'iter_1.pth')


# ---------------------------------------------------------------------------
# Bad label files: mmseg alone crashes far from the cause or ignores them
# silently (see configs/segmentation/README.md); the toy configs'
# CheckSegLabels names the file.


def broken_sample(toy_ade: str, tmp_path, split: str,
                  edit) -> tuple[object, int, str]:
    """A copy of the toy set with the first label file of ``split`` passed
    to ``edit``: the toy config's data set of that split, the index of the
    sample with the edited file, and the file."""
    root = tmp_path / 'broken'
    shutil.copytree(toy_ade, root)
    label = sorted(glob.glob(str(root / 'annotations' / split / '*.png')))[0]
    edit(label)
    cfg = Config.fromfile(osp.join(ROOT, TOY_ADE))
    loader = 'train_dataloader' if split == 'training' else 'val_dataloader'
    dataset = build_dataset('mmseg', cfg[loader].dataset, str(root) + '/')
    paths = [dataset.get_data_info(i)['seg_map_path']
             for i in range(len(dataset))]
    return dataset, paths.index(label), label


def edit_label(change):
    """An edit for broken_sample: the label file rewritten as
    change(label)."""

    def edit(path):
        cv2.imwrite(path, change(read_label(path)))

    return edit


def resize_label(scale_w: float, scale_h: float):

    def change(label):
        h, w = label.shape
        return cv2.resize(label, (int(w * scale_w), int(h * scale_h)),
                          interpolation=cv2.INTER_NEAREST)

    return edit_label(change)


@pytest.mark.parametrize('split', ['training', 'validation'])
@pytest.mark.parametrize('scale', [(0.5, 0.5), (1.0, 0.75)])
def test_bad_input_label_size_differs_from_image(tmp_path, toy_ade, split,
                                                 scale):
    # same aspect ratio (half size) or not: both are reported
    dataset, index, label = broken_sample(toy_ade, tmp_path, split,
                                          resize_label(*scale))
    with pytest.raises(ValueError,
                       match=r'is \d+x\d+ \(HxW\) but its image .*\.jpg '
                       r'is 128x\d+') as info:
        dataset[index]
    assert label in str(info.value)


def test_bad_input_missing_label_file(tmp_path, toy_ade):
    dataset, index, label = broken_sample(toy_ade, tmp_path, 'training',
                                          os.remove)
    with pytest.raises(FileNotFoundError, match=re.escape(label)):
        dataset[index]


def add_class_id(value: int):

    def change(label):
        label[:4, :4] = value
        return label

    return edit_label(change)


@pytest.mark.parametrize('split', ['training', 'validation'])
def test_bad_input_class_ids_above_num_classes(tmp_path, toy_ade, split):
    # 7 in the file is class 6 after reduce_zero_label; the model has 5
    dataset, index, label = broken_sample(toy_ade, tmp_path, split,
                                          add_class_id(7))
    with pytest.raises(ValueError,
                       match=r'class ids \[6\] on 16 pixels, outside 0\.\.4 '
                       r'.*the file holds \[7\]') as info:
        dataset[index]
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
    to_rgb = edit_label(lambda label: np.stack([label] * 3, axis=-1))
    dataset, index, _ = broken_sample(toy_ade, tmp_path, 'training', to_rgb)
    with pytest.raises(ValueError, match=r'has shape \(128, \d+, 3\)'):
        dataset[index]
