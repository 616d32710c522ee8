"""Export an mmaff model to ONNX and check it with onnxruntime.

    python tools/deployment/export_onnx.py CONFIG [--checkpoint CKPT]
        [--shape 256 [256]] [--dft fft|matmul] [--out model.onnx]

Exports the tensor forward of the config's model (classifier logits,
detector head maps, segmentor logits; ``--backbone-only`` for the backbone
features) for a fixed input size, runs the ONNX model with onnxruntime on
the same random input and prints the largest absolute difference to
PyTorch.

``--dft fft`` keeps torch.fft, exported as ONNX ``DFT`` (opset >= 17; needs
the dynamo exporter, since the TorchScript exporter has no rule for
``fft_rfft2``). ``--dft matmul`` switches every AFF filter to real DFT
matrices (``mmaff.models.set_dft_mode``): no complex tensors and no ``DFT``
op, for runtimes that lack it (mobile), with either exporter.
"""
import argparse
import os.path as osp
import sys

import numpy as np
import torch
from mmengine.config import DictAction

import mmaff  # noqa: F401  (registers AFFNet)
from mmaff.models import DFT_MODES, set_dft_mode
from mmaff.utils.runner_setup import (
    TensorForward,
    build_model_from_config,
    read_config,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument('--checkpoint', help='weights to load (optional)')
    parser.add_argument('--shape', type=int, nargs='+', default=[256],
                        help='input H [W]')
    parser.add_argument('--batch-size', type=int, default=1)
    parser.add_argument('--dft', choices=DFT_MODES, default='fft')
    parser.add_argument('--out', default=None, help='ONNX file to write')
    parser.add_argument('--opset', type=int, default=18)
    parser.add_argument(
        '--exporter',
        choices=['dynamo', 'torchscript'],
        default=None,
        help='default: dynamo (required for --dft fft)')
    parser.add_argument('--backbone-only', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--atol', type=float, default=1e-4,
                        help='fail if the onnxruntime output differs more')
    return parser.parse_args(argv)


def flatten(outputs) -> list[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    flat = []
    for item in outputs:
        flat += flatten(item)
    return flat


def export(wrapper: torch.nn.Module, inputs: torch.Tensor, path: str,
           opset: int, dynamo: bool) -> None:
    torch.onnx.export(
        wrapper, (inputs, ),
        path,
        input_names=['input'],
        opset_version=opset,
        dynamo=dynamo,
        external_data=False)


def main(argv=None) -> int:
    args = parse_args(argv)
    if len(args.shape) not in (1, 2):
        raise SystemExit('error: --shape takes H or H W')
    h, w = (args.shape * 2)[:2]
    exporter = args.exporter or 'dynamo'
    if args.dft == 'fft' and exporter == 'torchscript':
        raise SystemExit('error: the TorchScript exporter cannot export FFTs '
                         '(no rule for aten::fft_rfft2); use --exporter '
                         'dynamo or --dft matmul')
    try:
        cfg = read_config(args.config, args.cfg_options)
    except FileNotFoundError as e:
        raise SystemExit(f'error: {e}') from e
    model = build_model_from_config(cfg, args.checkpoint)
    switched = set_dft_mode(model, args.dft)
    wrapper = TensorForward(model, args.backbone_only).eval()
    inputs = torch.rand(args.batch_size, 3, h, w)
    with torch.no_grad():
        expected = [t.numpy() for t in flatten(wrapper(inputs))]
    out = args.out or osp.splitext(osp.basename(args.config))[0] + \
        f'_{args.dft}.onnx'
    export(wrapper, inputs, out, args.opset, exporter == 'dynamo')

    import onnxruntime as ort
    session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    feed = {session.get_inputs()[0].name: inputs.numpy()}
    actual = session.run(None, feed)
    if len(actual) != len(expected):
        print(f'error: onnxruntime returned {len(actual)} outputs, PyTorch '
              f'{len(expected)}', file=sys.stderr)
        return 1
    diff = max(float(np.abs(a - e).max()) for a, e in zip(actual, expected))
    import onnx
    ops = sorted({n.op_type for n in onnx.load(out).graph.node})
    print(f'exported {out} ({exporter} exporter, opset {args.opset}, dft='
          f'{args.dft}, {switched} AFF filters, input '
          f'{tuple(inputs.shape)})')
    print(f'ONNX ops: {", ".join(ops)}')
    print(f'max abs diff onnxruntime vs PyTorch: {diff:.3e} over '
          f'{len(actual)} output(s)')
    if diff > args.atol:
        print(f'error: difference above --atol {args.atol}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
