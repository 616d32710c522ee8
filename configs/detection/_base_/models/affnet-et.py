# AFFNet-ET as the backbone of the detectors here: each detector config
# lists this file next to its mmdet base and puts `affnet_backbone`, with the
# stages it taps (`out_indices`), in place of the base's backbone.
custom_imports = dict(imports=['mmaff'], allow_failed_imports=False)

arch = 'et'
# The ImageNet weights come from each detector config (its `checkpoint`).
affnet_backbone = dict(type='mmaff.AFFNet', arch=arch)
