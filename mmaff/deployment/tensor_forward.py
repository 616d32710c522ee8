"""A model's tensor forward as a module of one tensor input."""
import torch


class TensorForward(torch.nn.Module):
    """``model(x, mode='tensor')`` (or only its backbone) as a module with a
    single tensor input, for tracing: FLOP counting and ONNX export.

    Args:
        model (torch.nn.Module): An mm classifier, detector or segmentor.
        backbone_only (bool): Run ``model.backbone`` alone. Defaults to
            False.
    """

    def __init__(self, model: torch.nn.Module,
                 backbone_only: bool = False) -> None:
        super().__init__()
        self.model = model
        self.backbone_only = backbone_only

    def forward(self, inputs: torch.Tensor):
        if self.backbone_only:
            return self.model.backbone(inputs)
        return self.model(inputs, mode='tensor')
