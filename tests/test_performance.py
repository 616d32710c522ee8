"""The inference optimisations keep outputs and checkpoints unchanged, and
the speed benchmark runs end to end (its figures are not asserted: they
live in docs/benchmarks.md)."""
import copy
import json
import os.path as osp
import sys

import pytest
import torch
from helpers import ROOT, build_classifier, import_file
from official_reference import AFNO2DChannelFirst, OfficialAffNet

from mmaff.checkpoint import convert_official_state_dict
from mmaff.models.layers import AdaptiveFrequencyFilter, set_dft_mode
from mmaff.utils import fuse_for_inference, tune_malloc

# the benchmark helpers live beside their scripts, outside the package
benchmark_utils = import_file(
    osp.join(ROOT, 'tools', 'benchmarks', 'benchmark_utils.py'))
machine_description = benchmark_utils.machine_description
time_interleaved = benchmark_utils.time_interleaved
CL = torch.channels_last


def strong_official_filter(channels: int, seed: int = 0):
    """Official filter whose mask is far from zero (the 0.02 init leaves
    most of it in the soft-shrink dead zone, hiding mistakes)."""
    torch.manual_seed(seed)
    official = AFNO2DChannelFirst(channels)
    with torch.no_grad():
        for p in official.parameters():
            p.normal_(0, 0.3)
    ours = AdaptiveFrequencyFilter(channels)
    ours.load_state_dict(official.state_dict())
    return official, ours


@pytest.mark.parametrize('hw', [(16, 16), (9, 12), (7, 5)])
def test_filter_matches_official_in_every_mode(hw):
    official, ours = strong_official_filter(64)
    x = torch.randn(2, 64, *hw)
    expected = official(x)
    assert (expected - x).abs().max() > 0.1  # the mask does something
    torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # cached block weights
        torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            ours(x.contiguous(memory_format=CL)), expected, rtol=1e-5,
            atol=1e-5)
    set_dft_mode(ours, 'matmul')
    torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('hw', [(9, 12), (7, 5)])  # torch.fft, dense DFT
@pytest.mark.parametrize('dft_mode', ['fft', 'matmul'])
@pytest.mark.parametrize('memory_format', [torch.contiguous_format, CL])
def test_filter_gradients_match_official(dft_mode, memory_format, hw):
    official, ours = strong_official_filter(32)
    set_dft_mode(ours, dft_mode)
    x = torch.randn(2, 32, *hw)
    weight = torch.randn(2, 32, *hw)
    grads = []
    for module, inp in ((official, x),
                        (ours, x.contiguous(memory_format=memory_format))):
        inp = inp.clone().requires_grad_(True)
        (module(inp) * weight).sum().backward()
        grads.append([inp.grad] + [p.grad for p in module.parameters()])
    for ref, got in zip(*grads):
        assert ref.abs().max() > 0
        # float32 throughout: relative to the whole tensor, not per element
        assert (got - ref).norm() <= 1e-5 * ref.norm()


def test_filter_keeps_the_memory_format_of_its_input():
    module = AdaptiveFrequencyFilter(32).eval()
    x = torch.randn(2, 32, 8, 6)
    with torch.no_grad():
        assert module(x).is_contiguous()
        assert module(x.contiguous(memory_format=CL)).is_contiguous(
            memory_format=CL)


def test_weight_cache_follows_parameter_changes():
    """Inference caches the real block weights; optimizer steps,
    load_state_dict, writes through ``.data`` and dtype changes must not
    leave them stale."""
    official, ours = strong_official_filter(32)
    x = torch.randn(1, 32, 8, 8)
    with torch.no_grad():
        before = ours(x)
    optimizer = torch.optim.SGD(ours.parameters(), lr=0.5)
    ours(x).square().sum().backward()
    optimizer.step()
    fresh = AdaptiveFrequencyFilter(32)
    fresh.load_state_dict(ours.state_dict())
    with torch.no_grad():
        after = ours(x)
        assert (after - before).abs().max() > 1e-3
        torch.testing.assert_close(after, fresh(x), rtol=0, atol=0)
        ours.load_state_dict(official.state_dict())
        torch.testing.assert_close(ours(x), before, rtol=0, atol=0)
    # writes through .data do not bump the version counter (EMA does this)
    ours.w2.data.mul_(-1)
    fresh.load_state_dict(ours.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(ours(x), fresh(x), rtol=0, atol=0)
        assert (ours(x) - before).abs().max() > 1e-3
        ours.double()
        cached = ours(x.double())
    with torch.enable_grad():  # autograd rebuilds the weights every call
        rebuilt = ours(x.double())
    assert cached.dtype == torch.float64
    torch.testing.assert_close(cached, rebuilt, rtol=0, atol=0)


def test_filter_compiles_without_graph_breaks():
    module = AdaptiveFrequencyFilter(16).eval()
    x = torch.randn(1, 16, 8, 8)
    for context in (torch.no_grad, torch.enable_grad):
        torch._dynamo.reset()
        with context():
            explanation = torch._dynamo.explain(module)(x)
        assert explanation.graph_break_count == 0, explanation.break_reasons


def converted_official_classifier(arch: str):
    """Our classifier holding converted weights of the official model (with
    perturbed norms and a strong filter mask), and the official model."""
    torch.manual_seed(0)
    official = OfficialAffNet(arch).eval()
    with torch.no_grad():
        for name, t in official.state_dict().items():
            if not t.is_floating_point():
                continue
            if 'filter' in name:
                t.normal_(0, 0.1)
            else:
                t.add_(torch.rand_like(t) * 0.1)
    model = build_classifier(arch).eval()
    model.load_state_dict(
        convert_official_state_dict(official.state_dict()), strict=True)
    return model, official


def test_fused_channels_last_model_matches_unfused_and_official():
    model, official = converted_official_classifier('et')
    fused = fuse_for_inference(copy.deepcopy(model))
    assert not any(
        isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert fused.backbone.stem.conv.weight.is_contiguous(memory_format=CL)
    x = torch.rand(2, 3, 96, 80)
    with torch.no_grad():
        expected = model(x, mode='tensor')
        features = model.backbone(x)
        logits = fused(x.contiguous(memory_format=CL), mode='tensor')
        fused_features = fused.backbone(x.contiguous(memory_format=CL))
        reference = official(x)
    assert expected.abs().max() > 1e-2
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    for ours, ref in zip(fused_features, features):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits, reference, rtol=1e-4, atol=1e-4)


def test_channels_last_default_matches_contiguous_forward_and_backward():
    """AFFNet runs channels-last unless told otherwise; the values, the
    gradients and the state dict are those of the contiguous run, which is
    the official model's."""
    model, official = converted_official_classifier('et')
    assert model.backbone.channels_last
    contiguous = copy.deepcopy(model)
    contiguous.backbone.channels_last = False
    x = torch.rand(2, 3, 97, 131)
    with torch.no_grad():
        features = model.backbone(x)
        plain = contiguous.backbone(x)
        torch.testing.assert_close(official(x), model(x, mode='tensor'),
                                   rtol=1e-4, atol=1e-4)
    assert all(f.is_contiguous(memory_format=CL) for f in features)
    assert all(f.is_contiguous() for f in plain)
    for ours, ref in zip(features, plain):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    # Gradients: the channels-last run as close to the float64 ones as the
    # contiguous run, tensor by tensor at worst (float32 rounding alone
    # sets them apart by ~1e-4 of a tensor's norm in the last stage)
    grads = []
    weight = torch.randn(2, 1000)
    for net, dtype in ((model, torch.float32), (contiguous, torch.float32),
                       (copy.deepcopy(contiguous).double(), torch.float64)):
        net.zero_grad()
        xg = x.to(dtype).clone().requires_grad_(True)
        (net(xg, mode='tensor') * weight.to(dtype)).sum().backward()
        grads.append([xg.grad] + [p.grad for p in net.parameters()])
    errors = []
    for ours, plain_grad, ref in zip(*grads):
        error = (ours.double() - ref).norm() / ref.norm()
        plain_error = (plain_grad.double() - ref).norm() / ref.norm()
        errors.append((error.item(), plain_error.item()))
    worst, plain_worst = (max(e) for e in zip(*errors))
    assert worst <= max(2 * plain_worst, 1e-5) and worst < 1e-3
    assert model.state_dict().keys() == contiguous.state_dict().keys()


def randomise_bn(model: torch.nn.Module, seed: int = 0) -> None:
    """Running statistics and affine parameters far from the identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.2 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
                m.weight.copy_(1 + 0.3 * torch.randn(n, generator=gen))
                m.bias.copy_(0.2 * torch.randn(n, generator=gen))


def test_folding_conv_module_equals_conv_module_and_follows_changes():
    from mmcv.cnn import ConvModule

    from mmaff.models.layers import FoldingConvModule
    torch.manual_seed(0)
    args = (8, 16, 3)
    kwargs = dict(stride=2, padding=1, groups=2, norm_cfg=dict(type='BN'),
                  act_cfg=dict(type='SiLU'))
    plain, folding = ConvModule(*args, **kwargs), FoldingConvModule(
        *args, **kwargs)
    folding.load_state_dict(plain.state_dict())
    assert folding.state_dict().keys() == plain.state_dict().keys()
    randomise_bn(plain)
    folding.load_state_dict(plain.state_dict())
    plain.eval()
    folding.eval()
    x = torch.randn(2, 8, 12, 10)
    for inp in (x, x.contiguous(memory_format=CL)):
        with torch.no_grad():
            torch.testing.assert_close(folding(inp), plain(inp), rtol=1e-5,
                                       atol=1e-5)
        assert folding._folded is not None
    # an optimizer-style in-place write is seen through the version counter
    with torch.no_grad():
        for module in (plain, folding):
            module.conv.weight.mul_(-2)
            module.norm.running_var.mul_(3)
        torch.testing.assert_close(folding(x), plain(x), rtol=1e-5,
                                   atol=1e-5)
    # load_state_dict and eval() drop the cache
    plain.conv.weight.data.normal_()
    folding.load_state_dict(plain.state_dict())
    assert folding._folded is None
    with torch.no_grad():
        torch.testing.assert_close(folding(x), plain(x), rtol=1e-5,
                                   atol=1e-5)
    folding.eval()
    assert folding._folded is None
    # so are parameters replaced by new ones
    halved = plain.conv.weight.detach() * 0.5
    for module in (plain, folding):
        module.conv.weight = torch.nn.Parameter(halved.clone())
    with torch.no_grad():
        torch.testing.assert_close(folding(x), plain(x), rtol=1e-5,
                                   atol=1e-5)
    # and switching folding off takes effect at once
    folding.fold_bn_in_eval = False
    with torch.no_grad():
        folding.norm.running_mean.data.add_(1)  # unseen by the fold cache
        plain.norm.running_mean.data.add_(1)
        torch.testing.assert_close(folding(x), plain(x), rtol=1e-5,
                                   atol=1e-5)
    folding.fold_bn_in_eval = True
    folding.eval()
    # with autograd or in training the plain layers run
    folding(x).sum().backward()
    assert folding._folded is None and folding.conv.weight.grad is not None
    folding.train()
    with torch.no_grad():
        folding(x)
    assert folding._folded is None


def test_folding_conv_module_prepacks_onednn_and_fuses_activation(
        monkeypatch):
    from mmcv.cnn import ConvModule

    from mmaff.models.layers import FoldingConvModule
    from mmaff.models.layers import folding_conv_module as fcm
    ops = fcm.onednn_conv_ops()
    assert ops is not None  # the pinned CPU torch has oneDNN
    post_ops = []

    def recording_ops():
        reorder, pointwise = ops

        def record(*args):
            post_ops.append(args[7])
            return pointwise(*args)

        return reorder, record

    monkeypatch.setattr(fcm, 'onednn_conv_ops', recording_ops)
    torch.manual_seed(0)
    layers = [((16, 32, 1), {}), ((16, 16, 3), dict(padding=1, groups=16)),
              ((16, 24, 3), dict(stride=2, padding=1))]
    for act, post_op in (('SiLU', 'swish'), ('ReLU', 'relu'),
                         ('HSwish', 'none')):
        for args, kwargs in layers:
            kwargs = dict(kwargs, norm_cfg=dict(type='BN'),
                          act_cfg=dict(type=act))
            plain = ConvModule(*args, **kwargs)
            randomise_bn(plain)
            folding = FoldingConvModule(*args, **kwargs)
            folding.load_state_dict(plain.state_dict())
            plain.eval(), folding.eval()
            for x in (torch.randn(2, 16, 20, 18), torch.randn(1, 16, 41, 39)):
                x = x.contiguous(memory_format=CL)
                post_ops.clear()
                with torch.no_grad():
                    out = folding(x)
                    torch.testing.assert_close(out, plain(x), rtol=1e-5,
                                               atol=1e-5)
                assert out.is_contiguous(memory_format=CL)
                # 1x1 convolutions run natively on one thread (xdist)
                if fcm.torch_picks_onednn(x, folding.conv):
                    assert post_ops == [post_op]
                    # packed per input shape
                    assert folding._folded.packed is not None
                    assert folding._folded.state[0][0] == x.shape
                else:
                    assert post_ops == [] and args[2] == 1
    # no norm, or one mmcv's fuse_conv_bn folded (an Identity is left)
    from mmcv.cnn import fuse_conv_bn
    x = torch.randn(2, 16, 10, 9).contiguous(memory_format=CL)
    for norm_cfg in (None, dict(type='BN')):
        kwargs = dict(padding=1, norm_cfg=norm_cfg, act_cfg=dict(type='SiLU'))
        plain = ConvModule(16, 24, 3, **kwargs)
        folding = FoldingConvModule(16, 24, 3, **kwargs)
        if norm_cfg:
            randomise_bn(plain)
        folding.load_state_dict(plain.state_dict())
        plain.eval(), folding.eval()
        if norm_cfg:
            fuse_conv_bn(folding)
            assert isinstance(folding.norm, torch.nn.Identity)
        post_ops.clear()
        with torch.no_grad():
            torch.testing.assert_close(folding(x), plain(x), rtol=1e-5,
                                       atol=1e-5)
        assert post_ops == ['swish']
    with torch.no_grad():
        # tiny 1x1 maps at batch 1 are left to torch's native kernel
        post_ops.clear()
        folding = FoldingConvModule(16, 32, 1, norm_cfg=dict(type='BN')).eval()
        folding(torch.randn(1, 16, 4, 4).contiguous(memory_format=CL))
        assert post_ops == [] and folding._folded.packed is None
        # NCHW inputs keep F.conv2d, which keeps them NCHW
        folding = FoldingConvModule(16, 32, 3, padding=1,
                                    norm_cfg=dict(type='BN')).eval()
        assert folding(torch.randn(2, 16, 8, 8)).is_contiguous()
        assert post_ops == [] and folding._folded.packed is None
        # an activation with hooks runs as its own module call
        folding = FoldingConvModule(16, 32, 3, padding=1,
                                    norm_cfg=dict(type='BN')).eval()
        seen = []
        x = torch.randn(2, 16, 8, 8).contiguous(memory_format=CL)
        folding(x)
        assert post_ops == ['relu'] and seen == []  # ConvModule's default
        # a hook registered later is seen at once
        folding.activate.register_forward_hook(lambda *a: seen.append(1))
        folding(x)
        assert post_ops == ['relu', 'none'] and seen == [1]

    # where the op fails, F.conv2d takes over for good
    def failing_ops():
        def fail(*args):
            post_ops.append('failed')
            raise RuntimeError('no oneDNN here')

        return ops[0], fail

    monkeypatch.setattr(fcm, 'onednn_conv_ops', failing_ops)
    post_ops.clear()
    plain = ConvModule(16, 16, 3, padding=1, norm_cfg=dict(type='BN'),
                       act_cfg=dict(type='SiLU')).eval()
    folding = FoldingConvModule(16, 16, 3, padding=1,
                                norm_cfg=dict(type='BN'),
                                act_cfg=dict(type='SiLU')).eval()
    folding.load_state_dict(plain.state_dict())
    x = torch.randn(2, 16, 8, 8).contiguous(memory_format=CL)
    with torch.no_grad():
        for _ in range(2):
            torch.testing.assert_close(folding(x), plain(x), rtol=1e-5,
                                       atol=1e-5)
    assert post_ops == ['failed'] and folding._onednn_failed


def test_folding_conv_module_trains_silu_out_of_place():
    """An in-place SiLU under autograd clones its input first; out of place
    the training forward makes no copy at all, with the same gradients."""
    from mmcv.cnn import ConvModule

    from mmaff.models.layers import FoldingConvModule
    kwargs = dict(padding=1, norm_cfg=dict(type='BN'),
                  act_cfg=dict(type='SiLU'))
    plain = ConvModule(8, 8, 3, **kwargs)
    ours = FoldingConvModule(8, 8, 3, **kwargs)
    ours.load_state_dict(plain.state_dict())
    assert plain.activate.inplace and not ours.activate.inplace
    assert FoldingConvModule(8, 8, 3, inplace=True, **kwargs).activate.inplace
    x = torch.randn(2, 8, 10, 10)
    grads, copies = [], []
    for module in (plain, ours):
        inp = x.clone().requires_grad_(True)
        with torch.profiler.profile() as prof:
            out = module(inp)
        copies.append(sum(e.name == 'aten::clone' for e in prof.events()))
        out.square().sum().backward()
        grads.append([inp.grad, module.conv.weight.grad])
    assert copies == [1, 0]
    for ref, got in zip(*grads):
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_affnet_folds_bn_at_inference_only():
    model = build_classifier('et')
    randomise_bn(model)
    model.eval()
    plain = copy.deepcopy(model)
    plain.backbone.fold_bn_in_eval = False
    x = torch.rand(2, 3, 96, 80)
    with torch.no_grad():
        folded = model(x, mode='tensor')
        reference = plain(x, mode='tensor')
    torch.testing.assert_close(folded, reference, rtol=1e-5, atol=1e-5)
    convs = [m for m in model.backbone.modules() if hasattr(m, '_folded')]
    assert len(convs) > 40 and all(m._folded is not None for m in convs)
    assert all(m._folded is None for m in plain.backbone.modules()
               if hasattr(m, '_folded'))


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


def test_tune_malloc_and_machine_description():
    assert tune_malloc() is True  # glibc: the settings are accepted
    big = torch.ones(64 << 20, dtype=torch.uint8)  # served from the heap
    assert int(big.sum()) == 64 << 20
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
    assert len(results['models_b2']['AFFNet|fused']) == 2
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
