"""The inference transform: one explicit call that turns any mm model
(AFFNet or not) into its fast inference form, as timm's
``reparameterize_model`` and mmyolo's ``switch_to_deploy`` do.

The model itself stays the paper's; everything that only pays at inference
lives here, and :class:`~mmaff.engine.hooks.PrepareForInferenceHook` applies
it where the tools run inference.
"""
import copy

import torch
import torch.nn as nn

#: Set on a prepared model, so that preparing it again changes nothing.
PREPARED_FLAG = '_mmaff_prepared'
#: The submodules compiled by ``compile=True``, when the model has them
#: (mm detectors, segmentors and classifiers); any other model is compiled
#: whole.
COMPILED_PARTS = ('backbone', 'neck')


def _compile(model: nn.Module, options: dict) -> None:
    parts = [getattr(model, name) for name in COMPILED_PARTS
             if isinstance(getattr(model, name, None), nn.Module)]
    for part in parts or [model]:
        # in place: the module keeps its type, attributes and state dict
        part.compile(**options)


def prepare_for_inference(model: nn.Module,
                          inplace: bool = False,
                          compile: bool | dict = False,
                          channels_last: bool = True,
                          dft_mode: str | None = None,
                          prepack: bool = True) -> nn.Module:
    """Return the inference form of ``model``.

    In order: eval mode; every BatchNorm that follows a convolution folded
    into it (mmcv's ``fuse_conv_bn``, so it also serves the peers' models);
    channels-last weights (oneDNN's convolutions are faster on them, and
    the activations follow the weights' format); mmcv ConvModules as
    prepacked oneDNN calls with fused activations; each module's own
    ``switch_to_deploy()`` (the AFF filters build their MLP matrices once
    instead of per call); optionally ``torch.compile``. The DFT form is
    picked per map size at run time either way (see
    :mod:`mmaff.models.layers.dft`).

    Outputs equal the plain model's up to float rounding (1e-5 relative).
    The prepared model is for inference only: its BatchNorms are gone and
    later changes of the weights are not seen, so load weights first.
    Preparing a prepared model again changes nothing.

    Args:
        model (nn.Module): Any model: a classifier, detector, segmentor,
            backbone or single layer.
        inplace (bool): Change ``model`` itself instead of a copy.
            Defaults to False.
        compile (bool | dict): Also ``torch.compile`` the backbone and neck
            (or the whole model when it has neither); a dict is passed to
            ``torch.compile`` as options. Defaults to False.
        channels_last (bool): Convert the weights to channels-last.
            Defaults to True.
        dft_mode (str, optional): Switch the AFF filters to this DFT mode
            (``'matmul'`` before exporting to a runtime without an FFT op).
            Defaults to None (keep).
        prepack (bool): Run mmcv ConvModules as oneDNN calls on weights
            prepacked once, with the activation fused (see
            :mod:`mmaff.deployment.onednn`; only where torch has the ops,
            with ``channels_last``). Defaults to True.

    Returns:
        nn.Module: The prepared model (``model`` itself if ``inplace``).
    """
    from mmcv.cnn import fuse_conv_bn

    from mmaff.models import set_dft_mode

    from .onednn import prepack_convolutions
    if not isinstance(model, nn.Module):
        raise TypeError('prepare_for_inference: model must be an nn.Module, '
                        f'got {type(model).__name__}')
    if not isinstance(compile, (bool, dict)):
        raise TypeError('prepare_for_inference: compile must be a bool or a '
                        f'dict of torch.compile options, got {compile!r}')
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    if dft_mode is not None:
        set_dft_mode(model, dft_mode)
    if not getattr(model, PREPARED_FLAG, False):
        fuse_conv_bn(model)
        if channels_last:
            model.to(memory_format=torch.channels_last)
            if prepack:
                prepack_convolutions(model)
        for module in model.modules():
            switch = getattr(module, 'switch_to_deploy', None)
            if callable(switch):
                switch()
        setattr(model, PREPARED_FLAG, True)
    if compile is not False and not getattr(model, '_mmaff_compiled', False):
        _compile(model, {} if compile is True else dict(compile))
        model._mmaff_compiled = True
    return model


def is_prepared(model: nn.Module) -> bool:
    """Whether :func:`prepare_for_inference` has prepared ``model``."""
    return bool(getattr(model, PREPARED_FLAG, False))
