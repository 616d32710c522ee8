# DeepLabv3 on AFFNet-ET (see _base_/models/deeplabv3_affnet-et-d8.py),
# ADE20K (150 classes), 512x512 crops, 80k iters, composed like mmseg's
# deeplabv3_r50-d8_4xb4-80k_ade20k-512x512.py. Schedule and augmentation
# are mmseg's (the official ones are not published).
_base_ = [
    './_base_/models/deeplabv3_affnet-et-d8.py',
    'mmseg::_base_/datasets/ade20k.py', './_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py'
]

model = dict(decode_head=dict(num_classes=150))
