# RetinaNet with FPN on AFFNet-ET strides 8/16/32 (out_indices 2-4), 1x.
_base_ = [
    'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    './_base_/models/affnet-et.py'
]

stage_channels = [64, 104, 144]  # out_indices 2, 3, 4 of AFFNet-ET

model = dict(
    # official AFFNet weights take RGB in [0, 1]
    data_preprocessor=dict(mean=[0., 0., 0.], std=[255., 255., 255.]),
    backbone=dict(
        _base_.affnet_backbone, _delete_=True, out_indices=(2, 3, 4)),
    # P3-P5 from the backbone, P6-P7 from extra convs on C5
    neck=dict(in_channels=stage_channels, start_level=0, num_outs=5))

# CocoDataset plus checks that turn inconsistent annotation files into clear
# errors (mmaff/datasets/coco.py)
train_dataloader = dict(dataset=dict(type='mmaff.CheckedCocoDataset'))
val_dataloader = dict(dataset=dict(type='mmaff.CheckedCocoDataset'))
test_dataloader = val_dataloader
