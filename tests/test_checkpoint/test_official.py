import hashlib
import os
import os.path as osp
import re
from pathlib import Path

import pytest
import torch
from helpers import ROOT, build_classifier, run_python
from official_reference import (
    OFFICIAL_KEY_FILES,
    OfficialAffNet,
    official_state_dict,
    read_official_keys,
)

from mmaff.checkpoint import (
    CheckpointConversionError,
    convert_official_state_dict,
    infer_arch,
)

KEYS_DIR = osp.join(ROOT, 'tests', 'data', 'official_keys')
CONVERTER = osp.join(ROOT, 'tools', 'model_converters',
                     'affnet_official_to_mmaff.py')
ARCHS = ['et', 't', 'base']


@pytest.mark.parametrize('arch', ARCHS)
def test_reference_model_has_official_keys(arch):
    """The test-only transcription reproduces the official listing, so the
    equivalence test below compares against the official structure."""
    listing = read_official_keys(osp.join(KEYS_DIR, OFFICIAL_KEY_FILES[arch]))
    state = OfficialAffNet(arch).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        k: v[0]
        for k, v in listing.items()
    }


@pytest.mark.parametrize('arch', ARCHS)
def test_convert_every_tensor_lands_in_place(arch):
    official = official_state_dict(arch)
    converted = convert_official_state_dict(official)
    model = build_classifier(arch)
    model.load_state_dict(converted, strict=True)
    assert len(converted) == len(official)
    # Each source tensor appears exactly once, bit-identical.
    src_ids = {tuple(v.flatten()[:8].tolist()) + (v.numel(), ) for v in
               official.values() if v.dtype != torch.int64}
    dst_ids = {tuple(v.flatten()[:8].tolist()) + (v.numel(), ) for v in
               model.state_dict().values() if v.dtype != torch.int64}
    assert src_ids == dst_ids
    for key in ('layer_4.1.global_rep.3.filter.w1',
                'layer_5.1.global_rep.3.weight', 'classifier.fc.bias',
                'conv_1.block.norm.running_var'):
        mapped = {
            'layer_4.1.global_rep.3.filter.w1':
            'backbone.layers.3.1.blocks.3.filter.w1',
            'layer_5.1.global_rep.3.weight': 'backbone.layers.4.1.norm.weight',
            'classifier.fc.bias': 'head.fc.bias',
            'conv_1.block.norm.running_var': 'backbone.stem.bn.running_var',
        }[key]
        assert torch.equal(model.state_dict()[mapped], official[key])


@pytest.mark.parametrize('arch', ARCHS)
def test_converted_model_matches_official_outputs(arch):
    torch.manual_seed(0)
    official = OfficialAffNet(arch).eval()
    # Perturb BN statistics and affine params so a mis-mapped norm shows.
    with torch.no_grad():
        for name, t in official.state_dict().items():
            if t.is_floating_point() and 'filter' not in name:
                t.add_(torch.rand_like(t) * 0.1)
    model = build_classifier(arch).eval()
    model.load_state_dict(
        convert_official_state_dict(official.state_dict()), strict=True)
    x = torch.rand(2, 3, 96, 80)
    with torch.no_grad():
        expected = official(x)
        logits = model(x, mode='tensor')
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


def test_wrappers_module_prefix_and_idempotence():
    official = official_state_dict('et')
    wrapped = {'model': {f'module.{k}': v for k, v in official.items()}}
    converted = convert_official_state_dict(wrapped)
    assert converted.keys() == convert_official_state_dict(official).keys()
    again = convert_official_state_dict({'state_dict': converted})
    assert list(again) == list(converted)
    assert all(again[k] is converted[k] for k in converted)
    assert infer_arch(converted) == 'et'


def test_conversion_errors_name_the_problem():
    official = official_state_dict('t')
    broken = dict(official)
    del broken['layer_3.1.global_rep.0.filter.w2']
    broken['layer_3.1.extra.weight'] = torch.zeros(3)
    with pytest.raises(CheckpointConversionError) as err:
        convert_official_state_dict(broken)
    assert 'backbone.layers.2.1.blocks.0.filter.w2' in str(err.value)
    assert 'layer_3.1.extra.weight' in str(err.value)
    bad_shape = dict(official)
    bad_shape['conv_1.block.conv.weight'] = torch.zeros(16, 3, 5, 5)
    with pytest.raises(CheckpointConversionError, match='shape mismatches'):
        convert_official_state_dict(bad_shape)
    with pytest.raises(CheckpointConversionError, match='match no AFFNet'):
        convert_official_state_dict(
            {**official, 'layer_5.0.block.red_1x1.block.conv.weight':
             torch.zeros(200, 768, 1, 1)})
    # an explicit arch that does not fit is reported, not silently loaded
    with pytest.raises(CheckpointConversionError, match="arch 'et'"):
        convert_official_state_dict(official, arch='et')
    with pytest.raises(CheckpointConversionError, match='not a tensor'):
        convert_official_state_dict({'epoch': 3, 'x': torch.zeros(1)})


def run_converter(*args):
    return run_python(CONVERTER, *args, timeout=300)


def written_file(result) -> str:
    """The path the converter reports on its ``converted ... to`` line."""
    match = re.search(r' to (\S+)$', result.stdout, re.M)
    assert match, result.stdout
    return match.group(1)


def test_converter_cli(tmp_path):
    src = tmp_path / 'checkpoint_ema_score_73.0238.pt'
    torch.save(official_state_dict('et'), src)
    dst = tmp_path / 'affnet-et_in1k.pth'
    result = run_converter(str(src), str(dst))
    assert result.returncode == 0, result.stderr
    assert "arch 'et'" in result.stdout and '1,436,264 parameters' in \
        result.stdout
    out = written_file(result)
    assert re.fullmatch(
        re.escape(str(tmp_path / 'affnet-et_in1k-')) + '[0-9a-f]{8}.pth', out)
    # only the published name is left behind (no DST, no temporary file)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [src.name, osp.basename(out)])
    ckpt = torch.load(out, weights_only=True)
    assert ckpt['meta']['arch'] == 'et'
    build_classifier('et').load_state_dict(ckpt['state_dict'], strict=True)
    # idempotent on its own output
    again = run_converter(out, str(tmp_path / 'again.pth'))
    assert again.returncode == 0, again.stderr
    ckpt2 = torch.load(written_file(again), weights_only=True)
    assert ckpt2['state_dict'].keys() == ckpt['state_dict'].keys()
    # The same input gives the same bytes, hence the same name: it is not
    # overwritten without --force, and is with it.
    result = run_converter(str(src), str(dst))
    assert result.returncode == 2 and 'exists' in result.stderr
    assert osp.basename(out) in result.stderr
    result = run_converter(str(src), str(dst), '--force')
    assert result.returncode == 0 and written_file(result) == out
    # unreadable and mismatching inputs: non-zero exit and a clear message
    garbage = tmp_path / 'garbage.pt'
    garbage.write_bytes(b'not a checkpoint')
    result = run_converter(str(garbage), str(tmp_path / 'x.pth'))
    assert result.returncode == 1 and 'cannot read checkpoint' in \
        result.stderr
    partial = official_state_dict('et')
    partial.pop('conv_1x1_exp.block.conv.weight')
    torch.save(partial, tmp_path / 'partial.pt')
    result = run_converter(str(tmp_path / 'partial.pt'),
                           str(tmp_path / 'y.pth'))
    assert result.returncode == 1
    assert 'backbone.conv_1x1_exp.conv.weight' in result.stderr
    assert not list(tmp_path.glob('x*')) and not list(tmp_path.glob('y*'))
    result = run_converter(str(src), str(tmp_path / 'no' / 'dir.pth'))
    assert result.returncode == 2
    assert result.stderr.startswith('error: ') and \
        result.stderr.count('\n') == 1


@pytest.mark.parametrize('arch', ARCHS)
def test_converter_writes_the_published_name_form(arch, tmp_path):
    """DST a folder: the file is named after the variant, its 8 hex digits
    are its sha256's, the printed sha256 is the full digest, and torch.hub's
    check_hash accepts it as downloaded."""
    src = tmp_path / 'official.pt'
    torch.save(official_state_dict(arch), src)
    folder = tmp_path / 'published'
    folder.mkdir()
    result = run_converter(str(src), str(folder))
    assert result.returncode == 0, result.stderr
    out = written_file(result)
    stem = {'et': 'affnet-et_in1k', 't': 'affnet-t_in1k',
            'base': 'affnet_in1k'}[arch]
    with open(out, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert out == str(folder / f'{stem}-{digest[:8]}.pth')
    assert f'sha256 {digest}\n' in result.stdout
    assert os.listdir(folder) == [osp.basename(out)]
    # torch.hub reads the hash prefix out of the name and checks the bytes
    assert torch.hub.HASH_REGEX.search(osp.basename(out)).group(1) == \
        digest[:8]
    state = torch.hub.load_state_dict_from_url(
        Path(out).as_uri(),
        model_dir=str(tmp_path / 'hub'),
        progress=False,
        check_hash=True,
        weights_only=True)
    assert state['meta']['arch'] == arch
    # the same check refuses a file whose bytes changed after naming
    tampered = tmp_path / osp.basename(out)
    tampered.write_bytes(Path(out).read_bytes() + b'\0')
    with pytest.raises(RuntimeError, match='invalid hash value'):
        torch.hub.load_state_dict_from_url(
            tampered.as_uri(),
            model_dir=str(tmp_path / 'hub2'),
            progress=False,
            check_hash=True,
            weights_only=True)


def test_converted_backbone_loads_into_detector_backbone(tmp_path):
    """init_cfg Pretrained with prefix backbone. (what det/seg configs use)
    takes the stage weights of a converted classifier checkpoint."""
    from mmaff.models import AFFNet
    converted = convert_official_state_dict(official_state_dict('t'))
    path = tmp_path / 'affnet-t.pth'
    torch.save({'state_dict': converted}, path)
    backbone = AFFNet(
        't',
        out_indices=(2, 3, 4),
        init_cfg=dict(
            type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    backbone.init_weights()
    state = backbone.state_dict()
    for key, value in state.items():
        assert torch.equal(value, converted[f'backbone.{key}']), key
