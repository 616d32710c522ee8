# DeepLabv3-AFFNet-ET on the toy set of
# tools/dataset_converters/make_toy_ade20k.py (ADE20K layout: label 0 =
# "other", ignored; 1-5 = shapes): same model as the ADE20K config with 5
# classes, 128x128 crops and a schedule for a 2-core CPU.
#   python tools/dataset_converters/make_toy_ade20k.py data/toy_ade20k
#   python tools/train.py \
#     configs/segmentation/\
#         deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512_toy.py
_base_ = [
    './_base_/models/deeplabv3_affnet-et-d8.py',
    'mmseg::_base_/datasets/ade20k.py', './_base_/default_runtime.py',
    './_base_/schedules/schedule_toy_400it.py'
]

data_root = 'data/toy_ade20k/'
# ADE20KDataset only accepts subsets of its 150 class names (anything else
# raises "new classes ... is not a subset"), so the toy set is read by the
# generic BaseSegDataset with ADE20KDataset's settings: .jpg images, .png
# labels, reduce_zero_label=True.
dataset_type = 'BaseSegDataset'
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'star', 'cross'),
    palette=[(220, 40, 40), (40, 200, 40), (40, 60, 220), (230, 200, 30),
             (200, 60, 200)])
num_classes = 5
crop_size = (128, 128)
scale = (512, 128)  # short side 128 at ratio 1 (images are 128 high)

data_preprocessor = dict(size=crop_size)
# trained from scratch on the toy set
checkpoint = None
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(init_cfg=dict(checkpoint=checkpoint)),
    decode_head=dict(num_classes=num_classes))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # reduce_zero_label from the dataset
    dict(type='mmaff.CheckSegLabels', num_classes=num_classes),
    dict(
        type='RandomResize', scale=scale, ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations'),  # reduce_zero_label from the dataset
    dict(type='mmaff.CheckSegLabels', num_classes=num_classes),
    dict(type='PackSegInputs')
]
# dataset fields shared by the training and validation splits
toy_dataset = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=True)
train_dataloader = dict(
    num_workers=2,
    dataset=dict(
        toy_dataset,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2,
    dataset=dict(
        toy_dataset,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# the toy lr is for one process x 4 images (--auto-scale-lr scales from it)
auto_scale_lr = dict(enable=False, base_batch_size=4)
