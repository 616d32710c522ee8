"""Fixtures shared by the tests: the toy data sets, generated once per
session by the tools in tools/dataset_converters. The plain helper
functions are in helpers.py."""
import pytest
from helpers import make_toy, train


@pytest.fixture(scope='session')
def toy_imagenet(tmp_path_factory) -> str:
    return make_toy('imagenet', tmp_path_factory.mktemp('toy_imagenet'))


@pytest.fixture(scope='session')
def toy_coco(tmp_path_factory) -> str:
    return make_toy('coco', tmp_path_factory.mktemp('toy_coco'))


@pytest.fixture(scope='session')
def toy_ade(tmp_path_factory) -> str:
    return make_toy('ade20k', tmp_path_factory.mktemp('toy_ade20k'))


@pytest.fixture(scope='session')
def toy_voc(tmp_path_factory) -> str:
    return make_toy('ade20k', tmp_path_factory.mktemp('toy_voc'), '--layout',
                    'voc')


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
    work = tmp_path_factory.mktemp(f'trained_{task}')
    train(TOY_CONFIGS[task], data_root, work, **train_cfg)
    with open(work / 'last_checkpoint') as f:
        return f.read().strip()


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
