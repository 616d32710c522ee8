"""Check that mmcv's compiled ops run on a device and agree with CPU results.

    python tools/misc/check_mmcv_ops.py [--device cuda]

Runs the ops every detector needs: ``nms`` (each detector's test),
``roi_align`` (two-stage heads) and ``sigmoid_focal_loss`` (RetinaNet's
training), on the device and as reference on the CPU (mmcv's CPU kernels;
the focal loss, which has none, against its formula). Prints one line per op
and exits with 1 if any is missing or differs: an mmcv wheel built without
the device's ops fails here, at set-up, instead of at the first test batch
("nms_impl: implementation for device cuda:0 not found").
"""
import argparse
import sys

import torch


def focal_loss_reference(logits: torch.Tensor, labels: torch.Tensor,
                         gamma: float, alpha: float) -> torch.Tensor:
    """Element-wise sigmoid focal loss; label ``C`` (= classes) is
    background, as in mmcv."""
    targets = torch.nn.functional.one_hot(
        labels, logits.shape[1] + 1)[:, :-1].to(logits.dtype)
    p = logits.sigmoid()
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, targets, reduction='none')
    return alpha_t * (1 - p_t).pow(gamma) * ce


def cases(device: str):
    """(name, result on device, reference on CPU) per op."""
    from mmcv.ops import nms, roi_align, sigmoid_focal_loss
    gen = torch.Generator().manual_seed(0)

    xy = torch.rand(200, 2, generator=gen) * 200
    wh = torch.rand(200, 2, generator=gen) * 60 + 4
    boxes = torch.cat([xy, xy + wh], dim=1)
    scores = torch.rand(200, generator=gen)

    def run_nms(dev):
        dets, keep = nms(boxes.to(dev), scores.to(dev), 0.5)
        return dets.cpu(), keep.cpu()

    feats = torch.randn(2, 8, 32, 40, generator=gen)
    rois = torch.tensor([[0, 1.5, 2.0, 20.0, 25.5], [1, 4.0, 0.0, 39.0, 31.0],
                         [0, 10.2, 5.1, 12.9, 30.3]])

    def run_roi_align(dev):
        return roi_align(feats.to(dev), rois.to(dev), (7, 7), 0.5, 2,
                         'avg', True).cpu()

    logits = torch.randn(64, 5, generator=gen)
    labels = torch.randint(0, 6, (64, ), generator=gen)

    def run_focal(dev):
        return sigmoid_focal_loss(logits.to(dev), labels.to(dev), 2.0, 0.25,
                                  None, 'none').cpu()

    yield 'nms', lambda: run_nms(device), lambda: run_nms('cpu')
    yield 'roi_align', lambda: run_roi_align(device), \
        lambda: run_roi_align('cpu')
    yield 'sigmoid_focal_loss', lambda: run_focal(device), \
        lambda: focal_loss_reference(logits, labels, 2.0, 0.25)


def same(a, b, tol: float = 1e-4) -> bool:
    if isinstance(a, tuple):
        return all(same(x, y, tol) for x, y in zip(a, b))
    return a.shape == b.shape and torch.allclose(a.float(), b.float(),
                                                 atol=tol, rtol=tol)


def check(device: str) -> list[tuple[str, str]]:
    """``(op, 'ok' or what went wrong)`` for each op on ``device``."""
    results = []
    for name, on_device, reference in cases(device):
        try:
            got = on_device()
        except (RuntimeError, NotImplementedError) as error:
            message = str(error).splitlines()[0]
            if 'not found' in message or 'not compiled' in message:
                message = (f'missing: {message} (mmcv was built without '
                           f'{device.split(":")[0]} ops for it)')
            results.append((name, message))
            continue
        ok = same(got, reference())
        results.append((name, 'ok' if ok else 'differs from the CPU result'))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cuda',
                        help='device to check (default: cuda)')
    args = parser.parse_args(argv)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        print(f'error: --device {args.device}: torch sees no CUDA device',
              file=sys.stderr)
        return 1
    try:
        import mmcv.ops  # noqa: F401
    except ImportError as error:
        print(f'error: mmcv.ops does not import ({error}): mmcv is missing '
              'or was built without compiled ops', file=sys.stderr)
        return 1
    results = check(args.device)
    for name, result in results:
        print(f'{name:<20} {args.device:<8} {result}')
    failed = [name for name, result in results if result != 'ok']
    if failed:
        print(f'error: mmcv ops failing on {args.device}: '
              f'{", ".join(failed)}', file=sys.stderr)
        return 1
    print(f'mmcv ops ok on {args.device}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
