"""ImageNet weights into an AFFNet backbone through init_cfg=Pretrained:
official files as published, converted files, runner checkpoints and URLs
(a loopback HTTP server), each checked against the backbone's arch."""
import hashlib
import http.server
import os
import threading

import pytest
import torch
from official_reference import official_state_dict

from mmaff.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    CheckpointNotFoundError,
    convert_official_state_dict,
    download_checkpoint,
    load_pretrained_backbone,
)
from mmaff.models import AFFNet

# official variant -> its converted backbone tensors
_CONVERTED = {}


def converted_backbone(arch: str) -> dict:
    """The backbone tensors an official file of ``arch`` converts to."""
    if arch not in _CONVERTED:
        converted = convert_official_state_dict(official_state_dict(arch))
        _CONVERTED[arch] = {
            k[len('backbone.'):]: v
            for k, v in converted.items() if k.startswith('backbone.')
        }
    return _CONVERTED[arch]


def pretrained(checkpoint, arch='et', **kwargs) -> AFFNet:
    """An AFFNet whose init_cfg loads ``checkpoint``, initialised."""
    model = AFFNet(
        arch,
        init_cfg=dict(
            type='Pretrained', checkpoint=str(checkpoint),
            prefix='backbone.'),
        **kwargs)
    model.init_weights()
    return model


def assert_holds(model: AFFNet, arch: str) -> None:
    """Every tensor of ``model`` is the official ``arch`` file's."""
    expected = converted_backbone(arch)
    state = model.state_dict()
    assert len(state) > 100
    for key, value in state.items():
        assert torch.equal(value, expected[key]), key


def official_file(path, arch='et', wrapper=None, module=False):
    state = official_state_dict(arch)
    if module:
        state = {f'module.{k}': v for k, v in state.items()}
    torch.save({wrapper: state} if wrapper else state, path)
    return path


@pytest.mark.parametrize('wrapper,module', [(None, False), ('model', True),
                                            ('model_ema', False),
                                            ('state_dict', True)])
def test_official_file_as_published(tmp_path, wrapper, module):
    path = official_file(tmp_path / 'checkpoint_ema.pt', 'et', wrapper,
                         module)
    assert_holds(pretrained(path), 'et')


def test_official_file_into_a_backbone_without_the_expansion_conv(tmp_path):
    path = official_file(tmp_path / 'affnet-t.pt', 't')
    model = pretrained(path, 't', out_indices=(3, 4))
    assert model.conv_1x1_exp is None
    assert_holds(model, 't')


def test_converted_file(tmp_path):
    converted = convert_official_state_dict(official_state_dict('t'))
    path = tmp_path / 'affnet-t_in1k.pth'
    torch.save(dict(meta=dict(arch='t'), state_dict=converted), path)
    assert_holds(pretrained(path, 't'), 't')


def test_runner_checkpoint_of_a_classifier(trained_cls):
    """A runner checkpoint holds the message hub and optimizer state too:
    it reads with weights_only=True (mmaff's F2 allow-list), which stays
    as it was."""
    before = torch.serialization.get_safe_globals()
    model = pretrained(trained_cls)
    assert torch.serialization.get_safe_globals() == before
    saved = torch.load(trained_cls, weights_only=False)['state_dict']
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[f'backbone.{key}']), key


@pytest.mark.parametrize('model_arch,file_arch', [('et', 't'), ('t', 'base'),
                                                  ('base', 'et')])
def test_another_variant_is_one_line_naming_both(tmp_path, model_arch,
                                                 file_arch):
    names = {'et': 'AFFNet-ET', 't': 'AFFNet-T', 'base': 'AFFNet'}
    path = official_file(tmp_path / 'w.pt', file_arch)
    with pytest.raises(CheckpointMismatchError) as info:
        pretrained(path, model_arch)
    message = str(info.value)
    assert '\n' not in message
    assert message.startswith(f'checkpoint {path}: holds {names[file_arch]} '
                              f'weights but the backbone is '
                              f'{names[model_arch]}'), message
    assert f"model.backbone.arch='{file_arch}'" in message


def test_a_broken_official_file_names_its_keys(tmp_path):
    state = official_state_dict('et')
    del state['layer_3.1.global_rep.0.filter.w1']
    torch.save(state, tmp_path / 'cut.pt')
    with pytest.raises(CheckpointError, match=r'does not convert: .*missing '
                       r'keys \(1\): backbone\.layers\.2\.1\.blocks\.0\.'
                       r'filter\.w1'):
        pretrained(tmp_path / 'cut.pt')


def test_missing_default_file_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointNotFoundError) as info:
        pretrained('checkpoints/affnet-t_in1k.pt', 't')
    message = str(info.value)
    assert 'does not exist' in message
    assert "AFFNet-T's ImageNet weights" in message
    assert 'microsoft/TokenMixers' in message
    assert 'model.backbone.init_cfg.checkpoint' in message


def test_checkpoint_none_keeps_the_default_init():
    torch.manual_seed(0)
    plain = AFFNet('et')
    plain.init_weights()
    torch.manual_seed(0)
    model = AFFNet(
        'et',
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.'))
    model.init_weights()
    for key, value in plain.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_frozen_and_norm_eval_after_loading(tmp_path):
    path = official_file(tmp_path / 'w.pt', 'et')
    model = pretrained(path, frozen_stages=2, norm_eval=True)
    model.train()
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert not any(p.requires_grad for p in model.layers[1].parameters())
    assert all(p.requires_grad for p in model.layers[2].parameters())
    assert not model.layers[3][0].expand_conv.bn.training
    assert_holds(model, 'et')


# ---------------------------------------------------------------------------
# URLs: a loopback server and torch.hub's cache


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}

    def do_GET(self):  # noqa: N802 - http.server's name
        name = self.path.rsplit('/', 1)[-1]
        if name not in self.files:
            self.send_error(404, 'Not Found')
            return
        body, content_type, cut = self.files[name]
        self.send_response(200)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        # a server that drops the connection part-way
        self.wfile.write(body[:cut] if cut else body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serves ``_Handler.files`` on 127.0.0.1; torch.hub's cache is
    tmp_path/hub."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'hub'))
    monkeypatch.setenv('NO_PROXY', '127.0.0.1')
    monkeypatch.setenv('no_proxy', '127.0.0.1')
    for var in ('http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY'):
        monkeypatch.delenv(var, raising=False)
    path = official_file(tmp_path / 'served.pt', 'et')
    body = path.read_bytes()
    sha = hashlib.sha256(body).hexdigest()
    _Handler.files = {
        'affnet-et_in1k.pt': (body, 'application/octet-stream', None),
        f'affnet-et_in1k-{sha[:8]}.pth': (body, 'application/octet-stream',
                                         None),
        'affnet-et_in1k-00000000.pth': (body, 'application/octet-stream',
                                        None),
        'truncated.pt': (body, 'application/octet-stream', len(body) // 2),
        'error_page.pt':
        (b'<!DOCTYPE html><html><body>Sign in to OneDrive</body></html>',
         'text/html', None),
    }
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}', sha
    httpd.shutdown()
    httpd.server_close()


def cache_dir(tmp_path) -> str:
    # torch.hub's directory under TORCH_HOME
    return str(tmp_path / 'hub' / 'hub' / 'checkpoints')


def test_url_downloads_once_into_the_hub_cache(server, tmp_path):
    url, sha = server
    model = pretrained(f'{url}/affnet-et_in1k.pt')
    assert_holds(model, 'et')
    assert os.listdir(cache_dir(tmp_path)) == ['affnet-et_in1k.pt']
    # read from the cache now: the server no longer has it
    _Handler.files.pop('affnet-et_in1k.pt')
    assert_holds(pretrained(f'{url}/affnet-et_in1k.pt'), 'et')


def test_url_with_a_hash_in_its_name_is_checked(server, tmp_path):
    url, sha = server
    checkpoint, cached = download_checkpoint(
        f'{url}/affnet-et_in1k-{sha[:8]}.pth')
    assert cached.endswith(f'affnet-et_in1k-{sha[:8]}.pth')
    with pytest.raises(CheckpointError) as info:
        download_checkpoint(f'{url}/affnet-et_in1k-00000000.pth')
    assert f'its sha256 starts with {sha[:8]}, its name says 00000000' in \
        str(info.value)
    assert os.listdir(cache_dir(tmp_path)) == [f'affnet-et_in1k-{sha[:8]}.pth']


@pytest.mark.parametrize('name,problem', [
    ('truncated.pt', 'download is broken: it ended after'),
    ('error_page.pt', 'download is broken: it is not a PyTorch checkpoint: it '
     'is an HTML/XML page'),
    ('missing.pt', 'cannot be downloaded: HTTP 404'),
])
def test_broken_download_is_one_line_and_not_cached(server, tmp_path, name,
                                                    problem):
    url, _ = server
    with pytest.raises(CheckpointError) as info:
        pretrained(f'{url}/{name}')
    message = str(info.value)
    assert '\n' not in message
    assert message.startswith(f'checkpoint {url}/{name}: {problem}'), message
    assert not os.path.exists(cache_dir(tmp_path)) or \
        os.listdir(cache_dir(tmp_path)) == []
    # the next try downloads again (the server has been fixed meanwhile)
    _Handler.files[name] = _Handler.files['affnet-et_in1k.pt']
    assert_holds(pretrained(f'{url}/{name}'), 'et')


def test_load_pretrained_backbone_directly(tmp_path):
    path = official_file(tmp_path / 'w.pt', 'base')
    model = AFFNet('base', init_cfg=None)
    load_pretrained_backbone(model, str(path))
    assert_holds(model, 'base')
