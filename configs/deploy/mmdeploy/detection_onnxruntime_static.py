# mmdeploy 1.3.x: mmaff detectors -> ONNX (onnxruntime), static shape, with
# the settings of mmdeploy's configs/mmdet/detection/
# detection_onnxruntime_static.py. input_shape=None: the size the model's
# test pipeline gives the conversion image; the -320x320 config fixes it.
_base_ = ['./_base_/onnxruntime.py']

onnx_config = dict(output_names=['dets', 'labels'])
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
