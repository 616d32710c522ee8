# DeepLabv3 on AFFNet, ADE20K (see the -et config).
_base_ = './deeplabv3_affnet-et-d8_4xb4-80k_ade20k-512x512.py'

# its own variant's ImageNet weights (see the -et config)
checkpoint = 'checkpoints/affnet_in1k.pt'
model = dict(
    backbone=dict(arch='base', init_cfg=dict(checkpoint=checkpoint)),
    decode_head=dict(in_channels=320))
