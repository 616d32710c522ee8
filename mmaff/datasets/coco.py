"""COCO detection dataset with input checks (needs mmdet)."""
from collections import Counter

from mmdet.datasets import CocoDataset
from mmengine.logging import print_log

from mmaff.registry import DATASETS


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """mmdet's ``CocoDataset`` that fails loudly on inconsistent input.

    Drop-in for ``type='CocoDataset'`` (use ``type=
    'mmaff.CheckedCocoDataset'``). On top of mmdet's behaviour it

    - raises if a class of ``metainfo`` is not a category of the
      annotation file (mmdet would shift all later labels silently);
    - raises if an annotation refers to a category id the file does not
      define;
    - counts (``skipped_category_counts``) and logs the annotations of
      categories outside ``metainfo``, which are skipped (training on a
      subset of classes is legitimate);
    - raises a message naming the file and the filters when no image is
      left, instead of failing later in a sampler or ``np.concatenate``.

    Missing annotation files and images already raise
    ``FileNotFoundError`` naming the path in mmdet.
    """

    def load_data_list(self) -> list[dict]:
        self.skipped_category_counts = Counter()
        self._checked_categories = False
        data_list = super().load_data_list()
        if self.skipped_category_counts:
            print_log(
                f'{self.ann_file}: skipped annotations of categories not '
                f'in metainfo classes (category id: count) '
                f'{dict(sorted(self.skipped_category_counts.items()))}',
                logger='current')
        return data_list

    def _check_categories(self) -> None:
        cats = self.coco.cats
        names = {c['name'] for c in cats.values()}
        missing = [c for c in self.metainfo['classes'] if c not in names]
        if missing:
            raise ValueError(
                f'{self.ann_file}: classes {missing} of metainfo are not '
                f'categories of the annotation file (it has '
                f'{sorted(names)})')
        self._file_cat_ids = set(cats)
        self._checked_categories = True

    def parse_data_info(self, raw_data_info: dict) -> dict:
        if not self._checked_categories:
            self._check_categories()
        for ann in raw_data_info['raw_ann_info']:
            cat_id = ann.get('category_id')
            if cat_id not in self._file_cat_ids:
                img = raw_data_info['raw_img_info'].get('file_name')
                raise ValueError(
                    f'{self.ann_file}: annotation {ann.get("id")} of '
                    f'image {img} has category_id {cat_id!r}, which the '
                    f'file does not define (ids '
                    f'{sorted(self._file_cat_ids)})')
            if cat_id not in self.cat2label:
                self.skipped_category_counts[cat_id] += 1
        return super().parse_data_info(raw_data_info)

    def filter_data(self) -> list[dict]:
        data_list = super().filter_data()
        if not data_list:
            raise ValueError(
                f'{self.ann_file}: no images left ({len(self.data_list)} '
                f'in the file, filter_cfg={self.filter_cfg}, test_mode='
                f'{self.test_mode}); with filter_empty_gt=True every '
                'image needs an annotation of a metainfo class')
        return data_list
