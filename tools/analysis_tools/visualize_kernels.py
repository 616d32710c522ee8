"""Draw the global kernels the AFF filters apply to an image.

    python tools/analysis_tools/visualize_kernels.py CONFIG IMAGE
        [--checkpoint CKPT] [--size 256] [--channels 16] [--out-dir DIR]

Each AFF filter computes ``x + circular_conv(x, k)`` with a per-channel
kernel ``k = irfft2(mask)`` as large as its feature map, predicted from the
input: the paper's "dynamic global kernel". For every filter in the model
this tool saves, for the given image,

- ``<filter>_kernels.png``: the kernels of the first ``--channels`` channels
  and the average kernel of each of the filter's ``num_groups`` channel
  groups (centred: the middle pixel is offset 0);
- ``<filter>_mask.png``: the mask magnitude ``|mask|`` per group (zero
  frequency in the middle of each panel; soft-shrink zeros show as black).
"""
import argparse
import os
import os.path as osp

import cv2
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import mmaff  # noqa: E402,F401
from mmaff.checkpoint import CheckpointError  # noqa: E402
from mmaff.checkpoint.mmengine_loader import install_checkpoint_loader  # noqa: E402,E501
from mmaff.models.layers import AdaptiveFrequencyFilter  # noqa: E402
from mmaff.utils.config import build_model_from_config, read_config  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config of a model with AFFNet')
    parser.add_argument('image', help='image file')
    parser.add_argument('--checkpoint', help='weights (random otherwise)')
    parser.add_argument('--size', type=int, default=256,
                        help='resize the image to SIZE x SIZE')
    parser.add_argument('--channels', type=int, default=16)
    parser.add_argument('--out-dir', default='work_dirs/kernels')
    return parser.parse_args(argv)


def load_image(path: str, size: int, model) -> torch.Tensor:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f'error: cannot read image {path}')
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
    tensor = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    preprocessor = getattr(model, 'data_preprocessor', None)
    if preprocessor is None:  # a bare backbone: official RGB [0, 1]
        return tensor.flip(0).float()[None] / 255
    return preprocessor(dict(inputs=[tensor]), False)['inputs']


def capture_filter_inputs(model, inputs) -> dict[str, torch.Tensor]:
    captured = {}
    handles = [
        module.register_forward_hook(
            lambda m, args, out, name=name: captured.setdefault(
                name, args[0].detach()))
        for name, module in model.named_modules()
        if isinstance(module, AdaptiveFrequencyFilter)
    ]
    backbone = getattr(model, 'backbone', model)
    with torch.no_grad():
        backbone(inputs)
    for handle in handles:
        handle.remove()
    return captured


def grid(panels: list[np.ndarray], titles: list[str], path: str,
         suptitle: str, cmap: str) -> None:
    cols = min(8, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.7 * rows),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for ax, panel, title in zip(axes.flat, panels, titles):
        if cmap == 'RdBu_r':
            limit = float(np.abs(panel).max()) or 1.
            ax.imshow(panel, cmap=cmap, vmin=-limit, vmax=limit)
        else:
            ax.imshow(panel, cmap=cmap)
        ax.set_title(title, fontsize=7)
    fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    args = parse_args(argv)
    # --checkpoint is loaded by mmengine's loader: one-line errors
    install_checkpoint_loader()
    try:
        cfg = read_config(args.config)
        model = build_model_from_config(cfg, args.checkpoint, strict=False)
    except (FileNotFoundError, CheckpointError) as e:
        raise SystemExit(f'error: {e}') from e
    inputs = load_image(args.image, args.size, model)
    captured = capture_filter_inputs(model, inputs)
    if not captured:
        raise SystemExit('error: the model has no AFF filter')
    os.makedirs(args.out_dir, exist_ok=True)
    modules = dict(model.named_modules())
    for name, x in captured.items():
        module = modules[name]
        with torch.no_grad():
            kernel = module.spatial_kernel(x)[0]  # (C, H, W)
            mask = module.mask(x)[0].abs()  # (C, H, W // 2 + 1)
        h, w = kernel.shape[-2:]
        kernel = torch.roll(kernel, (h // 2, w // 2), dims=(-2, -1))
        mask = torch.roll(mask, h // 2, dims=-2)
        g = module.num_groups
        group_kernels = kernel.reshape(g, -1, h, w).mean(1)
        group_masks = mask.reshape(g, -1, *mask.shape[-2:]).mean(1)
        n = min(args.channels, kernel.shape[0])
        stem = osp.join(args.out_dir, name.replace('.', '_'))
        grid([k.numpy() for k in kernel[:n]] +
             [k.numpy() for k in group_kernels],
             [f'ch {i}' for i in range(n)] +
             [f'group {i} mean' for i in range(g)], stem + '_kernels.png',
             f'{name}: spatial kernels ({h}x{w}, centred)', 'RdBu_r')
        grid([m.numpy() for m in group_masks],
             [f'group {i}' for i in range(g)], stem + '_mask.png',
             f'{name}: |mask| per group (rows: freq. H, centred; '
             'cols: freq. W >= 0)', 'magma')
        print(f'{name}: {h}x{w} map, {kernel.shape[0]} channels, mask zeros '
              f'{float((mask == 0).float().mean()):.1%} -> {stem}_*.png')


if __name__ == '__main__':
    main()
