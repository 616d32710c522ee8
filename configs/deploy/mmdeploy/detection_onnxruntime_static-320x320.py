# detection_onnxruntime_static.py for a fixed 320x320 input (SSDLite's test
# size; mmdeploy resizes the image to it without keeping the aspect ratio).
_base_ = ['./detection_onnxruntime_static.py']

onnx_config = dict(input_shape=[320, 320])
