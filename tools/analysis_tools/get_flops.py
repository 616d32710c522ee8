"""Parameters and FLOPs (multiply-accumulates) of any mmaff config.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H [W]]
        [--cfg-options ...] [--depth 3]

Works for detection, segmentation and classification configs (the model's
tensor forward on a dummy input) and counts the AFF filter's FFTs, which
mmengine's analyzer alone reports as 0 (mmaff/utils/flops.py has the
formula). Prints a per-module table, per-stage totals and the total.
"""
import argparse

import torch
from mmengine.analysis.print_helper import complexity_stats_table
from mmengine.config import DictAction

import mmaff  # noqa: F401  (registers AFFNet)
from mmaff.deployment.tensor_forward import TensorForward
from mmaff.utils.config import build_model_from_config, read_config
from mmaff.utils.flops import FFT_COST_PER_POINT_LOG2, flop_analyzer


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        'config', help='config file path, or the name of a shipped config')
    parser.add_argument('--shape', type=int, nargs='+', default=[256],
                        help='input H [W] (default 256x256)')
    parser.add_argument('--depth', type=int, default=3,
                        help='module depth of the printed table')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if len(args.shape) not in (1, 2):
        raise SystemExit('error: --shape takes H or H W')
    h, w = (args.shape * 2)[:2]
    try:
        cfg = read_config(args.config, args.cfg_options)
    except FileNotFoundError as e:
        raise SystemExit(f'error: {e}') from e
    model = build_model_from_config(cfg)
    inputs = torch.rand(1, 3, h, w)
    wrapper = TensorForward(model)
    analyzer = flop_analyzer(wrapper, (inputs, ))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    with torch.no_grad():
        total = analyzer.total()
    params = sum(p.numel() for p in model.parameters())
    print(
        complexity_stats_table(
            analyzer, max_depth=args.depth + 1, show_param_shapes=False))
    by_module = analyzer.by_module()
    print('\nper stage (MACs):')
    for name in ['model.backbone.stem'] + [
            f'model.backbone.layers.{i}' for i in range(len(
                getattr(model.backbone, 'layers', [])))
    ] + ['model.backbone.conv_1x1_exp', 'model.neck', 'model.decode_head',
         'model.bbox_head', 'model.head']:
        if by_module.get(name):
            print(f'  {name[len("model."):]:<28} {by_module[name] / 1e6:10.2f}'
                  ' M')
    fft = sum(count for op, count in analyzer.by_operator().items()
              if 'fft' in op)
    print(f'\ninput shape: (1, 3, {h}, {w})')
    print(f'params: {params / 1e6:.3f} M ({params:,})')
    print(f'FLOPs (multiply-accumulates): {total / 1e9:.3f} G, of which FFTs '
          f'{fft / 1e6:.2f} M')
    print(f'FFT cost: each 2-D real FFT / inverse FFT over N = H*W points '
          f'counted as {FFT_COST_PER_POINT_LOG2} * N * log2(N) per map')


if __name__ == '__main__':
    main()
