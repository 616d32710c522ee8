# RetinaNet-AFFNet-ET-FPN on the toy COCO-format set (see
# ssdlite_affnet-et_8xb24-600e_coco_toy.py).
_base_ = './retinanet_affnet-et_fpn_1x_coco.py'

data_root = 'data/toy_coco/'
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'star'),
    palette=[(220, 40, 40), (40, 200, 40), (40, 60, 220), (230, 200, 30)])
image_size = (320, 320)

# trained from scratch on the toy set
checkpoint = None
model = dict(
    backbone=dict(init_cfg=dict(checkpoint=checkpoint)),
    bbox_head=dict(num_classes=4))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
# dataset fields shared by the two splits; the validation annotations are
# read by both the dataset and CocoMetric
toy_dataset = dict(data_root=data_root, metainfo=metainfo)
val_ann_file = 'annotations/instances_val.json'
train_dataloader = dict(
    batch_size=8,
    dataset=dict(
        toy_dataset,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    dataset=dict(
        toy_dataset,
        ann_file=val_ann_file,
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann_file)
test_evaluator = val_evaluator

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', begin=0, T_max=max_epochs,
         end=max_epochs, by_epoch=True, eta_min=0)
]
default_hooks = dict(
    logger=dict(interval=5), checkpoint=dict(interval=5, max_keep_ckpts=2))
# the toy lr is for one process x 8 images (--auto-scale-lr scales from it)
auto_scale_lr = dict(enable=False, base_batch_size=8)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=10, norm_type=2))
