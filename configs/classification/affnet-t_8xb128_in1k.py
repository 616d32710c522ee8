# AFFNet-T on ImageNet-1k, 256x256, official recipe (see the -et config).
_base_ = './affnet-et_8xb128_in1k.py'

model = dict(
    backbone=dict(arch='t'),
    head=dict(in_channels=768))  # exp conv: min(4 * 192, 960)
