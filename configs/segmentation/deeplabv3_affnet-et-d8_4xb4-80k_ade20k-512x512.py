# DeepLabv3 on AFFNet-ET (see _base_/models/deeplabv3_affnet-et-d8.py),
# ADE20K (150 classes), 512x512 crops, 80k iters, composed like mmseg's
# deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py. Schedule and augmentation
# are mmseg's (the official ones are not published).
_base_ = [
    './_base_/models/deeplabv3_affnet-et-d8.py',
    'mmseg::_base_/datasets/ade20k.py', './_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py'
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
model = dict(
    backbone=dict(init_cfg=dict(checkpoint=checkpoint)),
    decode_head=dict(num_classes=150))
