# RetinaNet with FPN on AFFNet-T strides 8/16/32, COCO 1x (see -et config).
_base_ = './retinanet_affnet-et_fpn_1x_coco.py'

# its own variant's ImageNet weights (see the -et config)
checkpoint = 'checkpoints/affnet-t_in1k.pt'
model = dict(
    backbone=dict(arch='t', init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(in_channels=[96, 160, 192]))
