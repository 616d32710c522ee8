# DeepLabv3-AFFNet-ET on the toy set of
# tools/dataset_converters/make_toy_ade20k.py --layout voc (Pascal VOC
# layout: 0 = background, a real class; 1-5 = shapes; 255 = object borders,
# ignored): same model as the VOC config with 6 classes, 128x128 crops and a
# schedule for a 2-core CPU.
#   python tools/dataset_converters/make_toy_ade20k.py data/toy_voc \
#       --layout voc
#   python tools/train.py \
#     configs/segmentation/\
#         deeplabv3_affnet-et-d8_4xb4-40k_voc12aug-512x512_toy.py
_base_ = [
    './_base_/models/deeplabv3_affnet-et-d8.py',
    'mmseg::_base_/datasets/pascal_voc12_aug.py',
    './_base_/default_runtime.py',
    './_base_/schedules/schedule_toy_400it.py'
]

data_root = 'data/toy_voc/'
# PascalVOCDataset only accepts subsets of its 21 class names, so the toy
# set is read by the generic BaseSegDataset with PascalVOCDataset's settings
# (ann_file lists, .jpg images, .png labels, no reduce_zero_label).
dataset_type = 'BaseSegDataset'
metainfo = dict(
    classes=('background', 'circle', 'square', 'triangle', 'star', 'cross'),
    palette=[(0, 0, 0), (220, 40, 40), (40, 200, 40), (40, 60, 220),
             (230, 200, 30), (200, 60, 200)])
num_classes = 6
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
    dict(type='LoadAnnotations'),
    dict(type='mmaff.CheckSegLabels', num_classes=num_classes),
    dict(
        type='RandomResize', scale=scale, ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='Pad', size=crop_size),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
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
    data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'))
# The voc12aug base concatenates SegmentationClass/train.txt with the SBD
# part (SegmentationClassAug/aug.txt); the toy set has only the former.
train_dataloader = dict(
    num_workers=2,
    dataset=dict(
        toy_dataset,
        _delete_=True,
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2,
    dataset=dict(
        toy_dataset,
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# the toy lr is for one process x 4 images (--auto-scale-lr scales from it)
auto_scale_lr = dict(enable=False, base_batch_size=4)
