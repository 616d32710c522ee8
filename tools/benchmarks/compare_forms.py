"""AFFNet classifiers in every form, on the same weights, in one
interleaved run: as an earlier revision of mmaff ran them by default
(``--baseline-rev``), the plain model, the prepared model
(``mmaff.prepare_for_inference``, also without its oneDNN prepacking)
and the official code (the literal
transcription in ``tests/official_reference.py``).

    python tools/benchmarks/compare_forms.py [--baseline-rev REV]
        [--archs et t base] [--batches 1 8] [--size 256] [--threads 2]
        [--rounds 30]

The baseline revision's ``mmaff`` package is extracted with ``git archive``
and imported under another name (``mmaff_rev``), so both revisions run in
one process on one set of weights. Prints a markdown table of medians (ms
per batch) and each form's speed relative to the baseline.
"""
import argparse
import copy
import os.path as osp
import re
import subprocess
import sys
import tempfile
from statistics import median

import torch
from benchmark_utils import ROOT, time_interleaved

sys.path.insert(0, ROOT)
sys.path.insert(0, osp.join(ROOT, 'tests'))

CONFIGS = {
    'et': 'configs/classification/affnet-et_8xb128_in1k.py',
    't': 'configs/classification/affnet-t_8xb128_in1k.py',
    'base': 'configs/classification/affnet_8xb128_in1k.py',
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--baseline-rev', default=None,
                        help='git revision whose default model is the '
                        'baseline (default: no baseline column)')
    parser.add_argument('--archs', nargs='+', default=list(CONFIGS),
                        choices=list(CONFIGS))
    parser.add_argument('--batches', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=30)
    return parser.parse_args(argv)


def import_revision(rev: str, folder: str):
    """``mmaff`` as it was at ``rev``, importable as ``mmaff_rev``."""
    archive = subprocess.run(['git', '-C', ROOT, 'archive', rev, 'mmaff'],
                             check=True, capture_output=True).stdout
    subprocess.run(['tar', '-x', '-C', folder], input=archive, check=True)
    package = osp.join(folder, 'mmaff_rev')
    subprocess.run(['mv', osp.join(folder, 'mmaff'), package], check=True)
    for path in subprocess.run(['find', package, '-name', '*.py'],
                               check=True, capture_output=True,
                               text=True).stdout.split():
        with open(path) as f:
            text = f.read()
        text = re.sub(r'\bmmaff\b(?=[.\s])', 'mmaff_rev', text)
        text = text.replace("scope='mmaff'", "scope='mmaff_rev'")
        with open(path, 'w') as f:
            f.write(text)
    sys.path.insert(0, folder)
    import mmaff_rev.models
    return mmaff_rev.models


def build_forms(arch: str, baseline) -> dict[str, torch.nn.Module]:
    from mmengine.config import Config
    from official_reference import OfficialAffNet

    import mmaff
    from mmaff.checkpoint import convert_official_state_dict
    from mmaff.utils.config import build_model_from_config

    official = OfficialAffNet(arch).eval()
    plain = build_model_from_config(
        Config.fromfile(osp.join(ROOT, CONFIGS[arch]))).eval()
    plain.load_state_dict(convert_official_state_dict(official.state_dict()))
    forms = {'plain': plain,
             'prepared': mmaff.prepare_for_inference(plain),
             # the transform without its oneDNN step: F.conv2d after folding
             'prepared, no prepack': mmaff.prepare_for_inference(
                 plain, prepack=False),
             'official': official}
    if baseline is not None:
        old = copy.deepcopy(plain)
        old.backbone = baseline.AFFNet(arch=arch, out_indices=-1)
        old.backbone.load_state_dict(plain.backbone.state_dict())
        forms['baseline'] = old.eval()
    return forms


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        baseline = None
        if args.baseline_rev:
            baseline = import_revision(args.baseline_rev, folder)
        rows = []
        for arch in args.archs:
            forms = build_forms(arch, baseline)
            for batch in args.batches:
                x = torch.rand(batch, 3, args.size, args.size)

                def call(model, x=x):
                    if hasattr(model, 'data_preprocessor'):  # an mm model
                        return lambda: model(x, mode='tensor')
                    return lambda: model(x)

                with torch.no_grad():
                    ref = call(forms['plain'])()
                    for name, model in forms.items():
                        if name != 'official':
                            out = call(model)()
                            torch.testing.assert_close(
                                out, ref, rtol=1e-4, atol=1e-4)
                    samples = time_interleaved(
                        {n: call(m) for n, m in forms.items()}, args.rounds)
                rows.append((arch, batch,
                             {n: 1e3 * median(s)
                              for n, s in samples.items()}))
    names = [n for n in ('baseline', 'prepared', 'prepared, no prepack',
                         'plain', 'official') if n in rows[0][2]]
    print(f'{args.threads} threads, {args.size}x{args.size}, '
          f'{args.rounds} rounds, median ms per batch')
    speeds = names[1:] if 'baseline' in names else []
    print('| arch | batch | ' + ' | '.join(names + [
        f'{n} speed vs baseline' for n in speeds]) + ' |')
    print('|---' * (2 + len(names) + len(speeds)) + '|')
    for arch, batch, ms in rows:
        cells = [f'{ms[n]:.2f}' for n in names]
        cells += [f'{ms["baseline"] / ms[n]:.2f}x' for n in speeds]
        print(f'| {arch} | {batch} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
