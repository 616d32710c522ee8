import math

import pytest
import torch
from helpers import run_python

from mmaff.models import AFFNet
from mmaff.models.layers import AdaptiveFrequencyFilter
from mmaff.utils.flops import fft_mac_count, flop_analyzer

PAPER_GMACS = {'et': 0.4, 't': 0.8, 'base': 1.5}


def count(model, *inputs):
    analyzer = flop_analyzer(model.eval(), inputs)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return analyzer


@pytest.mark.parametrize('hw', [(8, 8), (16, 16), (9, 12)])
def test_fft_handles_count_and_scale_with_size(hw):
    analyzer = count(AdaptiveFrequencyFilter(16), torch.rand(2, 16, *hw))
    ops = analyzer.by_operator()
    expected = fft_mac_count(2 * 16, hw)
    assert expected > 0
    assert ops['fft_rfft2'] == expected and ops['fft_irfft2'] == expected
    n = hw[0] * hw[1]
    assert expected == int(2.5 * 32 * n * math.log2(n))
    assert 'fft_rfft2' not in analyzer.unsupported_ops()


def test_broadcast_matmul_counts_batch_of_second_operand():

    class LeftMatmul(torch.nn.Module):

        def forward(self, x):
            return torch.matmul(torch.ones(6, 5), x)

    ops = count(LeftMatmul(), torch.rand(2, 3, 5, 4)).by_operator()
    assert ops['matmul'] == 2 * 3 * 6 * 5 * 4


@pytest.mark.parametrize('arch', ['et', 't', 'base'])
def test_classifier_flops_close_to_paper(arch):

    class Classifier(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.backbone = AFFNet(arch)
            self.fc = torch.nn.Linear(self.backbone.out_channels[-1], 1000)

        def forward(self, x):
            return self.fc(self.backbone(x)[-1].mean((2, 3)))

    model = Classifier()
    total = count(model, torch.rand(1, 3, 256, 256)).total()
    assert abs(total / 1e9 / PAPER_GMACS[arch] - 1) < 0.10


def test_get_flops_tool_on_a_detection_config():
    result = run_python(
        'tools/analysis_tools/get_flops.py',
        'configs/detection/ssdlite_affnet-et_8xb24-600e_coco.py', '--shape',
        '320', timeout=600)
    assert result.returncode == 0, result.stderr
    assert 'params: 1.889 M' in result.stdout
    assert 'backbone.layers.2' in result.stdout
    fft_line = [line for line in result.stdout.splitlines()
                if 'of which FFTs' in line][0]
    assert float(fft_line.split('of which FFTs')[1].split()[0]) > 0
