# mmseg's runtime with two additions for every mmaff segmentation config:
# - pictures (tools/test.py --show-dir, the visualization hook) from
#   mmaff.SegOverlayVisualizer: pixels the data set ignores are drawn the same
#   neutral grey in ground truth and prediction, with a legend of the classes;
# - auto_scale_lr for train.py --auto-scale-lr: the configs' learning rates
#   are for 4 GPUs x 4 images (4xb4 in their names).
_base_ = 'mmseg::_base_/default_runtime.py'

visualizer = dict(
    type='mmaff.SegOverlayVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')
auto_scale_lr = dict(enable=False, base_batch_size=16)
