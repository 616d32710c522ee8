"""A literal, test-only transcription of the official AFFNet classifier.

Written from the official code's structure (microsoft/TokenMixers,
``affnet/modules/aff_block.py`` and ``affnet/models/classification/
affnet.py``): same module names (so its ``state_dict`` has the official
keys), the filter as the official einsum formulation, the block order
MLP -> filter. It is deliberately independent of mmaff's implementation so
tests can compare the two.
"""
import os.path as osp
import re

import torch
import torch.nn as nn
import torch.nn.functional as F


def make_divisible(v, divisor=8, min_value=None):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvLayer(nn.Module):

    def __init__(self, cin, cout, k, stride=1, groups=1, dilation=1,
                 use_norm=True, use_act=True):
        super().__init__()
        block = nn.Sequential()
        pad = (k - 1) // 2 * dilation
        block.add_module('conv', nn.Conv2d(cin, cout, k, stride, pad,
                                           dilation, groups, bias=False))
        if use_norm:
            block.add_module('norm', nn.BatchNorm2d(cout))
        if use_act:
            block.add_module('act', nn.SiLU())
        self.block = block

    def forward(self, x):
        return self.block(x)


class InvertedResidual(nn.Module):

    def __init__(self, cin, cout, stride, expand_ratio, dilation=1):
        super().__init__()
        hidden = make_divisible(int(round(cin * expand_ratio)), 8)
        block = nn.Sequential()
        if expand_ratio != 1:
            block.add_module('exp_1x1', ConvLayer(cin, hidden, 1))
        block.add_module('conv_3x3', ConvLayer(hidden, hidden, 3, stride,
                                               hidden, dilation))
        block.add_module('red_1x1', ConvLayer(hidden, cout, 1, use_act=False))
        self.block = block
        self.use_res = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.block(x) if self.use_res else self.block(x)


class AFNO2DChannelFirst(nn.Module):

    def __init__(self, c, num_blocks=8, threshold=0.01):
        super().__init__()
        self.nb, self.bs, self.t = num_blocks, c // num_blocks, threshold
        s = 0.02
        self.w1 = nn.Parameter(s * torch.randn(2, num_blocks, self.bs,
                                               self.bs))
        self.b1 = nn.Parameter(s * torch.randn(2, num_blocks, self.bs))
        self.w2 = nn.Parameter(s * torch.randn(2, num_blocks, self.bs,
                                               self.bs))
        self.b2 = nn.Parameter(s * torch.randn(2, num_blocks, self.bs))
        self.act = nn.SiLU()
        self.act2 = nn.SiLU()

    def forward(self, x):
        bias = x
        dtype = x.dtype
        x = x.float()
        B, C, H, W = x.shape
        x = torch.fft.rfft2(x, dim=(2, 3), norm='ortho')
        origin_ffted = x
        x = x.reshape(B, self.nb, self.bs, x.shape[2], x.shape[3])
        o1_real = self.act(
            torch.einsum('bkihw,kio->bkohw', x.real, self.w1[0]) -
            torch.einsum('bkihw,kio->bkohw', x.imag, self.w1[1]) +
            self.b1[0, :, :, None, None])
        o1_imag = self.act2(
            torch.einsum('bkihw,kio->bkohw', x.imag, self.w1[0]) +
            torch.einsum('bkihw,kio->bkohw', x.real, self.w1[1]) +
            self.b1[1, :, :, None, None])
        o2_real = (
            torch.einsum('bkihw,kio->bkohw', o1_real, self.w2[0]) -
            torch.einsum('bkihw,kio->bkohw', o1_imag, self.w2[1]) +
            self.b2[0, :, :, None, None])
        o2_imag = (
            torch.einsum('bkihw,kio->bkohw', o1_imag, self.w2[0]) +
            torch.einsum('bkihw,kio->bkohw', o1_real, self.w2[1]) +
            self.b2[1, :, :, None, None])
        x = torch.stack([o2_real, o2_imag], dim=-1)
        x = F.softshrink(x, lambd=self.t)
        x = torch.view_as_complex(x)
        x = x.reshape(B, C, x.shape[3], x.shape[4])
        x = x * origin_ffted
        x = torch.fft.irfft2(x, s=(H, W), dim=(2, 3), norm='ortho')
        return x.type(dtype) + bias


class Block(nn.Module):

    def __init__(self, dim, mlp_ratio):
        super().__init__()
        self.norm1 = nn.GroupNorm(1, dim)
        self.filter = AFNO2DChannelFirst(dim)
        self.norm2 = nn.GroupNorm(1, dim)
        self.mlp = InvertedResidual(dim, dim, 1, mlp_ratio)

    def forward(self, x):
        residual = x
        x = self.norm2(self.mlp(self.norm1(x)))
        x = self.filter(x)
        return x + residual


class AFFBlock(nn.Module):

    def __init__(self, c, ffn, n):
        super().__init__()
        blocks = [Block(c, ffn / c) for _ in range(n)]
        blocks.append(nn.GroupNorm(1, c))
        self.global_rep = nn.Sequential(*blocks)
        self.conv_proj = ConvLayer(c, c, 1, use_act=False)
        self.fusion = ConvLayer(2 * c, c, 1)

    def forward(self, x):
        res = x
        fm = self.conv_proj(self.global_rep(x))
        return self.fusion(torch.cat((res, fm), dim=1))


# (layer1/2 widths, layer3-5 widths, blocks, ffn, expand ratio)
OFFICIAL_CONFIGS = {
    'et': dict(widths=(32, 48, 64, 104, 144), ffn=(128, 208, 288),
               expand=2),
    't': dict(widths=(32, 48, 96, 160, 192), ffn=(192, 320, 384), expand=4),
    'base': dict(widths=(32, 64, 128, 256, 320), ffn=(256, 512, 640),
                 expand=4),
}
OFFICIAL_KEY_FILES = {
    'et': 'official_keys_affnet_et.txt',
    't': 'official_keys_affnet_t.txt',
    'base': 'official_keys_affnet.txt',
}


class OfficialAffNet(nn.Module):

    def __init__(self, mode='et', num_classes=1000):
        super().__init__()
        cfg = OFFICIAL_CONFIGS[mode]
        w, e = cfg['widths'], cfg['expand']
        self.conv_1 = ConvLayer(3, 16, 3, stride=2)
        self.layer_1 = nn.Sequential(InvertedResidual(16, w[0], 1, e))
        self.layer_2 = nn.Sequential(
            InvertedResidual(w[0], w[1], 2, e),
            InvertedResidual(w[1], w[1], 1, e),
            InvertedResidual(w[1], w[1], 1, e))
        for i, n in zip((3, 4, 5), (2, 4, 3)):
            setattr(self, f'layer_{i}', nn.Sequential(
                InvertedResidual(w[i - 2], w[i - 1], 2, e),
                AFFBlock(w[i - 1], cfg['ffn'][i - 3], n)))
        exp = min(4 * w[4], 960)
        self.conv_1x1_exp = ConvLayer(w[4], exp, 1)
        self.classifier = nn.Sequential()
        self.classifier.add_module('global_pool', nn.AdaptiveAvgPool2d(1))
        self.classifier.add_module('flatten', nn.Flatten())
        self.classifier.add_module('dropout', nn.Dropout(0.1))
        self.classifier.add_module('fc', nn.Linear(exp, num_classes))

    def forward(self, x):
        x = self.conv_1(x)
        for i in range(1, 6):
            x = getattr(self, f'layer_{i}')(x)
        return self.classifier(self.conv_1x1_exp(x))


def read_official_keys(path):
    """``{key: (shape, dtype)}`` from an official key listing; the listings
    come as ``key<TAB>(d0,d1)<TAB>dtype<TAB>kind`` or ``key (d0, d1) dtype``.
    """
    pattern = re.compile(r'^(\S+)\s+\(([\d,\s]*)\)\s+(\w+)')
    keys = {}
    with open(path) as f:
        for line in f:
            match = pattern.match(line)
            if match is None:
                continue  # comments and the header line
            key, shape, dtype = match.groups()
            dims = tuple(int(d) for d in shape.split(',') if d.strip())
            keys[key] = (dims, dtype)
    return keys


def official_state_dict(arch: str, seed: int = 0) -> dict:
    """A randomised official-layout state dict of ``arch`` built from the
    key listing in tests/data/official_keys alone: every tensor holds
    distinct values."""
    listing = osp.join(
        osp.dirname(__file__), 'data', 'official_keys',
        OFFICIAL_KEY_FILES[arch])
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, (shape, dtype) in read_official_keys(listing).items():
        if dtype == 'int64':
            state[key] = torch.randint(0, 1000, shape, generator=gen)
        elif key.endswith('running_var'):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.1
    return state
