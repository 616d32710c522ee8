# DeepLabv3 on AFFNet, ADE20K (see the -et config).
_base_ = './deeplabv3_affnet-et_ade20k.py'

model = dict(backbone=dict(arch='base'), decode_head=dict(in_channels=320))
