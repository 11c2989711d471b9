"""Does a pacemaker installation have a working TensorFlow evaluator (``evaluator: tensorpot``)?

The answer depends on the Python environment of the *pacemaker code* (e.g. ``.venv-tf``, made by ``make install-tf``),
not on the environment running AiiDA, so the check runs a small script with that code's interpreter. Known to work:
``pip install python-ace==0.4.0rc1 tensorpotential==0.6.2.1 "numpy<2.4"`` (TensorFlow 2.20 + tf_keras). numpy 2.4
breaks the fit (``TypeError: only 0-dimensional arrays ...`` in ``tensorpotential/compat/pace/fitmetrics.py``).

No AiiDA imports.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import typing as t

#: the pins that work (Python 3.11): also the ``tensorpot`` extra of pyproject.toml and ``make install-tf``
PINS = ('python-ace==0.4.0rc1', 'tensorpotential==0.6.2.1', 'numpy<2.4')
#: first numpy that breaks tensorpotential 0.6.2.1's fit metrics
NUMPY_BREAKS = (2, 4)
INSTALL_HINT = '`pip install ' + ' '.join(shlex.quote(p) for p in PINS) + '` in its environment'

#: run with the code's interpreter; prints one JSON line. With --import also imports tensorpotential (a few seconds:
#: it loads TensorFlow) and counts the GPUs TensorFlow sees.
CHECK_SCRIPT = r'''
import json, os, sys, sysconfig
import importlib.metadata as md
out = {'python': sys.executable, 'site': sysconfig.get_paths()['purelib']}
for dist in ('numpy', 'tensorflow', 'tensorpotential', 'python-ace'):
    try:
        out[dist] = md.version(dist)
    except md.PackageNotFoundError:
        out[dist] = None
if '--import' in sys.argv and out['tensorpotential']:
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    try:
        import tensorpotential.tensorpot  # what pacemaker's tensorpot backend imports
        import tensorflow as tf
        out['gpus'] = len(tf.config.list_physical_devices('GPU'))
    except Exception as exc:
        out['import_error'] = (type(exc).__name__ + ': ' + str(exc)).splitlines()[0][:300]
print(json.dumps(out))
'''


def interpreter_of(executable: str) -> str | None:
    """The Python that runs the console script ``executable`` (pip's ``#!`` line, also its ``/bin/sh`` form for long
    paths), else a ``python`` beside it; None when there is none."""
    try:
        with open(executable, 'rb') as handle:
            head = handle.read(1024).decode('utf-8', 'replace').splitlines()
    except OSError:
        head = []
    if head and head[0].startswith('#!'):
        words = shlex.split(head[0][2:].strip()) or ['']
        if words[0].endswith('/sh') and len(head) > 1 and "'''exec'" in head[1]:
            words = shlex.split(head[1].split("'''exec'", 1)[1]) or ['']
        if os.path.basename(words[0]) == 'env' and len(words) > 1:
            words = words[1:]
        if 'python' in os.path.basename(words[0]) and os.path.isfile(words[0]):
            return words[0]
    for name in ('python', 'python3'):
        candidate = os.path.join(os.path.dirname(executable), name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def probe(python: str, full_import: bool = False, timeout: float = 180.0) -> dict:
    """Versions of numpy, tensorflow, tensorpotential and python-ace in the environment of ``python`` (None: not
    installed); with ``full_import`` also ``gpus`` or ``import_error``. ``error``: the script did not run."""
    command = [python, '-c', CHECK_SCRIPT] + (['--import'] if full_import else [])
    env = {**os.environ, 'PYTHONNOUSERSITE': '1'}
    env.pop('PYTHONPATH', None)  # the code's own environment, not this one's
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {'python': python, 'error': f'{type(exc).__name__}: {exc}'}
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{')]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ['no output'])[-1]
        return {'python': python, 'error': f'exit {proc.returncode}: {tail}'}
    return json.loads(lines[-1])


_CACHE: dict[str, tuple[float, dict]] = {}


def _site_mtime(info: dict) -> float | None:
    try:
        return os.stat(info['site']).st_mtime
    except (KeyError, OSError):
        return None


def probe_cached(python: str, full_import: bool = True) -> dict:
    """:func:`probe`, remembered per interpreter until its site-packages folder changes (a package added, removed
    or upgraded), so the validators of one submission pay for the TensorFlow import once."""
    cached = _CACHE.get(python)
    if cached is not None and cached[0] == _site_mtime(cached[1]):
        return cached[1]
    info = probe(python, full_import=full_import)
    mtime = _site_mtime(info)
    if mtime is not None:
        _CACHE[python] = (mtime, info)
    return info


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split('.'):
        digits = ''.join(c for c in part if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
        if digits != part:
            break
    return tuple(parts)


def problem(info: t.Mapping, where: str | None = None) -> str | None:
    """Why the environment described by ``info`` (from :func:`probe`) cannot run a tensorpot fit, naming the package,
    its version and the fix, in one line; None when it can."""
    where = where or f'the environment of {info.get("python", "?")}'
    fix = ('use a pacemaker with a TensorFlow stack: `make install-tf` makes .venv-tf, which `aiida-glassml setup` '
           f'registers as pacemaker-tf@localhost, or run {INSTALL_HINT}; or set evaluator: pyace')
    if info.get('error'):
        return f'cannot check {where} for tensorpot ({info["error"]}); {fix}.'
    if not info.get('python-ace'):
        return f'python-ace (pacemaker) is not installed in {where}; {fix}.'
    for dist in ('tensorpotential', 'tensorflow'):
        if not info.get(dist):
            return f'evaluator tensorpot needs {dist}, which is not installed in {where}; {fix}.'
    numpy = info.get('numpy')
    if numpy and _version_tuple(numpy) >= NUMPY_BREAKS:
        return (f'numpy {numpy} in {where} breaks tensorpot fits (TypeError in tensorpotential\'s fitmetrics); '
                f'downgrade it there: pip install "numpy<2.4" (with tensorpotential {info["tensorpotential"]}, '
                f'tensorflow {info["tensorflow"]}).')  # fmt: skip
    if info.get('import_error'):
        return (f'tensorpotential {info["tensorpotential"]} does not import in {where} ({info["import_error"]}); '
                f'reinstall it: {INSTALL_HINT.replace("its", "that")}.')
    return None


def describe(info: t.Mapping) -> str:
    """One line for setup and the code's description: the versions, and the GPUs TensorFlow sees."""
    text = (f'tensorpot: tensorpotential {info.get("tensorpotential")}, tensorflow {info.get("tensorflow")}, '
            f'numpy {info.get("numpy")}, python-ace {info.get("python-ace")}')
    if 'gpus' in info:
        text += f', {info["gpus"]} GPU(s) visible'
    return text
