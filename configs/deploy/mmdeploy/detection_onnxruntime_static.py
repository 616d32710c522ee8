# mmdeploy 1.3.x: mmaff detectors -> ONNX (onnxruntime), static shape.
# The settings of mmdeploy's configs/mmdet/detection/
# detection_onnxruntime_static.py, plus what mmaff needs on torch 2.x: the
# rewriters of mmaff/deployment/mmdeploy_rewriters.py (TorchScript exporter,
# matrix DFTs) and opset 17 instead of 11 (the DFT matrices use aten::outer,
# opset >= 12). input_shape=None: the size the model's test pipeline gives
# the conversion image; the -320x320 config fixes it.
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
    output_names=['dets', 'labels'],
    input_shape=None,
    optimize=True)
codebase_config = dict(
    type='mmdet',
    task='ObjectDetection',
    model_type='end2end',
    post_processing=dict(
        score_threshold=0.05,
        confidence_threshold=0.005,
        iou_threshold=0.5,
        max_output_boxes_per_class=200,
        pre_top_k=5000,
        keep_top_k=100,
        background_label_id=-1,
    ))
backend_config = dict(type='onnxruntime')
