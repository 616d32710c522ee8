"""End-to-end deployment: exports with post-processing
(tools/deployment/export_onnx.py --postprocess, mmaff.deployment) and the
runtime inference tool (tools/deployment/onnx_inference.py) against
PyTorch on toy-trained checkpoints."""
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import TOY_CONFIGS
from helpers import run_python

from mmaff.deployment.end_to_end import DetectorEndToEnd
from mmaff.deployment.export import (
    FASTEST_DFT_MODE,
    export_onnx,
    read_metadata,
)
from mmaff.deployment.inference import ExportedModel
from mmaff.deployment.matching import DetectionMatch, match_detections
from mmaff.deployment.runtime import RuntimeSession
from mmaff.utils.config import build_model_from_config, read_config

RETINANET = 'configs/detection/retinanet_affnet-et_fpn_1x_coco_toy.py'


@pytest.mark.parametrize('config,spread', [
    (TOY_CONFIGS['detection'], 3.), (RETINANET, 1.5)])
def test_postprocess_equals_mmdet_predict_by_feat(config, spread):
    """The exported post-processing is mmdet's, box for box, on head maps
    whose scores are well apart (softmax SSD, sigmoid RetinaNet)."""
    model = build_model_from_config(read_config(config))
    torch.manual_seed(0)
    with torch.no_grad():
        cls_scores, bbox_preds = model(torch.rand(2, 3, 320, 320),
                                       mode='tensor')
        cls_scores = [torch.randn_like(c) * spread for c in cls_scores]
        bbox_preds = [torch.randn_like(b) for b in bbox_preds]
        metas = [dict(img_shape=(320, 320), scale_factor=(1., 1.))] * 2
        expected = model.bbox_head.predict_by_feat(
            cls_scores, bbox_preds, batch_img_metas=metas, rescale=False)
        wrapper = DetectorEndToEnd(model, max_det=80)
        dets, labels = wrapper.postprocess(cls_scores, bbox_preds,
                                           (320, 320))
    assert dets.shape == (2, 80, 5) and labels.shape == (2, 80)
    for image, ref in enumerate(expected):
        found = labels[image] >= 0
        n = int(found.sum())
        assert n == min(80, len(ref)) and n > 20
        assert found[:n].all()  # detections first, then the padding
        torch.testing.assert_close(dets[image, :n, :4], ref.bboxes[:n])
        torch.testing.assert_close(dets[image, :n, 4], ref.scores[:n])
        assert torch.equal(labels[image, :n], ref.labels[:n])
        assert (dets[image, n:] == 0).all()


@pytest.fixture(scope='module')
def det_export(sharp_det, tmp_path_factory):
    """SSDLite-AFFNet-ET exported end to end by the tool, dynamic batch."""
    out = tmp_path_factory.mktemp('det_export') / 'ssdlite.onnx'
    result = run_python('tools/deployment/export_onnx.py',
                        TOY_CONFIGS['detection'], '--checkpoint', sharp_det,
                        '--postprocess', '--max-det', '50', '--dynamic',
                        'batch', '--batch-size', '2', '--out', out,
                        timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stdout


def test_detector_export_has_nms_and_documented_outputs(det_export):
    path, stdout = det_export
    assert f'DFT mode {FASTEST_DFT_MODE["onnxruntime"]}' in stdout
    assert 'outputs: dets (2, 50, 5) float32, labels (2, 50) int64' in stdout
    gap = float(re.search(r'matching PyTorch detection (\S+)', stdout)[1])
    assert gap <= 1e-4 and ' 0 unmatched)' in stdout
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert {'NonMaxSuppression', 'TopK'} <= ops
    assert 'DFT' not in ops  # the matmul DFT, onnxruntime's faster mode
    # the filters' export-only soft-shrink (Clip, Sub): the exporter's
    # strict fallback capture, which mmdet's ONNX-only box decoding forced,
    # traced the eager one (Abs, Sign, Where, ...)
    assert 'Sign' not in ops and 'Clip' in ops
    meta = read_metadata(path)
    assert meta['task'] == 'detection' and meta['postprocess']
    assert meta['max_det'] == 50 and meta['dynamic'] == ['batch']
    assert meta['classes'] == ['circle', 'square', 'triangle', 'star']
    session = RuntimeSession(str(path))
    dets, labels = session(np.random.rand(3, 3, 320, 320).astype('float32'))
    assert dets.shape == (3, 50, 5) and labels.shape == (3, 50)
    # scores best first, padding rows zero with label -1
    scores = dets[..., 4]
    assert (np.diff(scores, axis=1) <= 0).all()
    assert ((labels == -1) == (scores == 0)).all()


def test_match_detections_tells_twins_ties_and_differences():
    ref = np.array([[10, 10, 50, 50, 0.9], [12, 10, 52, 50, 0.5],
                    [0, 0, 0, 0, 0]], dtype=np.float32)
    ref_labels = np.array([0, 1, -1])
    # in another order, within tolerance: all twins (padding included)
    dets = ref[[1, 0, 2]] + np.float32(2e-5)
    match = match_detections(dets, ref_labels[[1, 0, 2]], ref, ref_labels,
                             1e-4, 1e-4)
    assert match[:3] == (3, 0, 0) and 1e-5 < match.worst_gap < 1e-4
    # NMS kept the other of two tied overlapping boxes: a tie, not a twin
    tied = np.array([[13, 10, 53, 50, 0.5 + 5e-6]], dtype=np.float32)
    assert match_detections(tied, np.array([1]), ref, ref_labels, 1e-4,
                            1e-4)[:3] == (0, 1, 0)
    # a score apart, a box apart (its score near, not tied) or another
    # label: unexplained
    for det, label in (([12, 10, 52, 50, 0.6], 1),
                       ([30, 10, 70, 50, 0.9 + 5e-5], 0),
                       ([10, 10, 50, 50, 0.9], 2)):
        match = match_detections(np.array([det], dtype=np.float32),
                                 np.array([label]), ref, ref_labels, 1e-4,
                                 1e-4)
        assert match[:3] == (0, 0, 1), (det, label)
    total = sum([match, match], DetectionMatch(0, 0, 0, 0.))
    assert total.unexplained == 2


def detection_rows(instances) -> tuple[np.ndarray, np.ndarray]:
    """An mmdet ``pred_instances`` as (K, 5) boxes and scores, labels."""
    dets = torch.cat([instances.bboxes, instances.scores[:, None]], dim=1)
    return dets.numpy(), instances.labels.numpy()


def test_runtime_detections_equal_pytorch(det_export, sharp_det, toy_coco):
    cfg = read_config(TOY_CONFIGS['detection'])
    model = build_model_from_config(cfg, sharp_det)
    exported = ExportedModel(str(det_export[0]), cfg)
    images = sorted(Path(toy_coco, 'val').glob('*.jpg'))
    matched = 0
    for image in images:
        ours = exported.predict(str(image)).pred_instances
        inputs, sample = exported.preprocess(str(image))
        with torch.no_grad():
            ref = model.predict(inputs, [sample])[0].pred_instances[:50]
        assert len(ours) == len(ref) == 50
        # twins: same label, box within 1 px, score within 1e-4
        match = match_detections(*detection_rows(ours),
                                 *detection_rows(ref), 1., 1e-4)
        assert match.unexplained == 0, f'{image}: {match}'
        matched += match.twins
    # ties are few with sharp_det, and tied boxes that do not overlap are
    # both kept: four counted runs matched 46 to 50 per image
    assert matched >= 40 * len(images)


def test_retinanet_exports_end_to_end(tmp_path):
    model = build_model_from_config(read_config(RETINANET))
    path = str(tmp_path / 'retinanet.onnx')
    export_onnx(model, path, (128, 128), postprocess=True,
                dft_mode='matmul', score_thr=0.0, max_det=20)
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert 'NonMaxSuppression' in ops and 'Sign' not in ops
    dets, labels = RuntimeSession(path)(
        np.random.rand(1, 3, 128, 128).astype('float32'))
    assert dets.shape == (1, 20, 5) and labels.shape == (1, 20)
    assert (labels >= 0).sum() > 0  # sigmoid scores pass threshold 0


@pytest.fixture(scope='module')
def seg_export(trained_seg, toy_ade, tmp_path_factory):
    cfg = read_config(TOY_CONFIGS['segmentation'])
    model = build_model_from_config(cfg, trained_seg)
    path = str(tmp_path_factory.mktemp('seg_export') / 'deeplabv3.onnx')
    # toy images are 128 high and up to ~170 wide
    export_onnx(model, path, (128, 192), postprocess=True, dft_mode='matmul',
                backend='onnxruntime',
                classes=cfg.test_dataloader.dataset.metainfo['classes'])
    return path, cfg, model


def test_runtime_label_maps_equal_pytorch(seg_export, toy_ade):
    path, cfg, model = seg_export
    graph = onnx.load(path).graph
    assert [o.name for o in graph.output] == ['label_map']
    # onnxruntime's form of the label map: arg-max over channels-last
    argmax = [n for n in graph.node if n.op_type == 'ArgMax']
    assert len(argmax) == 1
    assert onnx.helper.get_node_attr_value(argmax[0], 'axis') == 3
    exported = ExportedModel(path, cfg)
    images = sorted(Path(toy_ade, 'images', 'validation').glob('*.jpg'))[:3]
    for image in images:
        ours = exported.predict(str(image)).pred_sem_seg.data
        inputs, sample = exported.preprocess(str(image))
        with torch.no_grad():
            ref = model.predict(inputs, [sample])[0].pred_sem_seg.data
        assert ours.shape == ref.shape == (1, *sample.ori_shape)
        equal = float((ours == ref).float().mean())
        assert equal >= 0.999, f'{image}: {equal:.4%} of pixels equal'


def test_runtime_probabilities_equal_pytorch(trained_cls, toy_imagenet,
                                             tmp_path):
    cfg = read_config(TOY_CONFIGS['classification'])
    model = build_model_from_config(cfg, trained_cls)
    path = str(tmp_path / 'cls.onnx')
    export_onnx(model, path, (64, 64), postprocess=True)
    exported = ExportedModel(path, cfg)
    image = str(sorted(Path(toy_imagenet, 'val').rglob('*.JPEG'))[0])
    ours = exported.predict(image).pred_score
    inputs, sample = exported.preprocess(image)
    with torch.no_grad():
        ref = model.predict(inputs, [sample])[0].pred_score
    assert abs(float(ours.sum()) - 1) < 1e-5
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)


def test_onnx_inference_tool_draws_and_rejects_bad_input(
        seg_export, det_export, toy_ade, tmp_path):
    path, cfg_obj, _ = seg_export
    config = tmp_path / 'seg.py'
    cfg_obj.dump(str(config))
    images = Path(toy_ade, 'images', 'validation')
    out = tmp_path / 'out'
    result = run_python('tools/deployment/onnx_inference.py', path, config,
                        images, '--out-dir', out, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines()
             if ' label map, ' in line]
    assert len(lines) == len(list(images.glob('*.jpg')))
    assert len(list(out.glob('*.png'))) == len(lines)

    # a detector's export with the segmentation config
    result = run_python('tools/deployment/onnx_inference.py', det_export[0],
                        config, images, timeout=600)
    assert result.returncode == 1
    assert 'is a detection model, the config a segmentation one' in \
        result.stderr


def test_dynamic_batch_and_shape_export_uses_fft(tmp_path):
    from mmaff.deployment.export import choose_dft_mode
    mode, why = choose_dft_mode('onnxruntime', ('batch', 'shape'))
    assert mode == 'fft' and 'dynamic H and W' in why
    assert choose_dft_mode('openvino')[0] == FASTEST_DFT_MODE['openvino']
    model = build_model_from_config(read_config(TOY_CONFIGS['segmentation']))
    path = str(tmp_path / 'dynamic.onnx')
    with pytest.raises(ValueError, match='dynamic H and W need the fft'):
        export_onnx(model, path, (64, 64), postprocess=True,
                    dynamic=('shape', ), dft_mode='matmul')
    # onnxruntime's label map form reads the output size off the input
    module, _ = export_onnx(model, path, (64, 64), batch_size=2,
                            postprocess=True, dynamic=('batch', 'shape'),
                            dft_mode=mode, backend='onnxruntime')
    assert read_metadata(path)['dft_mode'] == 'fft'
    session = RuntimeSession(path)
    for shape in [(1, 3, 96, 160), (3, 3, 64, 64)]:
        x = np.random.rand(*shape).astype('float32')
        with torch.no_grad():
            expected = module(torch.from_numpy(x)).numpy()
        actual, = session(x)
        assert actual.shape == (shape[0], *shape[2:])
        assert (actual == expected).mean() >= 0.999
