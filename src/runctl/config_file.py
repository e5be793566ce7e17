"""Reading runctl's TOML config file, light enough for code push's timed start-up.

Both the settings loader and the commands that do not load settings (code push reads only
``ssh_client`` and ``[ssm]``) go through here, so a broken or missing file is the same
one-line error (exit 2) whichever command meets it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import UsageError


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "runctl" / "config.toml"


def cache_home() -> Path:
    """Where runctl keeps what it can always make again (the XDG cache directory)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "runctl"


def read_config(config: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The parsed file: ``config`` when given (it must exist), else the default path
    (absent is an empty config)."""
    path = Path(config) if config is not None else default_config_path()
    if not path.exists():
        if config is not None:
            raise UsageError(f"config file not found: {path}")
        return {}
    import tomllib  # only when there is a file: ~3 ms of every start-up otherwise

    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(
            f"cannot read config file {path}: {exc}",
            "Fix the file (TOML: a [runctl] table of key = value lines), or point --config elsewhere.",
        ) from exc
