"""mmdeploy 1.3.1's torch2onnx with the deploy configs of
configs/deploy/mmdeploy/ (and mmaff.deployment.mmdeploy_rewriters) on the
unmodified toy configs, whose filters are in the default fft mode."""
import os.path as osp
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import TOY_CONFIGS

DEPLOY = 'configs/deploy/mmdeploy/'


def convert(task: str, deploy: str, checkpoint: str, image: str,
            work_dir) -> str:
    from mmdeploy.apis import torch2onnx
    from mmengine.config import Config
    model_cfg = Config.fromfile(TOY_CONFIGS[task])
    assert model_cfg.model.backbone.get('dft_mode', 'fft') == 'fft'
    torch2onnx(image, str(work_dir), 'end2end.onnx',
               Config.fromfile(DEPLOY + deploy), model_cfg, checkpoint,
               device='cpu')
    return osp.join(work_dir, 'end2end.onnx')


@pytest.mark.parametrize('task,deploy,outputs', [
    ('detection', 'detection_onnxruntime_static-320x320.py',
     ['dets', 'labels']),
    ('segmentation', 'segmentation_onnxruntime_static-512x512.py',
     ['output']),
])
def test_mmdeploy_torch2onnx(task, deploy, outputs, request, toy_coco,
                             toy_ade, tmp_path):
    import onnxruntime as ort
    checkpoint = request.getfixturevalue(f'trained_{task[:3]}')
    image = (toy_coco + 'val/1000001.jpg' if task == 'detection' else
             sorted(Path(toy_ade, 'images', 'validation').glob('*.jpg'))[0])
    path = convert(task, deploy, checkpoint, str(image), tmp_path)
    graph = onnx.load(path).graph
    ops = {node.op_type for node in graph.node}
    assert 'DFT' not in ops  # filters exported as matrix DFTs
    assert [o.name for o in graph.output] == outputs
    size = 320 if task == 'detection' else 512
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    result = session.run(None, {'input': np.random.rand(
        1, 3, size, size).astype('float32')})
    if task == 'detection':
        assert 'NonMaxSuppression' in ops
        dets, labels = result
        assert dets.shape[0] == 1 and dets.shape[2] == 5
        assert labels.shape == dets.shape[:2]
        assert ((dets[0, :, :4] >= 0) & (dets[0, :, :4] <= size)).all()
    else:
        assert result[0].shape == (1, 1, size, size)
        assert set(np.unique(result[0])) <= set(range(5))
