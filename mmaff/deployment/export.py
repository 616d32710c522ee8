"""ONNX export of mm models, with or without their post-processing.

:func:`export_onnx` writes the graph and records in the file's metadata
what a runtime needs to use it (task, input size, class names, DFT mode):
``tools/deployment/onnx_inference.py`` reads it from there.
"""
import json

import torch
import torch.nn as nn

from mmaff.models import set_dft_mode

from .end_to_end import OUTPUT_NAMES, end_to_end, task_of
from .label_map import LABEL_MAP_TRANSLATIONS
from .nms import NMS_TRANSLATIONS
from .tensor_forward import TensorForward

#: How each runtime runs the AFF filter fastest (measured with
#: ``tools/benchmarks/speed.py --sections deployment``, see
#: docs/benchmarks.md): ONNX ``DFT`` is slow in both, the DFT as real
#: matrix products is not.
FASTEST_DFT_MODE = {'onnxruntime': 'matmul', 'openvino': 'matmul'}
#: The ``custom_translation_table`` of the dynamo exporter: mmaff's ops.
ONNX_TRANSLATIONS = {**NMS_TRANSLATIONS, **LABEL_MAP_TRANSLATIONS}
#: What may vary in an export: the batch size, the input's H and W.
DYNAMIC_AXES = ('batch', 'shape')
#: The metadata keys export_onnx writes (as ``mmaff.<key>``).
METADATA_KEYS = ('task', 'postprocess', 'input_shape', 'dynamic', 'dft_mode',
                 'classes', 'output_names', 'score_thr', 'max_det')


def check_exporter(exporter: str, dft_modes: set[str]) -> None:
    """Raise ValueError if ``exporter`` cannot export filters in these
    DFT modes: the TorchScript exporter has no rule for FFTs."""
    if exporter == 'torchscript' and 'fft' in dft_modes:
        raise ValueError(
            'the TorchScript exporter cannot export FFTs (no rule for '
            'aten::fft_rfft2); use the dynamo exporter (--exporter dynamo) '
            'or the matmul DFT mode (--dft matmul)')


def choose_dft_mode(backend: str, dynamic: tuple[str, ...] = ()
                    ) -> tuple[str, str]:
    """The DFT mode for an export to ``backend`` and why.

    Returns:
        tuple[str, str]: The mode and a one-line reason.
    """
    if 'shape' in dynamic:
        return 'fft', ('dynamic H and W need ONNX DFT: the matmul DFT bakes '
                       'the input size into its matrices')
    mode = FASTEST_DFT_MODE[backend]
    return mode, f'the faster mode in {backend} (docs/benchmarks.md)'


def flatten_outputs(outputs) -> list[torch.Tensor]:
    """Nested tuples / lists of tensors as one flat list, in ONNX output
    order."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    flat = []
    for item in outputs:
        flat += flatten_outputs(item)
    return flat


def exportable(model: nn.Module, postprocess: bool = False,
               backbone_only: bool = False, backend: str | None = None,
               **detector_kwargs) -> nn.Module:
    """The module to export: the end-to-end model (``postprocess``, its
    graph the faster one for ``backend`` where forms differ), the backbone
    alone, or the raw head outputs."""
    if postprocess and backbone_only:
        raise ValueError('postprocess and backbone_only exclude each other')
    if postprocess:
        return end_to_end(model, backend, **detector_kwargs).eval()
    return TensorForward(model, backbone_only).eval()


def _dynamic_shapes(dynamic: tuple[str, ...]) -> dict | None:
    if not dynamic:
        return None
    dims = {}
    if 'batch' in dynamic:
        dims[0] = torch.export.Dim('batch', min=1, max=1024)
    if 'shape' in dynamic:
        # the backbone halves the size five times
        dims[2] = 32 * torch.export.Dim('h32', min=1, max=128)
        dims[3] = 32 * torch.export.Dim('w32', min=1, max=128)
    return {'images': dims}


def export_onnx(model: nn.Module,
                path: str,
                input_shape: tuple[int, int],
                batch_size: int = 1,
                postprocess: bool = False,
                backbone_only: bool = False,
                dynamic: tuple[str, ...] = (),
                dft_mode: str | None = None,
                opset: int = 18,
                exporter: str = 'dynamo',
                backend: str | None = None,
                classes: list[str] | None = None,
                score_thr: float | None = None,
                max_det: int | None = None) -> tuple[nn.Module, torch.Tensor]:
    """Export ``model`` to the ONNX file ``path``.

    Args:
        model (nn.Module): An mm detector, segmentor or classifier in eval
            mode, weights loaded.
        path (str): The ONNX file to write.
        input_shape (tuple[int, int]): The (H, W) to trace with; the fixed
            input size unless ``dynamic`` holds ``'shape'``.
        batch_size (int): Batch to trace with. Defaults to 1.
        postprocess (bool): Export the end-to-end model (see
            :mod:`mmaff.deployment.end_to_end`). Defaults to False: the
            raw head outputs.
        backbone_only (bool): Export the backbone's features. Defaults to
            False.
        dynamic (tuple[str]): Any of :data:`DYNAMIC_AXES`. Defaults to
            static.
        dft_mode (str, optional): Switch the AFF filters to this mode
            first. Defaults to leaving them as they are.
        opset (int): ONNX opset. Defaults to 18.
        exporter (str): ``'dynamo'`` or ``'torchscript'`` (which cannot
            export FFTs, nor the NMS of ``postprocess``).
        backend (str, optional): The runtime the file is for
            (``'onnxruntime'`` or ``'openvino'``): where equivalent graphs
            differ in speed, its faster one (dynamo exporter only).
            Defaults to None: the plain graph, for any runtime.
        classes (list[str], optional): Class names, kept in the metadata.
        score_thr (float, optional): Detectors' score threshold.
        max_det (int, optional): Detectors' detections per image.

    Returns:
        tuple: The exported module (for checking) and the traced input.
    """
    unknown = set(dynamic) - set(DYNAMIC_AXES)
    if unknown:
        raise ValueError(f'unknown dynamic axes {sorted(unknown)}; choose '
                         f'from {DYNAMIC_AXES}')
    if dft_mode is not None:
        set_dft_mode(model, dft_mode)
    modes = {m.dft_mode for m in model.modules() if hasattr(m, 'dft_mode')}
    if 'shape' in dynamic and 'matmul' in modes:
        raise ValueError('dynamic H and W need the fft DFT mode: the matmul '
                         'DFT bakes the input size into its matrices')
    check_exporter(exporter, modes)
    task = task_of(model)
    if exporter == 'torchscript' and postprocess and task == 'detection':
        raise ValueError('the TorchScript exporter cannot export the '
                         'detectors\' NMS; use the dynamo exporter')
    detector_kwargs = (dict(score_thr=score_thr, max_det=max_det)
                       if task == 'detection' else {})
    module = exportable(model, postprocess, backbone_only,
                        backend if exporter == 'dynamo' else None,
                        **detector_kwargs)
    # shaped like a normalised image (unit spread), which the returned input
    # is also checked on: a [0, 1) one is nearly flat after the stem, so a
    # detector scores neighbouring anchors alike and float rounding picks
    # between overlapping boxes (one in twelve draws on a toy SSDLite)
    inputs = torch.randn(batch_size, 3, *input_shape)
    names = OUTPUT_NAMES[task] if postprocess else None
    kwargs = dict(input_names=['images'], output_names=names,
                  opset_version=opset, external_data=False)
    if exporter == 'dynamo':
        torch.onnx.export(module, (inputs, ), path, dynamo=True,
                          dynamic_shapes=_dynamic_shapes(tuple(dynamic)),
                          custom_translation_table=ONNX_TRANSLATIONS,
                          **kwargs)
    else:
        axes = None
        if 'batch' in dynamic:
            axes = {'images': {0: 'batch'}}
        torch.onnx.export(module, (inputs, ), path, dynamo=False,
                          dynamic_axes=axes, **kwargs)
    metadata = dict(
        task=task if not backbone_only else 'backbone',
        postprocess=postprocess,
        input_shape=list(input_shape),
        dynamic=list(dynamic),
        dft_mode=sorted(modes)[0] if len(modes) == 1 else None,
        classes=list(classes) if classes else None,
        output_names=names,
        score_thr=getattr(module, 'score_thr', None),
        max_det=getattr(module, 'max_det', None))
    write_metadata(path, metadata)
    return module, inputs


def write_metadata(path: str, metadata: dict) -> None:
    """Store ``metadata`` (JSON values) in the ONNX file's
    ``metadata_props`` as ``mmaff.<key>``."""
    import onnx
    model = onnx.load(path)
    for key, value in metadata.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = f'mmaff.{key}', json.dumps(value)
    onnx.save(model, path)


def read_metadata(path: str) -> dict:
    """What :func:`write_metadata` stored (keys without ``mmaff.``); an
    empty dict for ONNX files from elsewhere."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    return {
        prop.key[len('mmaff.'):]: json.loads(prop.value)
        for prop in model.metadata_props if prop.key.startswith('mmaff.')
    }
