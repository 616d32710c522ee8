"""The command-line entry points run as a user runs them."""
import os.path as osp

import numpy as np
import pytest
import torch
from helpers import ROOT, run_python
from official_reference import OfficialAffNet

import mmaff
from mmaff.checkpoint import convert_official_state_dict

TIME_VARIANTS = 'tools/analysis_tools/time_variants.py'


def test_time_variants_on_real_photos():
    result = run_python(TIME_VARIANTS, '--archs', 'et', '--repeats', '1')
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '1,436,264 parameters' in out
    for line in ('out_indices 2 (1, 64, 32, 32)  stride 8',
                 'out_indices 5 (1, 576, 8, 8)  stride 32'):
        assert line in out
    assert 'chelsea' in out and ' ms' in out


def test_time_variants_with_converted_checkpoint(tmp_path):
    torch.manual_seed(0)
    official = OfficialAffNet('et').eval()
    path = tmp_path / 'affnet-et.pth'
    torch.save({'state_dict': convert_official_state_dict(
        official.state_dict())}, path)
    result = run_python(TIME_VARIANTS, '--archs', 'et', '--repeats', '1',
                        '--checkpoint', str(path))
    assert result.returncode == 0, result.stderr
    assert 'top-5 class ids' in result.stdout
    result = run_python(TIME_VARIANTS, '--checkpoint', str(path))
    assert result.returncode != 0
    assert 'exactly one arch' in result.stderr


def test_mim_folder_exposes_configs_and_tools():
    mim = osp.join(osp.dirname(mmaff.__file__), '.mim')
    for name in ('configs', 'tools'):
        path = osp.join(mim, name)
        assert osp.isdir(path), f'{path} missing: reinstall with pip -e .'
        assert osp.samefile(path, osp.join(ROOT, name))
    assert osp.isfile(osp.join(mim, 'tools', 'train.py'))


def test_visualize_kernels_writes_pictures(tmp_path):
    import cv2
    import numpy as np
    cfg = tmp_path / 'tiny.py'
    cfg.write_text(
        "default_scope = 'mmpretrain'\n"
        "custom_imports = dict(imports=['mmaff'])\n"
        "model = dict(type='ImageClassifier', data_preprocessor=dict("
        "type='ClsDataPreprocessor', mean=[0, 0, 0], std=[255, 255, 255], "
        "to_rgb=True), backbone=dict(type='mmaff.AFFNet', arch='et'), "
        "neck=dict(type='GlobalAveragePooling'), head=dict("
        "type='LinearClsHead', num_classes=10, in_channels=576))\n")
    image = tmp_path / 'photo.png'
    rng = np.random.default_rng(0)
    cv2.imwrite(str(image), rng.integers(0, 255, (80, 96, 3), np.uint8))
    out = tmp_path / 'kernels'
    result = run_python('tools/analysis_tools/visualize_kernels.py',
                        str(cfg), str(image), '--size', '64', '--channels',
                        '4', '--out-dir', str(out))
    assert result.returncode == 0, result.stderr
    pictures = sorted(out.glob('*.png'))
    # 9 filters in AFFNet-ET, a kernel and a mask picture each
    assert len(pictures) == 18
    for path in pictures:
        picture = cv2.imread(str(path))
        assert picture is not None and picture.std() > 0
    assert '8x8 map, 64 channels' in result.stdout
    result = run_python('tools/analysis_tools/visualize_kernels.py',
                        str(cfg), str(tmp_path / 'missing.png'))
    assert result.returncode != 0 and 'cannot read image' in result.stderr


@pytest.mark.slow
def test_make_demo_trains_toy_segmenter(tmp_path):
    """tools/train_toy_segmenter.py (``make demo``) end to end, with a
    short schedule."""
    import cv2
    work = tmp_path / 'demo'
    result = run_python('tools/train_toy_segmenter.py', '--iters', '10',
                        '--work-dir', str(work), '--data-root',
                        str(tmp_path / 'toy_ade20k'))
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert 'Iter(train) [10/10]' in out
    miou = float(out.split('final validation mIoU: ')[1].split()[0])
    assert 0 <= miou <= 100
    overlays = sorted((work / 'overlays').glob('*.png'))
    assert len(overlays) == 16  # the toy set's validation images
    picture = cv2.imread(str(overlays[0]))
    image = cv2.imread(
        str(tmp_path / 'toy_ade20k' / 'images' / 'validation' /
            overlays[0].name.replace('.png', '.jpg')))
    # titles, then image | ground truth | prediction enlarged 2x, then the
    # legend
    h, w = 2 * image.shape[0], 2 * image.shape[1]
    assert picture.shape[1] == 3 * w and picture.shape[0] > 20 + h
    # the prediction is drawn grey exactly where the ground truth is
    # ignored ("other")
    gt, pred = picture[20:20 + h, w:2 * w], picture[20:20 + h, 2 * w:]
    grey = (gt.max(-1).astype(int) - gt.min(-1)) <= 2
    assert 0 < grey.mean() < 1
    np.testing.assert_array_equal(gt[grey], pred[grey])


def test_benchmark_curves_print_missing_metrics_as_dashes(capsys):
    from helpers import import_file
    print_curves = import_file(
        osp.join(ROOT, 'tools', 'benchmarks',
                 'benchmark_utils.py')).print_curves
    results = {
        'model': dict(s_per_iter=0.5, curve=[
            dict(minutes=1., iters=10),  # a detector with no boxes yet
            dict(minutes=2., iters=20, **{'coco/bbox_mAP_50': 0.6}),
        ])
    }
    print_curves(results, {'mAP@0.5': 'coco/bbox_mAP_50'},
                 'coco/bbox_mAP_50', 0.5)
    lines = capsys.readouterr().out.splitlines()
    assert 'coco/bbox_mAP_50 >= 0.5 at 2.0 min' in lines[0]
    assert lines[2].split() == ['1.00', '10', '-']
    assert lines[3].split() == ['2.00', '20', '0.600']


def test_tools_take_shipped_config_names():
    """A bare config name is the shipped config of that name (as mim finds
    it); an unknown one is one clear line."""
    from mmaff.utils.config import find_config
    found = find_config('ssdlite_affnet-et_8xb24-600e_coco.py')
    assert osp.samefile(
        found, osp.join(ROOT, 'configs', 'detection',
                        'ssdlite_affnet-et_8xb24-600e_coco.py'))
    result = run_python('tools/analysis_tools/get_flops.py', 'no_such.py')
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        'error: config file no_such.py does not exist, nor does a config of '
        'that name ship with mmaff')
