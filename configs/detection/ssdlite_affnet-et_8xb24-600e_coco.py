# SSDLite with an AFFNet-ET backbone on COCO, 320x320.
# The backbone taps layer_4 and layer_5 (strides 16 and 32, before the final
# expansion conv, like the official AFFNet SSD); SSDNeck adds four extra
# depthwise levels (strides 64-320) as in mmdet's SSDLite-MobileNetV2.
_base_ = 'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'
custom_imports = dict(imports=['mmaff'], allow_failed_imports=False)

arch = 'et'
stage_channels = (104, 144)  # layer_4, layer_5 of AFFNet-ET
# Converted ImageNet AFFNet weights (tools/model_converters/
# affnet_official_to_mmaff.py); None trains from scratch.
pretrained = None

model = dict(
    # official AFFNet weights take RGB in [0, 1]
    data_preprocessor=dict(mean=[0., 0., 0.], std=[255., 255., 255.]),
    backbone=dict(
        _delete_=True,
        type='mmaff.AFFNet',
        arch=arch,
        out_indices=(3, 4),
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')
        if pretrained else None),
    neck=dict(
        in_channels=stage_channels,
        out_channels=stage_channels + (512, 256, 256, 128)),
    bbox_head=dict(in_channels=stage_channels + (512, 256, 256, 128)))

# CocoDataset plus checks that turn inconsistent annotation files into clear
# errors (mmaff/datasets/coco.py)
train_dataloader = dict(
    dataset=dict(dataset=dict(type='mmaff.CheckedCocoDataset')))
val_dataloader = dict(dataset=dict(type='mmaff.CheckedCocoDataset'))
test_dataloader = val_dataloader
