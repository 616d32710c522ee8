# 400 iterations for the toy sets on a 2-core CPU: AdamW with gradient
# clipping, a short linear warmup, then mmseg's poly decay; loops and hooks
# otherwise as mmseg's iteration-based schedules.
_base_ = 'mmseg::_base_/schedules/schedule_80k.py'

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
