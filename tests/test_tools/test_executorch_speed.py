"""tools/benchmarks/executorch_speed.py: the models it times and the
program it lowers for the one not covered elsewhere (SSDLite on
MobileViT-XXS). ExecuTorch itself runs in its own venv (the benchmark's
--check); make test's venv has none, which the tool says in one line."""
import sys

import torch
from helpers import ROOT, import_file

executorch_speed = import_file(
    f'{ROOT}/tools/benchmarks/executorch_speed.py')


def test_times_the_classifiers_and_ssdlites_named():
    configs = executorch_speed.model_configs()
    assert {n: size for n, (_, size) in configs.items()} == {
        'AFFNet-ET': 256, 'MobileViT-XXS': 256, 'MobileNetV2': 256,
        'SSDLite-AFFNet-ET': 320, 'SSDLite-MobileViT-XXS': 320,
        'SSDLite-MobileNetV2': 320}
    backbone = configs['SSDLite-MobileViT-XXS'][0].model.backbone
    assert backbone.type == 'mmpretrain.BenchMobileViT'
    assert backbone.arch == 'xx_small'


def test_ssdlite_mobilevit_program_equals_eager():
    """The torch.export program ExecuTorch would lower (SSDLite head maps,
    no NMS) gives the eager outputs."""
    from mmengine.model import revert_sync_batchnorm

    from mmaff.deployment.export import flatten_outputs
    from mmaff.utils.config import build_model_from_config
    sys.path.insert(0, f'{ROOT}/tools/deployment')
    from export_executorch import export_program
    cfg, _ = executorch_speed.model_configs()['SSDLite-MobileViT-XXS']
    torch.manual_seed(0)
    model = revert_sync_batchnorm(build_model_from_config(cfg)).eval()
    program, module = export_program(model, (128, 128))
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        expected = flatten_outputs(module(x))
        actual = flatten_outputs(program.module()(x))
    assert len(actual) == len(expected) == 12  # 6 levels, scores and boxes
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, atol=1e-4, rtol=1e-4)


def test_says_how_to_get_executorch(capsys):
    assert executorch_speed.main(['--runs', '1']) == 1
    err = capsys.readouterr().err
    assert 'executorch is not installed' in err
    assert 'make executorch-env' in err
