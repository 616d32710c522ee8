# mmdeploy 1.3.x: mmaff segmentors -> ONNX (onnxruntime), static 512x512,
# with the settings of mmdeploy's configs/mmseg/
# segmentation_onnxruntime_static-512x512.py.
_base_ = ['./_base_/onnxruntime.py']

onnx_config = dict(input_shape=[512, 512])
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=True)
