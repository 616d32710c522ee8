# AFFNet-ET on ImageNet-1k, 256x256, with the official training recipe
# (microsoft/TokenMixers AFFNet-ET config): 300 epochs, AdamW lr 0.009,
# weight decay 0.008 except on 1-D parameters, 20k-iteration linear warmup,
# per-epoch cosine to 0.0009, label smoothing 0.1, classifier dropout 0.1,
# EMA (momentum 0.0005), RandomResizedCrop + flip only, 8 GPUs x 128.
# Mixed precision as in the official runs: `tools/train.py CONFIG --amp`.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmaff'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    # default out_indices=-1: the final 1x1 expansion conv, 4 * 144 = 576
    backbone=dict(
        type='mmaff.AFFNet',
        arch='et',
        # trained from scratch, as the paper's ImageNet models; to start from
        # weights (e.g. fine-tuning on another data set):
        # --cfg-options model.backbone.init_cfg.checkpoint=FILE_OR_URL
        init_cfg=dict(type='Pretrained', checkpoint=None,
                      prefix='backbone.')),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='mmaff.DropoutLinearClsHead',
        num_classes=1000,
        in_channels=576,
        dropout_rate=0.1,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1)))

# Official convention: RGB in [0, 1], no mean/std normalisation.
data_preprocessor = dict(
    num_classes=1000,
    mean=[0., 0., 0.],
    std=[255., 255., 255.],
    to_rgb=True)

# The official pipeline resizes PIL images (bilinear, antialiased), hence
# the pillow backend.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='RandomResizedCrop',
        scale=256,
        crop_ratio_range=(0.08, 1.0),
        aspect_ratio_range=(3. / 4., 4. / 3.),
        interpolation='bilinear',
        backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='ResizeEdge',
        scale=288,
        edge='short',
        interpolation='bilinear',
        backend='pillow'),
    dict(type='CenterCrop', crop_size=256),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=128, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# AdamW; `flat_decay_mult=0` takes weight decay off every 1-D parameter
# (norm weights and biases, fc bias) like the official
# `no_decay_bn_filter_bias`; the AFF filter's w1/b1/w2/b2 (3-D/4-D) and all
# conv / fc weights keep it.
optim_wrapper = dict(
    optimizer=dict(
        type='AdamW',
        lr=0.009,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.008),
    paramwise_cfg=dict(flat_decay_mult=0.0))

max_epochs = 300
warmup_iters = 20000
# 20k iterations are 16 epochs of ImageNet-1k at a total batch of 1024
# (1,252 iterations per epoch): the per-epoch cosine starts there.
warmup_epochs = 16
param_scheduler = [
    # 1e-6 -> 0.009 over iterations [0, 20000)
    dict(
        type='LinearLR',
        start_factor=1e-6 / 0.009,
        end_factor=1.0,
        by_epoch=False,
        begin=0,
        end=warmup_iters),
    # 0.009 -> 0.0009 (0.1 x lr), stepped once per epoch
    dict(
        type='CosineAnnealingLR',
        eta_min_ratio=0.1,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        T_max=max_epochs - warmup_epochs),
]
# BN statistics synchronised over the GPUs, as in the official runs (BN
# momentum 0.1 is torch's default; CPU multi-process runs fall back to BN).
sync_bn = 'torch'

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# lr 0.009 is for 8 GPUs x 128 images (`tools/train.py --auto-scale-lr`
# rescales it for other totals).
auto_scale_lr = dict(base_batch_size=1024)

# EMA of all weights and buffers (BN statistics included), updated every
# iteration: ema = 0.9995 * ema + 0.0005 * model. Validation, testing and the
# saved `state_dict` use the EMA weights, as the released checkpoints do.
custom_hooks = [
    dict(
        type='EMAHook',
        momentum=0.0005,
        update_buffers=True,
        priority='ABOVE_NORMAL')
]
