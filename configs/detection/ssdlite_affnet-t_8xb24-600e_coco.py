# SSDLite with an AFFNet-T backbone on COCO, 320x320 (see the -et config).
_base_ = './ssdlite_affnet-et_8xb24-600e_coco.py'

# its own variant's ImageNet weights (see the -et config)
checkpoint = 'checkpoints/affnet-t_in1k.pt'
stage_channels = (160, 192)
model = dict(
    backbone=dict(arch='t', init_cfg=dict(checkpoint=checkpoint)),
    neck=dict(
        in_channels=stage_channels,
        out_channels=stage_channels + (512, 256, 256, 128)),
    bbox_head=dict(in_channels=stage_channels + (512, 256, 256, 128)))
