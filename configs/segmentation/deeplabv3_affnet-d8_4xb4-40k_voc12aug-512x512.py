# DeepLabv3 on AFFNet, Pascal VOC 2012 aug (see the -et config).
_base_ = './deeplabv3_affnet-et-d8_4xb4-40k_voc12aug-512x512.py'

# its own variant's ImageNet weights (see the -et config)
checkpoint = 'checkpoints/affnet_in1k.pt'
model = dict(
    backbone=dict(arch='base', init_cfg=dict(checkpoint=checkpoint)),
    decode_head=dict(in_channels=320))
