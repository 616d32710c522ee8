# RetinaNet with FPN on AFFNet strides 8/16/32, COCO 1x (see -et config).
_base_ = './retinanet_affnet-et_fpn_1x_coco.py'

model = dict(
    backbone=dict(arch='base'), neck=dict(in_channels=[128, 256, 320]))
