# What every mmaff deploy config for mmdeploy 1.3.x shares: mmdeploy's
# stock onnxruntime settings, plus the rewriters of
# mmaff/deployment/mmdeploy_rewriters.py (TorchScript exporter, matrix DFTs)
# and opset 17 instead of 11 (the DFT matrices use aten::outer, opset >= 12).
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
    input_shape=None,
    optimize=True)
backend_config = dict(type='onnxruntime')
