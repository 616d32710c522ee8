"""The label map's ONNX forms (mmaff.deployment.label_map): each gives
PyTorch's labels in both runtimes."""
import contextlib
import io

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmaff.deployment.end_to_end import SegmentorEndToEnd
from mmaff.deployment.export import ONNX_TRANSLATIONS
from mmaff.deployment.label_map import LABEL_MAP_FORMS, label_map
from mmaff.deployment.runtime import RuntimeSession


class LabelMap(nn.Module):

    def __init__(self, align_corners: bool, form: str) -> None:
        super().__init__()
        self.align_corners, self.form = align_corners, form

    def forward(self, logits, images):
        return label_map(logits, images, self.align_corners, self.form)


def reference(logits, size, align_corners):
    return F.interpolate(logits, size=size, mode='bilinear',
                         align_corners=align_corners).argmax(1).numpy()


def export(tmp_path, form, align_corners, logits, images):
    path = str(tmp_path / f'{form}_{align_corners}.onnx')
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(LabelMap(align_corners, form).eval(),
                          (logits, images),
                          path, dynamo=True, opset_version=18,
                          custom_translation_table=ONNX_TRANSLATIONS)
    return path


@pytest.mark.parametrize('form', sorted(set(LABEL_MAP_FORMS.values())))
@pytest.mark.parametrize('align_corners', [False, True])
def test_forms_give_pytorch_labels_in_both_runtimes(tmp_path, form,
                                                    align_corners):
    torch.manual_seed(0)
    logits = torch.randn(2, 7, 9, 11)
    images = torch.zeros(2, 3, 37, 45)
    path = export(tmp_path, form, align_corners, logits, images)
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert ('TopK' in ops) == (form == 'topk')
    assert ('ArgMax' in ops) == (form == 'channels_last')
    expected = reference(logits, (37, 45), align_corners)
    assert torch.equal(label_map(logits, images, align_corners, form),
                       torch.from_numpy(expected))
    for runtime in ('onnxruntime', 'openvino'):
        labels = RuntimeSession(path, runtime)(logits.numpy(),
                                               images.numpy())[0]
        assert labels.shape == (2, 37, 45)
        np.testing.assert_array_equal(labels, expected, err_msg=runtime)


def test_ties_give_a_likeliest_class(tmp_path):
    """Exactly tied logits: onnxruntime's channels-last arg-max returns the
    first tied class as PyTorch does; every form returns one of the tied
    likeliest classes."""
    torch.manual_seed(0)
    logits = torch.randint(0, 3, (1, 6, 8, 8)).float()
    images = torch.zeros(1, 3, 32, 32)
    up = F.interpolate(logits, size=(32, 32), mode='bilinear',
                       align_corners=False)
    best = up.max(1).values.numpy()
    for runtime, form in LABEL_MAP_FORMS.items():
        path = export(tmp_path, form, False, logits, images)
        labels = RuntimeSession(path, runtime)(logits.numpy(),
                                               images.numpy())[0]
        chosen = np.take_along_axis(up.numpy(), labels[:, None], 1)[:, 0]
        np.testing.assert_array_equal(chosen, best)
        if form == 'channels_last':
            np.testing.assert_array_equal(
                labels, reference(logits, (32, 32), False))


def test_segmentor_rejects_unknown_form():
    with pytest.raises(ValueError, match="unknown label map form 'nhwc'"):
        SegmentorEndToEnd(nn.Identity(), 'nhwc')
