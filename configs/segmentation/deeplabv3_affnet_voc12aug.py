# DeepLabv3 on AFFNet, Pascal VOC 2012 aug (see the -et config).
_base_ = './deeplabv3_affnet-et_voc12aug.py'

model = dict(backbone=dict(arch='base'), decode_head=dict(in_channels=320))
