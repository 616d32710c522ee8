# DeepLabv3-AFFNet-ET on the toy set of
# tools/dataset_converters/make_toy_ade20k.py (ADE20K layout: label 0 =
# "other", ignored; 1-5 = shapes): same model as the ADE20K config with 5
# classes, 128x128 crops and a schedule for a 2-core CPU.
#   python tools/dataset_converters/make_toy_ade20k.py data/toy_ade20k
#   python tools/train.py \
#     configs/segmentation/\
#         deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512_toy.py
_base_ = './deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512.py'

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
model = dict(
    data_preprocessor=data_preprocessor,
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
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        img_suffix='.jpg',
        seg_map_suffix='.png',
        reduce_zero_label=True,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        img_suffix='.jpg',
        seg_map_suffix='.png',
        reduce_zero_label=True,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 400
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=20),
    dict(
        type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=100)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=100, max_keep_ckpts=2))
