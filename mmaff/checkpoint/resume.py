"""Finding the checkpoint a resumed run continues from."""
import logging
import os
import os.path as osp
import re

from mmengine.logging import print_log

from .errors import CheckpointError
from .reading import file_problem

# Runner checkpoints of mmengine's CheckpointHook (filename_tmpl defaults).
_RUNNER_CHECKPOINT = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


def find_resumable_checkpoint(work_dir: str) -> str | None:
    """The checkpoint an auto-resumed run (``resume=True`` without a
    ``load_from``) should continue from.

    mmengine resumes from the file named in ``<work_dir>/last_checkpoint``,
    which its CheckpointHook writes after each save. When that file is
    missing, truncated or empty (a crash between or during the two writes,
    a node losing unflushed data, ``max_keep_ckpts`` having removed it),
    this falls back to the newest complete ``epoch_N.pth`` / ``iter_N.pth``
    next to it (one whose zip archive is whole), with a warning.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        str | None: The checkpoint; None if there is no ``last_checkpoint``
        (a new run).

    Raises:
        CheckpointError: If ``last_checkpoint`` names an unusable file and
            no other complete checkpoint is there.
    """
    save_file = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(save_file):
        return None
    with open(save_file) as f:
        named = f.read().strip()
    if '://' in named:
        return named  # remote storage: mmengine's loader checks it
    if named:
        found = file_problem(named)
        if found is None:
            return named
        problem = found[0]
        folder = osp.dirname(named) or work_dir
    else:
        problem = 'is empty (its write was interrupted)'
        folder = work_dir
    kind = _RUNNER_CHECKPOINT.match(osp.basename(named))
    candidates = []
    for name in os.listdir(folder) if osp.isdir(folder) else []:
        match = _RUNNER_CHECKPOINT.match(name)
        if match is None or osp.join(folder, name) == named:
            continue
        same_kind = kind is None or match[1] == kind[1]
        candidates.append((same_kind, int(match[2]), name))
    # Newest first. One newer than the named file can exist when the run
    # was killed between saving it and updating last_checkpoint; a complete
    # zip means torch.save finished writing it.
    for _, _, name in sorted(candidates, reverse=True):
        candidate = osp.join(folder, name)
        if file_problem(candidate) is None:
            what = f'names {named}, which {problem}' if named else problem
            print_log(
                f'{save_file} {what}; resuming from {candidate}, the newest '
                'complete checkpoint there',
                logger='current',
                level=logging.WARNING)
            return candidate
    if named:
        raise CheckpointError(
            named, f'{problem} (named by {save_file}), and {folder} holds no '
            'other complete checkpoint to resume from')
    raise CheckpointError(
        save_file, f'{problem}, and {folder} holds no complete checkpoint '
        'to resume from')
