"""Time runctl as an installed copy runs: with its modules compiled to bytecode.

pip compiles a wheel's modules when it installs them. An editable install never does,
and with PYTHONDONTWRITEBYTECODE=1 (set in these sandboxes) Python never writes the
cache either, so every timed run would compile ~40 modules from source: ~30 ms of CPU
that no installed copy pays. Each benchmark calls ``compile_runctl()`` before timing.
"""

from __future__ import annotations

import compileall
import importlib.util
from pathlib import Path


def compile_runctl() -> None:
    spec = importlib.util.find_spec("runctl")
    if spec is None or spec.origin is None:
        raise SystemExit("runctl is not importable: pip install -e '.[dev,local]' first")
    if not compileall.compile_dir(Path(spec.origin).parent, quiet=1):
        raise SystemExit("compiling runctl failed")
