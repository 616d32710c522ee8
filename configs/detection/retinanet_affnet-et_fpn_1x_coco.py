# RetinaNet with FPN on AFFNet-ET strides 8/16/32 (layer_3-5), COCO 1x.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmaff'], allow_failed_imports=False)

arch = 'et'
stage_channels = [64, 104, 144]  # layer_3, layer_4, layer_5 of AFFNet-ET
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
        out_indices=(2, 3, 4),
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')
        if pretrained else None),
    # P3-P5 from the backbone, P6-P7 from extra convs on C5
    neck=dict(in_channels=stage_channels, start_level=0, num_outs=5))

# CocoDataset plus checks that turn inconsistent annotation files into clear
# errors (mmaff/datasets/coco.py)
train_dataloader = dict(dataset=dict(type='mmaff.CheckedCocoDataset'))
val_dataloader = dict(dataset=dict(type='mmaff.CheckedCocoDataset'))
test_dataloader = val_dataloader
