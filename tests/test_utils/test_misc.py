"""mmaff.utils.misc: process-wide settings, so each test runs in a process
of its own instead of the shared pytest worker."""
import textwrap

from helpers import run_python, success_log


def test_tune_malloc_is_accepted_and_serves_large_blocks():
    log = success_log(run_python('-c', textwrap.dedent("""\
        import torch
        from mmaff.utils import tune_malloc
        assert tune_malloc() is True  # glibc accepts the settings
        big = torch.ones(64 << 20, dtype=torch.uint8)  # from the heap now
        assert int(big.sum()) == 64 << 20
        print('tuned')
        """)))
    assert log.strip().endswith('tuned')
