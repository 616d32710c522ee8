# SSDLite-AFFNet-ET on the toy COCO-format set of
# tools/dataset_converters/make_toy_coco.py (same model and pipeline as the
# COCO config; 4 classes; a schedule that fits a CPU).
_base_ = './ssdlite_affnet-et_8xb24-600e_coco.py'

data_root = 'data/toy_coco/'
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'star'),
    palette=[(220, 40, 40), (40, 200, 40), (40, 60, 220), (230, 200, 30)])

# trained from scratch on the toy set
checkpoint = None
model = dict(
    backbone=dict(init_cfg=dict(checkpoint=checkpoint)),
    bbox_head=dict(num_classes=4))

# dataset fields shared by the two splits; the validation annotations are
# read by both the dataset and CocoMetric
toy_dataset = dict(data_root=data_root, metainfo=metainfo)
val_ann_file = 'annotations/instances_val.json'
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        times=1,
        dataset=dict(
            toy_dataset,
            ann_file='annotations/instances_train.json',
            data_prefix=dict(img='train/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=4))))
val_dataloader = dict(
    dataset=dict(
        toy_dataset, ann_file=val_ann_file, data_prefix=dict(img='val/')))
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
