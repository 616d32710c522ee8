"""tools/test.py and demo/image_demo.py run the prepared model
(``mmaff.prepare_for_inference``) by default and the plain one with
``--no-prepare``, with the same results.

Detections are compared on a detector without near-tied scores
(``sharp_det``), with NMS and the top-k cuts switched off, and box by box
with the tie-aware matcher: on the barely trained toy detector float
rounding alone reorders NMS, so bare mAP equality would test the rounding,
not the transform."""
import pickle
import re

import numpy as np
from conftest import TOY_CONFIGS
from helpers import run_python, run_tool, success_log

from mmaff.deployment.matching import DetectionMatch, match_detections


def final_metrics(log: str) -> dict[str, str]:
    """The metrics of the final ``Iter(test)`` / ``Epoch(test)`` line, as
    printed."""
    line = [ln for ln in log.splitlines() if '(test)' in ln and
            ('mIoU' in ln or 'bbox_mAP' in ln)][-1]
    return dict(re.findall(r'((?:coco/)?[a-zA-Z_0-9]*(?:mAP|IoU|Acc)'
                           r'[a-zA-Z_0-9]*): ([\d.-]+)', line))


def test_test_py_prepared_segmentor_keeps_the_metrics(trained_seg, toy_ade):
    config = TOY_CONFIGS['segmentation']
    plain = final_metrics(success_log(run_tool(
        'test.py', config, toy_ade, trained_seg, '--no-prepare')))
    # with --device: the segmentor is moved to the CPU before preparing
    prepared = final_metrics(success_log(run_tool(
        'test.py', config, toy_ade, trained_seg, '--device', 'cpu')))
    assert len(plain) >= 3
    assert prepared == plain


def test_test_py_prepared_detector_gives_the_same_boxes(sharp_det, toy_coco,
                                                        tmp_path):
    config = TOY_CONFIGS['detection']
    # NMS off and no top-k cuts: with them, two boxes whose overlap sits at
    # the NMS threshold let float rounding pick different survivors, and
    # the difference cascades down to the max_per_img cut (a fresh-clone
    # run: 1 of 800 boxes). Only the score threshold still decides.
    no_cuts = {'model.test_cfg.nms.iou_threshold': 1.0,
               'model.test_cfg.score_thr': 0.3,
               'model.test_cfg.nms_pre': 100000,
               'model.test_cfg.max_per_img': 100000}
    runs = {}
    for name, extra in (('plain', ('--no-prepare', )), ('prepared', ())):
        out = tmp_path / f'{name}.pkl'
        log = success_log(run_tool('test.py', config, toy_coco, sharp_det,
                                   '--out', str(out), *extra, **no_cuts))
        runs[name] = (final_metrics(log), pickle.loads(out.read_bytes()))
    total = DetectionMatch(0, 0, 0, 0.)
    for ours, ref in zip(runs['prepared'][1], runs['plain'][1]):
        rows = []
        for sample in (ours, ref):
            pred = sample['pred_instances']
            rows.append((np.concatenate([
                np.asarray(pred['bboxes']),
                np.asarray(pred['scores'])[:, None]], axis=1),
                np.asarray(pred['labels'])))
        total += match_detections(*rows[0], *rows[1], box_tol=1e-2,
                                  score_tol=1e-4)
    assert len(runs['plain'][1]) >= 2
    assert total.twins >= 20 and total.twins >= 10 * total.ties
    assert total.unexplained == 0
    assert runs['prepared'][0] == runs['plain'][0]


def test_test_py_refuses_compile_without_prepare(trained_seg, toy_ade):
    result = run_tool('test.py', TOY_CONFIGS['segmentation'], toy_ade,
                      trained_seg, '--no-prepare', '--compile')
    assert result.returncode != 0
    assert 'error: --compile needs the prepared model' in result.stderr


def test_image_demo_prepared_gives_the_same_summaries(trained_seg, toy_ade,
                                                      tmp_path):
    image = toy_ade + 'images/validation'
    args = (image, TOY_CONFIGS['segmentation'], trained_seg, '--device',
            'cpu')
    plain = success_log(run_python('demo/image_demo.py', *args, '--out-dir',
                                   tmp_path / 'a', '--no-prepare'))
    prepared = success_log(run_python('demo/image_demo.py', *args,
                                      '--out-dir', tmp_path / 'b'))

    def lines(log):
        return [ln.split(' -> ')[0] for ln in log.splitlines()
                if ' -> ' in ln]

    assert len(lines(plain)) >= 2
    assert lines(prepared) == lines(plain)
