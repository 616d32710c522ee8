"""When layers must take their plain path: under graph capture."""
import torch


def is_traced() -> bool:
    """Whether the call is being exported to ONNX, traced or scripted by
    TorchScript, or compiled: the layers' eager-only shortcuts (cached
    weights, complex views) must stay out of such graphs."""
    return (torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()
            or torch.jit.is_scripting() or torch.compiler.is_compiling())
