"""The benchmark scripts of tools/benchmarks run end to end and reject bad
options clearly (their figures are not asserted: they live in
docs/benchmarks.md)."""
import json
import os.path as osp
import sys

import pytest
import torch
from helpers import ROOT, import_file

# the benchmark helpers live beside their scripts, outside the package
benchmark_utils = import_file(
    osp.join(ROOT, 'tools', 'benchmarks', 'benchmark_utils.py'))
machine_description = benchmark_utils.machine_description
time_interleaved = benchmark_utils.time_interleaved


def test_time_interleaved_times_every_function_every_round():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in 'abc'}
    samples = time_interleaved(fns, rounds=4, warmup=2)
    assert {k: len(v) for k, v in samples.items()} == {'a': 4, 'b': 4,
                                                       'c': 4}
    assert all(t >= 0 for v in samples.values() for t in v)
    assert len(calls) == 3 * (4 + 2)
    # shuffled rounds: not always the same order after the warm-up
    timed = [calls[6 + 3 * r:9 + 3 * r] for r in range(4)]
    assert len({tuple(r) for r in timed}) > 1
    with pytest.raises(ValueError, match='rounds'):
        time_interleaved(fns, rounds=0)


def test_machine_description():
    info = machine_description()
    assert info['torch'] == torch.__version__
    assert int(info['torch threads']) == torch.get_num_threads()


@pytest.mark.slow
def test_speed_benchmark_writes_tables_plots_and_samples(tmp_path):
    speed = load_speed_script()
    threads = torch.get_num_threads()
    try:
        speed.main([
            '--sections', 'models', 'gflops', 'mixer', 'train',
            '--size', '64', '--batches', '1', '2', '--rounds', '2',
            '--mixer-sizes', '8', '16', '--mixer-budget-s', '0.05',
            '--train-rounds', '1', '--train-sizes', '96', '64',
            '--train-batches', '2', '2', '--threads', '1',
            '--out-dir', str(tmp_path)
        ])
    finally:
        torch.set_num_threads(threads)
    tables = (tmp_path / 'tables.md').read_text()
    for heading in ('Inference throughput', 'Throughput ratios',
                    'Achieved throughput', 'Token mixers',
                    'Growth exponent', 'Training step'):
        assert heading in tables
    assert 'AFFNet-ET / MobileNetV2-1.0 | 2 |' in tables
    for name in ('models_cpu.png', 'mixer_scaling_cpu.png'):
        assert (tmp_path / name).read_bytes()[:4] == b'\x89PNG'
    results = json.loads((tmp_path / 'results.json').read_text())
    assert len(results['models_b2']['AFFNet|prepared']) == 2
    assert len(results['mixer_16']['AFF filter']) >= 3
    assert len(results['train_segmentation']['DeepLabv3-AFFNet-ET']) == 1
    assert set(results['dense_conv_gmacs']) == {'1', '2'}
    assert all(v > 0 for v in results['dense_conv_gmacs'].values())


def load_speed_script():
    sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmarks'))
    try:
        import speed
    finally:
        sys.path.pop(0)
    return speed


@pytest.mark.parametrize('argv, message', [
    (['--amp', 'bf16'], '--amp is for --device cuda'),
    (['--sections', 'gflops'], 'needs the models section'),
] + ([] if torch.cuda.is_available() else [
    (['--device', 'cuda'], 'no CUDA device'),
]))
def test_speed_benchmark_rejects_bad_options_clearly(argv, message, tmp_path):
    speed = load_speed_script()
    threads = torch.get_num_threads()
    try:
        with pytest.raises(SystemExit, match=message):
            speed.main(argv + ['--out-dir', str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
