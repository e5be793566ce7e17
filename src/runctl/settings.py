"""One validated, frozen settings object, built at the edge.

Precedence: defaults < config file < environment (RUNCTL_*) < command-line flags.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .config_file import default_config_path, read_config
from .errors import UsageError
from .sizes import human_size, parse_size
from .stores.s3_config import S3Options

MIN_PART = 5 * 1024 * 1024  # S3's floor for every multipart part but the last
MAX_PART = 5 * 1024**3  # S3's ceiling for any one part


@dataclass(frozen=True)
class Settings:
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    concurrency: int | None = None
    """Transfers in flight; None: the stores' own number (S3: 256 small objects, fewer
    large ones within a byte bound, see ExecOptions)."""
    part_size: int = 8 * 1024 * 1024
    parts_in_flight: int = 4
    range_size: int | None = None
    """Byte range per GET when a large object comes down in parallel; None means
    max(part_size, 16MiB): fewer, longer streams measured faster than 8 MiB ones."""
    retries: int = 3
    """Retries of each S3 request (jittered exponential backoff, within retry_budget)."""
    idle_timeout: float = 10.0
    """Seconds a request may send or receive nothing before it is abandoned and retried."""
    retry_budget: float = 30.0
    """Seconds after a request's first try during which retries may still start."""
    ssh_client: str = "asyncssh"
    """How remotes are reached: asyncssh or openssh (code push reads this key itself,
    without loading settings; here so the config file may carry it)."""
    ssm_output_s3: str | None = None
    """s3://bucket/prefix for SSM Run Command's whole output (config: [ssm] output_s3)."""
    ssm_staging: str | None = None
    """s3://bucket/prefix where payloads for SSM instances are staged ([ssm] staging)."""

    def __post_init__(self) -> None:
        if self.concurrency is not None and self.concurrency < 1:
            raise UsageError(
                f"--concurrency must be at least 1, got {self.concurrency}",
                "e.g. --concurrency 64: how many files move at once (leave it out for the default).",
            )
        if not MIN_PART <= self.part_size <= MAX_PART:
            raise UsageError(
                f"--part-size must be at least 5MiB and at most 5GiB (S3's limits for a part), got "
                f"{human_size(self.part_size)} ({self.part_size:,} bytes)",
                "e.g. --part-size 8MiB (the default) or 64MiB; huge objects grow their part size themselves.",
            )
        if self.range_size is not None and self.range_size < 1:
            raise UsageError(f"range_size must be at least 1 byte, got {self.range_size}")
        if self.idle_timeout <= 0 or self.retry_budget < 0:
            raise UsageError("idle_timeout must be > 0 and retry_budget >= 0 (seconds)")
        if self.parts_in_flight < 1 or self.retries < 0:
            raise UsageError("parts_in_flight must be >= 1 and retries >= 0")

    @property
    def download_range(self) -> int:
        return self.range_size or max(self.part_size, 16 * 1024 * 1024)

    def s3_options(self) -> S3Options:
        return S3Options(
            endpoint_url=self.endpoint_url,
            profile=self.profile,
            region=self.region,
            retries=self.retries,
            idle_timeout=self.idle_timeout,
            retry_budget=self.retry_budget,
        )


_INT_FIELDS = {"concurrency", "parts_in_flight", "retries"}
_SIZE_FIELDS = {"part_size", "range_size"}
_FLOAT_FIELDS = {"idle_timeout", "retry_budget"}


def _coerce(name: str, value: Any) -> Any:
    if name in _SIZE_FIELDS:
        return parse_size(value if isinstance(value, int) else str(value))
    if name in _FLOAT_FIELDS:
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{name} must be a number of seconds, got {value!r}") from exc
    if name in _INT_FIELDS:
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{name} must be a whole number, got {value!r}") from exc
    return None if value in ("", None) else str(value)


def load_settings(config: Path | None = None, flags: dict[str, Any] | None = None) -> Settings:
    """Merge defaults, the config file's ``[runctl]`` table, RUNCTL_* variables and flags."""
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}
    document = read_config(config)
    if document:
        table = dict(document.get("runctl", {}))
        # [ssm] output_s3 / staging are the ssm_* settings.
        table.update({f"ssm_{k}": v for k, v in document.get("ssm", {}).items()})
        unknown = set(table) - names
        if unknown:
            where = config or default_config_path()
            raise UsageError(f"unknown keys in {where}: {', '.join(sorted(unknown))}")
        values.update({k: _coerce(k, v) for k, v in table.items()})
    for name in names:
        env = os.environ.get("RUNCTL_" + name.upper())
        if env is not None:
            values[name] = _coerce(name, env)
    for name, value in (flags or {}).items():
        if value is not None and name in names:
            values[name] = _coerce(name, value)
    return replace(Settings(), **values)
