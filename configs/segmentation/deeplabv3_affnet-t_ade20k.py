# DeepLabv3 on AFFNet-T, ADE20K (see the -et config).
_base_ = './deeplabv3_affnet-et_ade20k.py'

model = dict(backbone=dict(arch='t'), decode_head=dict(in_channels=192))
