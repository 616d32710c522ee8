"""demo/image_demo.py on the toy sets' images with briefly trained
checkpoints of each task (fixtures in conftest.py), and its errors."""
import glob
import os.path as osp
import shutil
import subprocess

import cv2
import pytest
from conftest import TOY_CONFIGS
from helpers import ROOT, import_file, run_python, success_log

DEMO = 'demo/image_demo.py'


def demo(*args):
    return run_python(DEMO, *args)


def demo_here(capsys, *args) -> subprocess.CompletedProcess:
    """``demo`` without a new interpreter: the errors are decided in
    ``main``, which catches them (a traceback would fail the test)."""
    main = import_file(osp.join(ROOT, DEMO)).main
    capsys.readouterr()
    argv = [str(arg) for arg in args]
    returncode = main(argv)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(argv, returncode, captured.out,
                                       captured.err)


def summaries(log: str) -> list[str]:
    """The per-image lines: ``IMAGE: summary -> PNG``."""
    return [line for line in log.splitlines() if ' -> ' in line]


def error_line(result) -> str:
    """The single ``error:`` line of a failed run without traceback."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert 'Traceback' not in output, output[-3000:]
    errors = [line for line in output.splitlines()
              if line.startswith('error:')]
    assert len(errors) == 1, output[-3000:]
    return errors[0]


def check_overlay(png: str, image_path: str) -> None:
    """The overlay exists, is at least as large as the image and is not
    the image itself."""
    overlay = cv2.imread(png)
    image = cv2.imread(image_path)
    assert overlay is not None, png
    assert overlay.shape[0] >= image.shape[0]
    assert overlay.shape[1] >= image.shape[1]
    assert overlay.shape != image.shape or (overlay != image).any()


@pytest.mark.slow
def test_detection_boxes_on_a_folder(trained_det, toy_coco, tmp_path):
    images = sorted(glob.glob(toy_coco + 'val/*.jpg'))
    out = tmp_path / 'out'
    log = success_log(
        demo(toy_coco + 'val', TOY_CONFIGS['detection'], trained_det,
             '--out-dir', out, '--score-thr', '0', '--device', 'cpu'))
    lines = summaries(log)
    assert len(lines) == len(images) == 4
    for line, image in zip(lines, images):
        # threshold 0: every kept box is listed, with a toy class name
        assert line.startswith(f'{image}: ')
        count = int(line.split(': ')[1].split()[0])
        assert count > 0
        assert any(name in line for name in ('circle', 'square', 'triangle',
                                             'star'))
        png = out / (osp.splitext(osp.basename(image))[0] + '.png')
        assert line.endswith(f' -> {png}')
        check_overlay(str(png), image)


@pytest.mark.slow
def test_segmentation_label_map_with_legend(trained_seg, toy_ade, tmp_path):
    images = sorted(glob.glob(toy_ade + 'images/validation/*.jpg'))[:2]
    log = success_log(
        demo(*images, TOY_CONFIGS['segmentation'], trained_seg, '--out-dir',
             tmp_path))
    lines = summaries(log)
    assert len(lines) == 2
    for line, image in zip(lines, images):
        h, w = cv2.imread(image).shape[:2]
        assert f'{w}x{h} label map' in line
        shares = [float(part.rsplit(' ', 1)[1].strip('<%'))
                  for part in line.split('classes: ')[1].split(' -> ')[0]
                  .split(', ')]
        assert abs(sum(shares) - 100) < 0.5
        png = tmp_path / (osp.splitext(osp.basename(image))[0] + '.png')
        overlay = cv2.imread(str(png))
        # drawn at twice the size (small image), legend and caption below
        assert overlay.shape[1] == 2 * w and overlay.shape[0] > 2 * h + 30


@pytest.mark.slow
def test_classification_top5_by_config_name(trained_cls, toy_imagenet,
                                             tmp_path):
    image = sorted(glob.glob(toy_imagenet + 'val/*/*.JPEG'))[0]
    log = success_log(
        demo(image, osp.basename(TOY_CONFIGS['classification']), trained_cls,
             '--out-dir', tmp_path, '--topk', '3'))
    line, = summaries(log)
    entries = line.split('top-3: ')[1].split(' -> ')[0].split(', ')
    assert len(entries) == 3
    scores = [float(entry.rsplit(' ', 1)[1]) for entry in entries]
    assert scores == sorted(scores, reverse=True)
    check_overlay(str(tmp_path / (osp.splitext(osp.basename(image))[0] +
                                  '.png')), image)


def test_missing_image_and_checkpoint(capsys, tmp_path, trained_cls,
                                      toy_imagenet):
    config = TOY_CONFIGS['classification']
    image = sorted(glob.glob(toy_imagenet + 'val/*/*.JPEG'))[0]
    line = error_line(
        demo_here(capsys, tmp_path / 'nope.jpg', config, trained_cls))
    assert line == f'error: image {tmp_path / "nope.jpg"} does not exist'
    line = error_line(demo_here(capsys, image, config, tmp_path / 'no.pth'))
    assert str(tmp_path / 'no.pth') in line and 'does not exist' in line
    (tmp_path / 'text.pth').write_text('no checkpoint')
    line = error_line(
        demo_here(capsys, image, config, tmp_path / 'text.pth'))
    assert str(tmp_path / 'text.pth') in line
    assert 'not a PyTorch checkpoint' in line
    line = error_line(demo_here(capsys, tmp_path, config, trained_cls))
    assert line.startswith(f'error: folder {tmp_path} holds no image')
    line = error_line(
        demo_here(capsys, image, 'no_such_config.py', trained_cls))
    assert 'no_such_config.py does not exist' in line
    line = error_line(
        demo_here(capsys, image, config, trained_cls, '--device', 'tpu'))
    assert line == 'error: --device tpu: use cpu, cuda or cuda:N'


def test_unreadable_image_is_reported_and_the_rest_run(
        tmp_path, trained_cls, toy_imagenet):
    good = sorted(glob.glob(toy_imagenet + 'val/*/*.JPEG'))[0]
    folder = tmp_path / 'images'
    folder.mkdir()
    shutil.copy(good, folder / 'a_good.jpg')
    (folder / 'b_broken.jpg').write_bytes(b'not a jpeg at all')
    result = demo(folder, TOY_CONFIGS['classification'], trained_cls,
                  '--out-dir', tmp_path / 'out')
    line = error_line(result)
    assert line.startswith(f'error: cannot read image {folder}/b_broken.jpg')
    # the readable one still got its picture and summary
    assert len(summaries(result.stdout)) == 1
    assert (tmp_path / 'out' / 'a_good.png').is_file()


@pytest.mark.slow
def test_checkpoint_of_another_model(trained_seg, toy_imagenet, tmp_path):
    image = sorted(glob.glob(toy_imagenet + 'val/*/*.JPEG'))[0]
    line = error_line(
        demo(image, TOY_CONFIGS['classification'], trained_seg, '--out-dir',
             tmp_path))
    assert trained_seg in line
    assert 'missing' in line and 'unexpected' in line
    assert not list(tmp_path.glob('*.png'))
