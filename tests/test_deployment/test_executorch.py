"""tools/deployment/export_executorch.py.

ExecuTorch itself lives in its own venv (``make executorch-env``, see
docs/deployment_executorch.md), which ``make test`` does not make: in the
main venv these tests check what the ExecuTorch path lowers, the
``torch.export`` program with the matmul DFT, against eager PyTorch, and the
tool's argument errors. The lowering to XNNPACK and ExecuTorch's runtime
are checked by the tool itself in that venv (``--check``, see
docs/deployment_executorch.md), not here.
"""
import copy
import os.path as osp

import pytest
import torch
from helpers import (
    ROOT,
    build_classifier,
    import_file,
    load_config,
    run_python,
)

from mmaff.models.layers import AdaptiveFrequencyFilter

TOOL = osp.join(ROOT, 'tools', 'deployment', 'export_executorch.py')
CONFIG = 'configs/classification/affnet-et_8xb128_in1k.py'


@pytest.fixture(scope='module')
def tool():
    return import_file(TOOL)


def graph_ops(program) -> set[str]:
    """The operators of ``program`` once the filters' autocast regions
    are inlined, as the tool does before folding constants."""
    program = program.run_decompositions({})
    return {str(node.target) for node in program.graph.nodes
            if node.op == 'call_function'}


def assert_close_to_eager(program, reference, inputs):
    with torch.no_grad():
        expected = reference(inputs)
        actual = program.module()(inputs)
    from mmaff.deployment.export import flatten_outputs
    expected, actual = flatten_outputs(expected), flatten_outputs(actual)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        assert float((a - e).abs().max()) <= 1e-4 * max(
            1., float(e.abs().max()))


def test_classifier_program_uses_matmul_dft_and_matches_eager(tool):
    torch.manual_seed(0)
    model = build_classifier('et', num_classes=4).eval()
    # the reference keeps torch.fft: the program must equal the paper's
    # filter, not only the matmul form of it
    reference = copy.deepcopy(model)
    program, module = tool.export_program(model, (64, 64))
    assert {m.dft_mode for m in model.modules()
            if isinstance(m, AdaptiveFrequencyFilter)} == {'matmul'}
    ops = graph_ops(program)
    assert not any('fft' in op for op in ops), ops
    assert 'aten.matmul.default' in ops, ops
    # softshrink traced as x - clamp(x) (XNNPACK runs it), only while
    # exporting
    assert 'aten.clamp.default' in ops and 'aten.sign.default' not in ops
    assert torch.nn.functional.softshrink.__name__ == 'softshrink'
    inputs = torch.randn(1, 3, 64, 64)
    assert_close_to_eager(program, lambda x: reference(x, mode='tensor'),
                          inputs)


def test_detector_program_matches_eager(tool):
    from mmengine.registry import init_default_scope

    from mmaff.utils.config import build_model_from_config
    cfg = load_config('detection', 'ssdlite_affnet-et_8xb24-600e_coco.py')
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = build_model_from_config(cfg)
    reference = copy.deepcopy(model)
    program, _ = tool.export_program(model, (128, 128))
    assert not any('fft' in op for op in graph_ops(program))
    assert_close_to_eager(program, lambda x: reference(x, mode='tensor'),
                          torch.randn(1, 3, 128, 128))


@pytest.mark.parametrize('args, message', [
    (['--shape', '1', '2', '3'], '--shape takes H or H W'),
    (['--shape', '0'], '--shape takes H or H W'),
    (['--with', 'a.pte'], '--with needs --time N'),
    (['--time', '3', '--with', 'no/such.pte'], '--with: no file no/such.pte'),
    (['--threads', '0'], '--threads takes a number >= 1'),
])
def test_bad_arguments_give_one_error_line(args, message):
    result = run_python(TOOL, CONFIG, *args)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ' + message), \
        result.stderr


def test_without_executorch_says_how_to_get_it():
    """The main venv has no executorch (it lives in .venv-executorch, see
    docs/deployment_executorch.md); hidden here in case it is installed."""
    hide = ("import runpy, sys; sys.modules['executorch'] = None; "
            f"sys.argv = [{TOOL!r}, {CONFIG!r}]; "
            f"runpy.run_path({TOOL!r}, run_name='__main__')")
    result = run_python('-c', hide)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'make executorch-env' in lines[0], \
        result.stderr
