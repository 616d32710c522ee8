# RetinaNet with FPN on AFFNet-T strides 8/16/32, COCO 1x (see -et config).
_base_ = './retinanet_affnet-et_fpn_1x_coco.py'

model = dict(
    backbone=dict(arch='t'), neck=dict(in_channels=[96, 160, 192]))
