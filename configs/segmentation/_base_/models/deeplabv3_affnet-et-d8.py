# DeepLabv3 on AFFNet-ET, laid out like the official AFFNet DeepLabv3: the
# ASPP head reads only the last stage (out_indices 4), run at output stride
# 8 (out_indices 3 and 4 dilated instead of strided), with 256 channels,
# rates (1, 6, 12, 18) + image pooling, dropout 0.1 and no auxiliary head;
# the five branches are fused by a 1x1 conv as in the official head
# (mmseg's ASPPHead uses a 3x3 one: see configs/segmentation/README.md).
_base_ = 'mmseg::_base_/models/deeplabv3_r50-d8.py'
custom_imports = dict(imports=['mmaff'], allow_failed_imports=False)

arch = 'et'
stage_channels = 144  # out_indices 4 of AFFNet-ET
norm_cfg = dict(type='SyncBN', requires_grad=True)

# Official AFFNet weights take RGB in [0, 1]. Batches are padded to the
# 512x512 crops of mmseg's ADE20K and VOC pipelines (the toy configs set
# their own size).
data_preprocessor = dict(
    mean=[0., 0., 0.], std=[255., 255., 255.], bgr_to_rgb=True,
    size=(512, 512))
model = dict(
    data_preprocessor=data_preprocessor,
    # the base sets a ResNet checkpoint here, which EncoderDecoder would
    # hand to the backbone as a `pretrained` argument
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmaff.AFFNet',
        arch=arch,
        out_indices=(4, ),
        output_stride=8,
        norm_cfg=norm_cfg,
        # the segmentor configs set the checkpoint (None: from scratch)
        init_cfg=dict(type='Pretrained', checkpoint=None, prefix='backbone.')),
    decode_head=dict(
        type='mmaff.AFFNetASPPHead',  # 1x1 fusion, as the official head
        in_channels=stage_channels,
        in_index=0,
        channels=256,
        dilations=(1, 6, 12, 18),
        dropout_ratio=0.1,
        norm_cfg=norm_cfg),
    auxiliary_head=None)
