# DeepLabv3 on AFFNet-ET (see _base_/models/deeplabv3_affnet-et-d8.py),
# Pascal VOC 2012 + SBD aug (21 classes), 512x512 crops, 40k iters, composed
# like mmseg's deeplabv3_r50-d8_4xb4-40k_voc12aug-512x512.py. Schedule and
# augmentation are mmseg's (the official ones are not published).
_base_ = [
    './_base_/models/deeplabv3_affnet-et-d8.py',
    'mmseg::_base_/datasets/pascal_voc12_aug.py',
    './_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py'
]

model = dict(decode_head=dict(num_classes=21))
