"""Test helpers: a PATH that holds only what a bare machine has, plus chosen fetch tools."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

SH_TOOLS = ("sh", "dash", "bash", "mkdir", "mktemp", "date", "sed", "grep", "rm", "cat", "env", "find", "awk")
"""What the generated script may use besides its fetch tool (and python3 for the helper)."""
SHELLS = [s for s in ("dash", "bash") if shutil.which(s)]


def real_binary(name: str) -> str | None:
    """The executable behind ``name``, past pyenv's shims (a shim needs pyenv on PATH)."""
    found = shutil.which(name)
    if found is None:
        return None
    if "/shims/" in found:
        beside = Path(sys.executable).parent / name
        if beside.exists():
            return str(beside)
        try:
            out = subprocess.run(["pyenv", "which", name], capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return out.stdout.strip() or None
    return found


def bare_path(where: Path, *extra: str, links: dict[str, str] | None = None) -> str:
    """A directory holding symlinks to the sh tools, the ``extra`` tools (found on PATH)
    and ``links`` (name -> target); returns it as a PATH value."""
    where.mkdir(parents=True, exist_ok=True)
    for name in (*SH_TOOLS, *extra):
        target = real_binary(name)
        if target is not None and not (where / name).exists():
            (where / name).symlink_to(target)
    for name, target in (links or {}).items():
        (where / name).symlink_to(target)
    return str(where)


def add_old_python(bin_dir: Path) -> Path:
    """Put a ``python3`` without runctl in ``bin_dir`` (so ``python3 -m runctl`` fails, as on
    a box with only a system python), preferably an old one: the helper must run on any
    python >= 3.6. Falls back to this interpreter with site-packages off (-S)."""
    link = bin_dir / "python3"
    versions = Path.home() / ".pyenv" / "versions"
    for candidate in sorted(versions.glob("3.*/bin/python3"), key=_version) if versions.is_dir() else []:
        if _version(candidate) < (3, 11):
            probe = subprocess.run([str(candidate), "-c", "import runctl"], capture_output=True, check=False)
            if probe.returncode != 0:
                link.symlink_to(candidate)
                return link
    link.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    link.chmod(0o755)
    return link


def _version(path: Path) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in path.parent.parent.name.split(".")[:2])
    except ValueError:
        return (99,)


def busybox_path(where: Path, links: dict[str, str]) -> str | None:
    """Like ``bare_path`` but every sh tool is BusyBox's (``sh`` is its ash), or None
    without busybox: the script must not need GNU options."""
    busybox = shutil.which("busybox")
    if busybox is None:
        return None
    where.mkdir(parents=True, exist_ok=True)
    for name in SH_TOOLS:
        if name not in ("dash", "bash"):
            (where / name).symlink_to(busybox)
    for name, target in links.items():
        (where / name).symlink_to(target)
    return str(where)
