"""tools/analysis_tools/plot_accuracy_latency.py: the plotted accuracies
are the model zoos' (ours and the peers' installed metafiles), and each
timing result becomes one point per model and runtime."""
import json
import os.path as osp
import re

import pytest
import yaml
from helpers import ROOT, import_file

plot = import_file(f'{ROOT}/tools/analysis_tools/plot_accuracy_latency.py')
ARCH = {'AFFNet-ET': 'affnet-et', 'AFFNet-T': 'affnet-t', 'AFFNet': 'affnet'}
DATASET_KEY = {'imagenet': '_in1k', 'coco': '_coco', 'ade20k': '_ade20k',
               'voc': '_voc12aug'}


def metafile_figures(path: str) -> dict[str, float]:
    """``{model name: its one metric}`` of a metafile."""
    with open(path) as f:
        models = yaml.safe_load(f)['Models']
    figures = {}
    for model in models:
        results = model.get('Results') or []
        # mmseg's metafiles hold one result as a mapping
        for result in [results] if isinstance(results, dict) else results:
            # the first metric is the headline one (top-1, box AP, mIoU)
            figures[model['Name']] = float(next(iter(
                result['Metrics'].values())))
    return figures


def test_affnet_figures_are_the_model_zoos():
    ours = {}
    for task in ('classification', 'detection', 'segmentation'):
        ours.update(metafile_figures(f'{ROOT}/configs/{task}/metafile.yml'))
    for dataset, figures in plot.PUBLISHED.items():
        for model, (figure, source) in figures.items():
            if not model.startswith('AFFNet'):
                continue
            # the variant's name ends at '_' or its output stride
            names = [n for n in ours if DATASET_KEY[dataset] in n and re.match(
                rf'(\w+_)?{ARCH[model]}(-d8)?_', n)]
            assert len(names) == 1, (dataset, model, names)
            assert ours[names[0]] == figure, (dataset, model)
            assert source in plot.SOURCES


@pytest.mark.parametrize('package,metafile,name,dataset,model', [
    ('mmpretrain', 'mobilevit/metafile.yml', 'mobilevit-xxsmall_3rdparty_in1k',
     'imagenet', 'MobileViT-XXS'),
    ('mmpretrain', 'mobilevit/metafile.yml', 'mobilevit-small_3rdparty_in1k',
     'imagenet', 'MobileViT-S'),
    ('mmpretrain', 'mobilenet_v2/metafile.yml', 'mobilenet-v2_8xb32_in1k',
     'imagenet', 'MobileNetV2'),
    ('mmdet', 'ssd/metafile.yml',
     'ssdlite_mobilenetv2-scratch_8xb24-600e_coco', 'coco', 'MobileNetV2'),
    ('mmseg', 'mobilenet_v2/metafile.yaml',
     'mobilenet-v2-d8_deeplabv3_4xb4-160k_ade20k-512x512', 'ade20k',
     'MobileNetV2'),
])
def test_peer_figures_are_their_zoos(package, metafile, name, dataset, model):
    module = __import__(package)
    path = osp.join(osp.dirname(module.__file__), '.mim', 'configs',
                    metafile)
    assert metafile_figures(path)[name] == plot.PUBLISHED[dataset][model][0]


def test_plots_one_point_per_model_and_runtime(tmp_path, capsys):
    def samples(prefix, names, seconds):
        return {f'{prefix}{n}|{r}': [seconds * (i + 1), seconds * (i + 1)]
                for i, n in enumerate(names)
                for r in ('eager', 'onnxruntime', 'openvino')}
    names = ['AFFNet-ET', 'AFFNet-T', 'MobileViT-XXS', 'MobileNetV2']
    dense = tmp_path / 'dense.json'
    dense.write_text(json.dumps({
        'detection_b1': samples('SSDLite-', names, 0.02),
        'segmentation_b1': samples('DeepLabv3-', names, 0.2)}))
    out = tmp_path / 'images'
    assert plot.main(['--dense', str(dense), '--classifiers',
                      str(tmp_path / 'none.json'), '--out-dir',
                      str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'none.json: not found' in printed
    # AFFNet-ET has no published COCO figure, MobileViT none on ADE20K
    assert re.search(r'accuracy_latency_coco.png: 9 points; no published '
                     r'coco figure for AFFNet-ET', printed)
    assert re.search(r'accuracy_latency_ade20k.png: 9 points; no published '
                     r'ade20k figure for MobileViT-XXS', printed)
    assert re.search(r'AFFNet-T +onnxruntime +40\.0 ms +25\.3 +\[afidaf\]',
                     printed)
    assert re.search(r'AFFNet-T +openvino +400\.0 ms +77\.8 +\[affnet\]',
                     printed)
    for dataset in ('coco', 'ade20k', 'voc'):
        image = out / f'accuracy_latency_{dataset}.png'
        assert image.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert not (out / 'accuracy_latency_imagenet.png').exists()


def test_no_results_is_an_error(tmp_path, capsys):
    assert plot.main(['--dense', str(tmp_path / 'a.json'), '--classifiers',
                      str(tmp_path / 'b.json')]) == 1
    assert 'error: no timing results' in capsys.readouterr().err
