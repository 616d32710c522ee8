# RetinaNet with FPN on AFFNet-ET strides 8/16/32 (out_indices 2-4), 1x.
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    './_base_/models/affnet-et.py'
]

# ImageNet weights of this variant, as the paper's detectors and segmentors
# start: the official file as published, saved here (no conversion needed;
# download links in the README of microsoft/TokenMixers), or a converted
# file, a classifier's runner checkpoint or a URL:
#   --cfg-options model.backbone.init_cfg.checkpoint=FILE_OR_URL
# (=None trains from scratch). Another variant's weights stop with an error.
checkpoint = 'checkpoints/affnet-et_in1k.pt'
# Fine-tuning knobs (the paper's det/seg recipes are not published; these
# configs train every stage at one learning rate, as mmdet's and mmseg's
# MobileNetV2 configs do):
# - freeze the stem and the first N stages: model.backbone.frozen_stages=N
# - keep the backbone's BN statistics: model.backbone.norm_eval=True
# - a smaller backbone learning rate:
#   optim_wrapper = dict(paramwise_cfg=dict(
#       custom_keys={'backbone': dict(lr_mult=0.1)}))
stage_channels = [64, 104, 144]  # out_indices 2, 3, 4 of AFFNet-ET

model = dict(
    # official AFFNet weights take RGB in [0, 1]
    data_preprocessor=dict(mean=[0., 0., 0.], std=[255., 255., 255.]),
    backbone=dict(
        _base_.affnet_backbone,
        _delete_=True,
        out_indices=(2, 3, 4),
        init_cfg=dict(
            type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    # P3-P5 from the backbone, P6-P7 from extra convs on C5
    neck=dict(in_channels=stage_channels, start_level=0, num_outs=5))

# CocoDataset plus checks that turn inconsistent annotation files into clear
# errors (mmaff/datasets/coco.py)
train_dataloader = dict(dataset=dict(type='mmaff.CheckedCocoDataset'))
val_dataloader = dict(dataset=dict(type='mmaff.CheckedCocoDataset'))
test_dataloader = val_dataloader
