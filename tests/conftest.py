"""Fixtures shared by the tests: the toy data sets, generated once per
session by the tools in tools/dataset_converters. The plain helper
functions are in helpers.py."""
import pytest
from helpers import make_toy


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
