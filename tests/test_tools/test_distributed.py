"""Beyond one machine: tools/slurm_train.sh and tools/slurm_test.sh under a
stand-in for slurm, and tools/dist_train.sh / dist_test.sh as two nodes on
the loopback address. Every run trains or tests the classification toy in
two CPU processes that talk over gloo (mmaff.compat, F3-F6)."""
import glob
import json
import os
import os.path as osp
import re
import signal
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
from helpers import (
    ROOT,
    free_port,
    import_file,
    run,
    schedule,
    success_log,
    toy_options,
)
from mmengine.config import Config

from mmaff import compat

TOY_CONFIG = 'configs/classification/affnet-et_8xb128_in1k_toy.py'
# 32 training images in batches of 8 per process: two processes share an
# epoch in 2 iterations, one process would need 4.
ITERS_PER_EPOCH = 2
TEST_METRIC = re.compile(r'Epoch\(test\) \[\d+/\d+\]\s+accuracy/top1: '
                         r'(\d+\.\d+)')
TIMEOUT = 300

# Stand-ins for slurm's commands, written into the test's bin/ folder.
# srun starts its command once per task on this machine, with the variables
# a task gets from slurm (those mmengine's `_init_dist_slurm` reads and a
# few more), and ends all tasks when one fails (--kill-on-bad-exit=1).
FAKE_SRUN = '''\
import json
import os
import subprocess
import sys
import time

args = sys.argv[1:]
with open(CALLS, 'a') as f:
    f.write(json.dumps(['srun', *args]) + '\\n')
opts, i = {}, 0
while args[i].startswith('-'):
    if args[i] == '-p':  # the one option the scripts give a separate value
        opts['partition'], i = args[i + 1], i + 2
        continue
    key, _, value = args[i].lstrip('-').partition('=')
    opts[key], i = value, i + 1
command = args[i:]
ntasks = int(opts['ntasks'])
per_node = int(opts.get('ntasks-per-node', ntasks))
tasks = [
    subprocess.Popen(command, env=dict(
        os.environ, SLURM_PROCID=str(rank), SLURM_NTASKS=str(ntasks),
        SLURM_LOCALID=str(rank % per_node),
        SLURM_NODEID=str(rank // per_node),
        SLURM_NNODES=str(-(-ntasks // per_node)),
        SLURM_NODELIST='localhost', SLURM_JOB_ID='1',
        SLURM_JOB_NAME=opts['job-name'],
        SLURM_JOB_PARTITION=opts['partition']))
    for rank in range(ntasks)
]
while any(t.poll() is None for t in tasks):
    if any(t.poll() for t in tasks) and opts.get('kill-on-bad-exit') == '1':
        for t in tasks:
            if t.poll() is None:
                t.kill()
    time.sleep(0.2)
sys.exit(next((t.returncode for t in tasks if t.returncode), 0))
'''
# scontrol answers `show hostname NODELIST` (one host a line); the fake node
# list is a plain comma-separated one, without slurm's ranges.
FAKE_SCONTROL = '''\
import json
import sys

args = sys.argv[1:]
with open(CALLS, 'a') as f:
    f.write(json.dumps(['scontrol', *args]) + '\\n')
if args[:2] not in (['show', 'hostname'], ['show', 'hostnames']):
    sys.exit(f'fake scontrol: {args} not emulated')
print('\\n'.join(args[2].split(',')))
'''


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """srun and scontrol stand-ins first on PATH; returns a function giving
    the calls made to them so far (each its argv, command name first)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    calls = tmp_path / 'slurm_calls.jsonl'
    for name, code in (('srun', FAKE_SRUN), ('scontrol', FAKE_SCONTROL)):
        script = bin_dir / name
        script.write_text(f'#!{sys.executable}\nCALLS = {str(calls)!r}\n'
                          f'{code}')
        script.chmod(0o755)
    monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
    clean_launch_environment(monkeypatch)

    def read_calls():
        if not calls.exists():
            return []
        return [json.loads(line) for line in calls.read_text().splitlines()]

    return read_calls


def clean_launch_environment(monkeypatch):
    """Leave no launcher variables of an outer job (a CI under slurm or
    torchrun) to the runs: each must get them from its own launcher."""
    for key in [k for k in os.environ if k.startswith('SLURM_')]:
        monkeypatch.delenv(key)
    for key in ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR',
                'MASTER_PORT', 'NNODES', 'NODE_RANK', 'PORT', 'GPUS',
                'GPUS_PER_NODE', 'CPUS_PER_TASK', 'SRUN_ARGS'):
        # set first so that monkeypatch also removes what an in-process
        # launch (mmaff.compat) sets
        monkeypatch.setenv(key, '')
        monkeypatch.delenv(key)
    # two processes on 2 cores: more threads only fight over them
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    # The runs test the CPU path (gloo) on any machine: under NCCL two
    # ranks on one GPU would fail.
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')


def checkpoint_meta(path) -> dict:
    import mmaff  # noqa: F401  (F2: weights_only loads of runner checkpoints)
    return torch.load(path, map_location='cpu', weights_only=True)['meta']


def assert_two_process_training(log: str, work) -> None:
    """The log of a 1-epoch toy run in two processes, and its work dir:
    one checkpoint, written once, after the epoch's 2 iterations."""
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    assert f'Epoch(train) [1][{ITERS_PER_EPOCH}/{ITERS_PER_EPOCH}]' in log
    assert re.search(r'Epoch\(val\) \[1\]\[\d+/\d+\]\s+accuracy/top1: ',
                     log), log[-3000:]
    assert [osp.basename(p) for p in glob.glob(str(work / '*.pth'))] == [
        'epoch_1.pth'
    ]
    assert (work / 'last_checkpoint').read_text() == str(work / 'epoch_1.pth')
    # one run folder with one log: rank 1 takes rank 0's timestamp and
    # leaves the files to it
    assert len(glob.glob(str(work / '*' / '*.log'))) == 1
    meta = checkpoint_meta(work / 'epoch_1.pth')
    assert (meta['epoch'], meta['iter']) == (1, ITERS_PER_EPOCH)


def train_options(data_root: str) -> list[str]:
    return toy_options(TOY_CONFIG, data_root, **schedule(1, max_epochs=1))


# ---------------------------------------------------------------------------
# slurm


def test_prepare_cpu_distributed_takes_slurm_environment(
        fake_slurm, monkeypatch):
    """F3 for slurm in-process: torch's variables from a task's slurm ones
    (the master is the node list's first host, which the tools look up,
    the port the config's ``env_cfg.dist_cfg.port`` as mmengine allows),
    then a gloo group."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    port = free_port()
    for key, value in dict(SLURM_PROCID='0', SLURM_NTASKS='1',
                           SLURM_LOCALID='0',
                           SLURM_NODELIST='localhost,node2',
                           MASTER_PORT='1').items():
        monkeypatch.setenv(key, value)
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl', port=port)),
                      model=dict(type='Toy')))
    assert not dist.is_initialized()
    cli_common = import_file(osp.join(ROOT, 'tools', 'cli_common.py'))
    try:
        cli_common.set_slurm_master_addr()
        assert compat.prepare_cpu_distributed(cfg, 'slurm') is True
        assert dist.get_backend() == 'gloo'
        assert (dist.get_rank(), dist.get_world_size()) == (0, 1)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    assert {k: os.environ[k] for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK',
                                       'MASTER_ADDR', 'MASTER_PORT')} == dict(
        RANK='0', WORLD_SIZE='1', LOCAL_RANK='0', MASTER_ADDR='localhost',
        MASTER_PORT=str(port))
    assert fake_slurm() == [['scontrol', 'show', 'hostname',
                             'localhost,node2']]
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'


@pytest.mark.parametrize('script', ['slurm_train.sh', 'slurm_test.sh'])
def test_slurm_scripts_need_four_arguments(fake_slurm, script):
    result = run(f'tools/{script}', 'partition', 'job', TOY_CONFIG)
    assert result.returncode == 2
    assert result.stderr.startswith(f'usage: tools/{script} PARTITION '
                                    'JOB_NAME CONFIG ')
    assert fake_slurm() == []  # nothing was submitted


@pytest.mark.slow
def test_slurm_train_then_test_two_tasks(tmp_path, toy_imagenet, fake_slurm):
    work = tmp_path / 'work'
    env = dict(GPUS='2', GPUS_PER_NODE='2', CPUS_PER_TASK='1',
               SRUN_ARGS='--quotatype=auto  --time=10',
               PYTHON=sys.executable, MASTER_PORT=str(free_port()))
    options = train_options(toy_imagenet)
    log = success_log(
        run('tools/slurm_train.sh', 'toy-part', 'toy-job', TOY_CONFIG, work,
            *options, env=env, timeout=TIMEOUT))
    srun_head = [
        'srun', '-p', 'toy-part', '--job-name=toy-job', '--gres=gpu:2',
        '--ntasks=2', '--ntasks-per-node=2', '--cpus-per-task=1',
        '--kill-on-bad-exit=1', '--quotatype=auto', '--time=10',
        sys.executable, '-u'
    ]
    # each task asked scontrol for the master's host (F3 for slurm)
    scontrol = ['scontrol', 'show', 'hostname', 'localhost']
    assert fake_slurm() == [
        srun_head + ['tools/train.py', TOY_CONFIG, f'--work-dir={work}',
                     '--launcher', 'slurm', *options], scontrol, scontrol
    ]
    assert 'Distributed launcher: slurm' in log
    assert_two_process_training(log, work)

    checkpoint = work / 'epoch_1.pth'
    test_options = toy_options(TOY_CONFIG, toy_imagenet)
    log = success_log(
        run('tools/slurm_test.sh', 'toy-part', 'toy-test', TOY_CONFIG,
            checkpoint, '--work-dir', tmp_path / 'test', *test_options,
            env=dict(env, MASTER_PORT=str(free_port())), timeout=TIMEOUT))
    srun_head[3] = '--job-name=toy-test'
    assert fake_slurm()[3:] == [
        srun_head + ['tools/test.py', TOY_CONFIG, str(checkpoint),
                     '--launcher', 'slurm', '--work-dir',
                     str(tmp_path / 'test'), *test_options], scontrol, scontrol
    ]
    assert f'Load checkpoint from {checkpoint}' in log
    assert 'GPU number: 2' in log
    assert TEST_METRIC.search(log), log[-3000:]


def test_slurm_launcher_on_cpu_needs_srun(tmp_path, toy_imagenet,
                                          monkeypatch):
    """train.py --launcher slurm outside srun: a clear error, no hang."""
    clean_launch_environment(monkeypatch)
    result = run(sys.executable, 'tools/train.py', TOY_CONFIG, '--launcher',
                 'slurm', '--work-dir', tmp_path,
                 *train_options(toy_imagenet), timeout=TIMEOUT)
    assert result.returncode == 1
    assert ("error: launcher=slurm needs ['SLURM_PROCID', 'SLURM_NTASKS', "
            "'SLURM_NODELIST'] in the environment" in result.stderr)


# ---------------------------------------------------------------------------
# Two nodes through tools/dist_train.sh and dist_test.sh


def two_nodes(script: str, *args) -> list[str]:
    """``tools/<script> *args`` started as node 0 and node 1 of a 2-node job
    (one process each) on the loopback address; returns each node's
    output."""
    env = {
        **os.environ, 'NNODES': '2', 'MASTER_ADDR': '127.0.0.1',
        'PORT': str(free_port()), 'PYTHON': sys.executable
    }
    nodes = [
        subprocess.Popen(['bash', f'tools/{script}', *map(str, args)],
                         cwd=ROOT, env=dict(env, NODE_RANK=str(rank)),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, start_new_session=True)
        for rank in (0, 1)
    ]
    try:
        outputs = [node.communicate(timeout=TIMEOUT)[0] for node in nodes]
    finally:
        # A node left alone waits for its peer until gloo times out: end
        # the whole process group (bash, torchrun, the worker) of each.
        for node in nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
    for rank, (node, output) in enumerate(zip(nodes, outputs)):
        assert node.returncode == 0, f'node {rank}:\n{output[-3000:]}'
    return outputs


@pytest.mark.slow
def test_two_nodes_train_then_test(tmp_path, toy_imagenet, monkeypatch):
    clean_launch_environment(monkeypatch)
    # one work dir for both: on real nodes it is on a shared filesystem
    work = tmp_path / 'work'
    node0, node1 = two_nodes('dist_train.sh', TOY_CONFIG, 1, '--work-dir',
                             work, *train_options(toy_imagenet))
    assert 'Distributed launcher: pytorch' in node0
    assert_two_process_training(node0, work)
    # rank 1 trains in step but leaves the logging to rank 0
    assert 'Epoch(train)' not in node1

    checkpoint = work / 'epoch_1.pth'
    node0, _ = two_nodes('dist_test.sh', TOY_CONFIG, checkpoint, 1,
                         '--work-dir', tmp_path / 'test',
                         *toy_options(TOY_CONFIG, toy_imagenet))
    assert f'Load checkpoint from {checkpoint}' in node0
    assert 'GPU number: 2' in node0
    assert TEST_METRIC.search(node0), node0[-3000:]
