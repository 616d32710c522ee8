# AFFNet on ImageNet-1k, 256x256, official recipe (see the -et config).
_base_ = './affnet-et_8xb128_in1k.py'

model = dict(
    backbone=dict(arch='base'),
    head=dict(in_channels=960))  # exp conv: min(4 * 320, 960)
