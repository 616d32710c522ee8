# DeepLabv3 on AFFNet-T, Pascal VOC 2012 aug (see the -et config).
_base_ = './deeplabv3_affnet-et_voc12aug.py'

model = dict(backbone=dict(arch='t'), decode_head=dict(in_channels=192))
