# AFFNet-ET classifier on the toy ImageNet-layout set of
# tools/dataset_converters/make_toy_imagenet.py (4 classes, 96x96 images):
# the same model, optimizer and pipeline types as the ImageNet config, at
# 64x64 with a schedule that fits a CPU (a few minutes on 2 cores).
_base_ = './affnet-et_8xb128_in1k.py'

data_root = 'data/toy_imagenet/'
metainfo = dict(classes=('checker', 'circle', 'cross', 'ring'))
num_classes = 4

model = dict(head=dict(num_classes=num_classes))
data_preprocessor = dict(num_classes=num_classes)

# 64x64 crops; eval resizes the short side to 72 (= 64 * 288 / 256).
# Crops keep at least 35% of the image so that the shape stays in view.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=64,
        crop_ratio_range=(0.35, 1.0),
        interpolation='bilinear',
        backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=72,
        edge='short',
        interpolation='bilinear',
        backend='pillow'),
    dict(type='CenterCrop', crop_size=64),
    dict(type='PackInputs'),
]
# loader settings and dataset fields shared by the two splits
toy_loader = dict(batch_size=32, num_workers=2, persistent_workers=True)
toy_dataset = dict(data_root=data_root, metainfo=metainfo)
train_dataloader = dict(
    toy_loader, dataset=dict(toy_dataset, pipeline=train_pipeline))
val_dataloader = dict(
    toy_loader, dataset=dict(toy_dataset, pipeline=test_pipeline))
test_dataloader = val_dataloader
# top-5 accuracy is meaningless with 4 classes
val_evaluator = dict(topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=0.002))
max_epochs = 20
# 4 iterations per epoch (128 images): warmup over the first 2 epochs, then
# the per-epoch cosine to 0.1 x lr, as in the ImageNet config.
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=False,
        begin=0,
        end=8),
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=0.1,
        by_epoch=True,
        begin=2,
        end=max_epochs,
        T_max=max_epochs - 2),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
auto_scale_lr = dict(enable=False, base_batch_size=32)
default_hooks = dict(
    logger=dict(interval=4), checkpoint=dict(interval=5, max_keep_ckpts=2))
# No EMA: over a run this short, averaged BN statistics lag far behind the
# weights (the ImageNet configs keep it).
custom_hooks = []
