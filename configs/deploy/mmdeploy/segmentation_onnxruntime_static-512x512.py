# mmdeploy 1.3.x: mmaff segmentors -> ONNX (onnxruntime), static 512x512.
# The settings of mmdeploy's configs/mmseg/
# segmentation_onnxruntime_static-512x512.py, plus the mmaff rewriters
# (TorchScript exporter, matrix DFTs; see detection_onnxruntime_static.py)
# and opset 17 instead of 11.
custom_imports = dict(
    imports=['mmaff', 'mmaff.deployment.mmdeploy_rewriters'],
    allow_failed_imports=False)

onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=17,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['output'],
    input_shape=[512, 512],
    optimize=True)
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=True)
backend_config = dict(type='onnxruntime')
