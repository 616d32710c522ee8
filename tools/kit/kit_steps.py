"""Helpers of the offline kit's ``install_and_check.sh`` (standard library
only: they run before anything is installed).

    python kit_steps.py step --results DIR --name NAME --budget S
        [--note-regex RE] -- COMMAND ...
    python kit_steps.py skip --results DIR --name NAME --budget S --reason R
    python kit_steps.py report --results DIR
    python kit_steps.py preflight --kit KIT --device auto|cuda|cpu
    python kit_steps.py requirements --kit KIT

``step`` runs one command, its output both shown and kept in
``DIR/logs/NAME.log``, and records its status, seconds and time budget in
``DIR/steps/NAME.json`` (one file per step, so steps may run side by side).
``report`` writes the steps as one Markdown table (``DIR/summary.md``) and
one JSON file (``DIR/summary.json``) and prints the table.
``preflight`` checks that this Python matches the kit and has torch,
torchvision, numpy and opencv, prints what it found and writes the
facts the script needs (``KEY=value`` lines) to stdout's last lines.
``requirements`` prints what the install asks pip for: the kit's roots at
their versions, and constraints that keep the installed torch, torchvision,
numpy and opencv as they are.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

# The offline machine's own packages: pinned to what is installed so that the
# kit's install can never replace them.
BASE = ('torch', 'torchvision', 'numpy', 'opencv-python',
        'opencv-python-headless', 'opencv-contrib-python',
        'opencv-contrib-python-headless')


def say(message: str) -> None:
    print(f'[kit] {message}', flush=True)


def fail(message: str) -> int:
    print(f'error: {message}', file=sys.stderr)
    return 1


def safe_name(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', name)


def record(results: Path, name: str, **fields) -> None:
    steps = results / 'steps'
    steps.mkdir(parents=True, exist_ok=True)
    (steps / f'{safe_name(name)}.json').write_text(
        json.dumps(dict(step=name, **fields), indent=1) + '\n')


def run_step(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ['--'] else \
        args.command
    if not command:
        return fail(f'step {args.name}: no command given')
    logs = args.results / 'logs'
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f'{safe_name(args.name)}.log'
    say(f'step {args.name} (budget {args.budget:.0f} s)')
    start, wall = time.time(), time.perf_counter()
    note = ''
    with open(log_path, 'w') as log:
        try:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True,
                                    errors='replace')
        except OSError as error:
            log.write(f'{error}\n')
            code = 127
        else:
            for line in proc.stdout:
                if not args.quiet:
                    sys.stdout.write(f'  {args.name} | {line}')
                    sys.stdout.flush()
                log.write(line)
                if args.note_regex:
                    found = re.findall(args.note_regex, line)
                    if found:
                        note = found[-1] if isinstance(found[-1], str) \
                            else ' '.join(found[-1])
            code = proc.wait()
    seconds = time.perf_counter() - wall
    status = 'ok' if code == 0 else 'FAILED'
    if code != 0:
        tail = [line.strip() for line in log_path.read_text(
            errors='replace').splitlines() if line.strip()]
        errors = [line for line in tail if line.startswith('error')]
        note = (errors or tail or [f'exit code {code}'])[-1][:160]
    record(args.results, args.name, status=status, seconds=round(seconds, 1),
           budget=args.budget, start=start, note=note, exit_code=code,
           log=str(log_path), command=' '.join(command))
    over = ' OVER BUDGET' if seconds > args.budget else ''
    say(f'{args.name}: {status} in {seconds:.0f} s (budget '
        f'{args.budget:.0f} s){over}' + (f': {note}' if note else ''))
    return code


def skip_step(args: argparse.Namespace) -> int:
    record(args.results, args.name, status='skipped', seconds=0.0,
           budget=args.budget, start=time.time(), note=args.reason,
           exit_code=0, log='', command='')
    say(f'{args.name}: skipped ({args.reason})')
    return 0


def machine() -> dict:
    """What ran the steps: Python, torch, cores and the GPU if any."""
    facts = dict(python=sys.version.split()[0], cores=os.cpu_count())
    try:
        import torch
    except ImportError:
        return facts
    facts.update(torch=torch.__version__, cuda=torch.version.cuda)
    if torch.cuda.is_available():
        facts['gpu'] = torch.cuda.get_device_name(0)
    return facts


def report(args: argparse.Namespace) -> int:
    files = sorted((args.results / 'steps').glob('*.json'))
    steps = sorted((json.loads(f.read_text()) for f in files),
                   key=lambda s: s['start'])
    if not steps:
        return fail(f'no steps recorded in {args.results / "steps"}')
    first = min(s['start'] for s in steps)
    last = max(s['start'] + s['seconds'] for s in steps)
    total = dict(seconds=round(last - first, 1),
                 budget=sum(s['budget'] for s in steps if not s.get(
                     'parallel')),
                 failed=[s['step'] for s in steps if s['status'] == 'FAILED'])
    lines = ['| step | status | seconds | budget s | within budget | note |',
             '|---|---|---:|---:|---|---|']
    for s in steps:
        within = '' if s['status'] == 'skipped' else (
            'yes' if s['seconds'] <= s['budget'] else 'NO')
        note = s['note'].replace('|', '/')
        if s.get('parallel'):
            note = f'(beside the mmcv build) {note}'.strip()
        lines.append(f'| {s["step"]} | {s["status"]} | {s["seconds"]:.0f} | '
                     f'{s["budget"]:.0f} | {within} | {note} |')
    lines.append(f'| **total (wall clock)** | '
                 f'{"FAILED" if total["failed"] else "ok"} | '
                 f'{total["seconds"]:.0f} | {total["budget"]:.0f} | '
                 f'{"yes" if total["seconds"] <= total["budget"] else "NO"} '
                 '| |')
    facts = machine()
    head = ', '.join(f'{k} {v}' for k, v in facts.items() if v is not None)
    text = f'mmaff offline kit check: {head}\n\n' + '\n'.join(lines) + '\n'
    (args.results / 'summary.md').write_text(text)
    (args.results / 'summary.json').write_text(json.dumps(
        dict(machine=facts, total=total, steps=steps), indent=1) + '\n')
    print('\n' + text)
    say(f'table: {args.results / "summary.md"}')
    say(f'JSON:  {args.results / "summary.json"}')
    return 1 if total['failed'] else 0


def mark_parallel(args: argparse.Namespace) -> int:
    """Note that a recorded step ran beside another one (its time is not
    added to the budget total a second time)."""
    path = args.results / 'steps' / f'{safe_name(args.name)}.json'
    data = json.loads(path.read_text())
    data['parallel'] = True
    path.write_text(json.dumps(data, indent=1) + '\n')
    return 0


# ------------------------------------------------------------ preflight
def kit_manifest(kit: Path) -> dict:
    return json.loads((kit / 'manifest.json').read_text())


def installed(name: str) -> str | None:
    import importlib.metadata
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def preflight(args: argparse.Namespace) -> int:
    manifest = kit_manifest(args.kit)
    here = f'{sys.version_info[0]}.{sys.version_info[1]}'
    if here != manifest['python']:
        return fail(f'this is Python {here} ({sys.executable}) but the kit '
                    f'holds wheels for Python {manifest["python"]}: build a '
                    f'kit with tools/offline_kit.sh --python {here}')
    missing = []
    for module in ('torch', 'torchvision', 'numpy', 'cv2'):
        try:
            __import__(module)
        except ImportError as error:
            missing.append(f'{module} ({error})')
    if missing:
        return fail('the kit does not carry torch, torchvision, numpy or '
                    f'opencv and this Python lacks: {", ".join(missing)}')
    import torch
    say(f'Python {here} ({sys.executable}), torch {torch.__version__} '
        f'(CUDA {torch.version.cuda or "none"}), '
        f'{os.cpu_count()} cores')
    for name in BASE:
        version = installed(name)
        if version:
            say(f'  {name} {version} (kept as installed)')
    if not installed('opencv-python'):
        say('note: no opencv-python distribution (mmengine asks for it by '
            'that name); install with --target, which skips the '
            'dependency check')
    gpu = torch.cuda.is_available()
    if gpu:
        for index in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(index)
            say(f'  GPU {index}: {torch.cuda.get_device_name(index)} '
                f'(sm_{major}{minor})')
    device = args.device
    if device == 'auto':
        device = 'cuda' if gpu else 'cpu'
    elif device == 'cuda' and not gpu:
        return fail('--device cuda: torch sees no CUDA device')
    say(f'checks run on {device}')
    print(f'DEVICE={device}')
    print(f'TORCH_VERSION={torch.__version__.split("+")[0]}')
    return 0


def requirements(args: argparse.Namespace) -> int:
    """Requirement lines for pip (the kit's roots and mmaff) on stdout;
    with ``--constraints``, the installed versions of BASE to that file."""
    manifest = kit_manifest(args.kit)
    # as the kit asks for them, unpinned mostly: what is installed and fits
    # stays, the rest comes from the kit (its only candidates offline)
    for root in manifest['roots']:
        print(root)
    versions = {e['name']: e['version'] for e in manifest['files']}
    print(f'mmaff=={versions["mmaff"]}')
    if args.constraints:
        pins = [f'{name}=={installed(name)}' for name in BASE
                if installed(name)]
        args.constraints.write_text('\n'.join(pins) + '\n')
    return 0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='action', required=True)
    for name in ('step', 'skip', 'parallel'):
        p = sub.add_parser(name)
        p.add_argument('--results', type=Path, required=True)
        p.add_argument('--name', required=True)
        if name != 'parallel':
            p.add_argument('--budget', type=float, required=True)
    step = sub.choices['step']
    step.add_argument('--note-regex', help='the last match goes to the '
                      'table\'s note column')
    step.add_argument('--quiet', action='store_true',
                      help='keep the output in the log only')
    step.add_argument('command', nargs=argparse.REMAINDER)
    sub.choices['skip'].add_argument('--reason', required=True)
    p = sub.add_parser('report')
    p.add_argument('--results', type=Path, required=True)
    p = sub.add_parser('preflight')
    p.add_argument('--kit', type=Path, required=True)
    p.add_argument('--device', choices=('auto', 'cuda', 'cpu'),
                   default='auto')
    p = sub.add_parser('requirements')
    p.add_argument('--kit', type=Path, required=True)
    p.add_argument('--constraints', type=Path)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    actions = dict(step=run_step, skip=skip_step, report=report,
                   parallel=mark_parallel, preflight=preflight,
                   requirements=requirements)
    try:
        return actions[args.action](args)
    except (OSError, ValueError, KeyError) as error:
        return fail(f'{args.action}: {error}')


if __name__ == '__main__':
    sys.exit(main())
