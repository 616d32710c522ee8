# RetinaNet with FPN on AFFNet strides 8/16/32, COCO 1x (see -et config).
_base_ = './retinanet_affnet-et_fpn_1x_coco.py'

# its own variant's ImageNet weights (see the -et config)
checkpoint = 'checkpoints/affnet_in1k.pt'
model = dict(
    backbone=dict(arch='base', init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(in_channels=[128, 256, 320]))
