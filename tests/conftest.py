"""Fixtures shared by the tests: the toy data sets and toy checkpoints,
generated once per test run by the tools in tools/dataset_converters and
tools/train.py. The plain helper functions are in helpers.py.

``make test`` runs the tests in parallel processes (pytest-xdist, one file
per process at a time): the session fixtures here are built by the first
process that needs them, under a file lock, and read by the others."""
import json
import os

import pytest
import torch
from filelock import FileLock
from helpers import make_toy, train


def pytest_configure(config) -> None:
    workers = os.environ.get('PYTEST_XDIST_WORKER_COUNT')
    if workers and int(workers) > 1:
        # The workers share the cores: one compute thread each, also in the
        # tools they run, instead of every process spinning on all cores.
        os.environ['OMP_NUM_THREADS'] = '1'
        torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def no_default_scope() -> None:
    """Each test starts with no current mmengine default scope.

    Registries build in the current default scope, and an in-process
    ``Runner`` or ``init_default_scope`` leaves its scope current for every
    later test of the same worker: without this a test's outcome would depend
    on which files pytest-xdist happened to run before it in that process
    (a CI run built a head's loss in the ``mmengine`` scope left by a Runner
    and failed)."""
    from mmengine.registry import DefaultScope
    DefaultScope._instance_dict.clear()


def _built_once(tmp_path_factory, name: str, build) -> str:
    """``build(folder)`` run once per test run, also across pytest-xdist
    workers (their temporary folders share a parent); returns what it
    returned, a path."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        root = root.parent
    folder = root / f'shared_{name}'
    record = root / f'shared_{name}.json'
    with FileLock(str(root / f'shared_{name}.lock')):
        if not record.exists():
            folder.mkdir(exist_ok=True)
            record.write_text(json.dumps(build(folder)))
        return json.loads(record.read_text())


def _toy_set(fixture: str, folder: str, kind: str, *options: str):
    """A session fixture named ``fixture``: the toy set ``kind`` of
    helpers.make_toy (with ``options``), generated once into ``folder``."""

    @pytest.fixture(scope='session', name=fixture)
    def toy_set(tmp_path_factory) -> str:
        return _built_once(tmp_path_factory, folder,
                           lambda out: make_toy(kind, out, *options))

    return toy_set


toy_imagenet = _toy_set('toy_imagenet', 'toy_imagenet', 'imagenet')
toy_coco = _toy_set('toy_coco', 'toy_coco', 'coco')
toy_ade = _toy_set('toy_ade', 'toy_ade20k', 'ade20k')
toy_voc = _toy_set('toy_voc', 'toy_voc', 'ade20k', '--layout', 'voc')


# Checkpoints of the toy configs after a few training iterations: real
# runner checkpoints (meta with the classes) of barely trained models, for
# the tools that read one (demo/image_demo.py, export, test.py).
TOY_CONFIGS = {
    'detection': 'configs/detection/ssdlite_affnet-et_8xb24-600e_coco_toy.py',
    'segmentation': ('configs/segmentation/'
                     'deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512_toy.py'),
    'classification': 'configs/classification/affnet-et_8xb128_in1k_toy.py',
}


def _trained(tmp_path_factory, task: str, data_root: str,
             **train_cfg) -> str:

    def build(work) -> str:
        train(TOY_CONFIGS[task], data_root, work, **train_cfg)
        with open(work / 'last_checkpoint') as f:
            return f.read().strip()

    return _built_once(tmp_path_factory, f'trained_{task}', build)


@pytest.fixture(scope='session')
def trained_det(tmp_path_factory, toy_coco) -> str:
    return _trained(tmp_path_factory, 'detection', toy_coco, max_epochs=1)


@pytest.fixture(scope='session')
def trained_seg(tmp_path_factory, toy_ade) -> str:
    return _trained(tmp_path_factory, 'segmentation', toy_ade, max_iters=4,
                    interval=4)


@pytest.fixture(scope='session')
def trained_cls(tmp_path_factory, toy_imagenet) -> str:
    return _trained(tmp_path_factory, 'classification', toy_imagenet,
                    max_epochs=1)


@pytest.fixture(scope='session')
def sharp_det(tmp_path_factory, trained_det, toy_coco) -> str:
    """trained_det with its classification convs redrawn (no bias) so
    that their logits spread with std 1 on a toy image. After a few toy
    iterations the detector scores every anchor 0.200 +- 0.0001 (a
    softmax over 4 classes and background), where float rounding alone
    decides which boxes NMS keeps. A fixed redraw (std 20) was not enough:
    the scale of the trained features varies from one training run to the
    next (one CI run left 7 of 150 detections clear of ties; on a freshly
    initialised detector std 20 saturates every top score to 1.0). Scaled
    to the features, the scores are apart and the detections are decided
    by the model."""

    def build(folder) -> str:
        from pathlib import Path

        from mmaff.deployment.pipeline import ExportPreprocessor
        from mmaff.utils.config import build_model_from_config, read_config
        cfg = read_config(TOY_CONFIGS['detection'])
        model = build_model_from_config(cfg, trained_det)
        image = sorted(Path(toy_coco, 'val').glob('*.jpg'))[0]
        inputs, _ = ExportPreprocessor(cfg, None)(str(image))
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            convs = [level[1] for level in model.bbox_head.cls_convs]
            for conv in convs:
                conv.weight.copy_(
                    torch.randn(conv.weight.shape, generator=gen))
                conv.bias.zero_()
            cls_scores, _ = model(inputs, mode='tensor')
            for conv, logits in zip(convs, cls_scores):
                conv.weight.mul_(1 / float(logits.std()))
            cls_scores, _ = model(inputs, mode='tensor')
        assert len(convs) == 6  # one per SSDLite level
        for logits in cls_scores:
            assert abs(float(logits.std()) - 1) < 1e-3
        ckpt = torch.load(trained_det, map_location='cpu', weights_only=False)
        ckpt['state_dict'] = model.state_dict()
        path = folder / 'sharp_det.pth'
        torch.save(ckpt, path)
        return str(path)

    return _built_once(tmp_path_factory, 'sharp_det', build)
