"""What ``runctl data load`` reports: the project's one Result document, plus the load's fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..results import Result
from .report import LoadReport


@dataclass
class LoadResult(Result):
    """``files``/``bytes`` count what DEST holds of the selected source set after the load
    (see dataload/report.py); ``copied``/``deleted``/``skipped`` are known when runctl's
    engine did the load here, None when a script did it with another tool."""

    tool: str = ""
    shard: str | None = None
    target: str | None = None
    """The machine that loaded (--on), None for this one."""
    via: str | None = None
    files: int = 0
    copied: int | None = None
    deleted: int | None = None
    skipped: int | None = None

    def details(self) -> dict[str, Any]:
        where = {"target": self.target, "via": self.via} if self.target else {}
        return {
            **where,
            "tool": self.tool,
            "shard": self.shard,
            "files": self.files,
            "copied": self.copied,
            "deleted": self.deleted,
            "skipped": self.skipped,
        }

    def report(self) -> LoadReport:
        """The machine-readable line's fields (what a script run here would print)."""
        return LoadReport(self.files, self.bytes, self.seconds, self.tool, self.shard)


def script_result(
    source: str, dest: str, status: int | None, stdout: bytes, stderr: bytes, seconds: float, where: str = ""
) -> LoadResult:
    """What a load script's run says: its report line and status, as a result, or the
    typed error when it stopped before loading (no tool, no objects, unwritable DEST)."""
    from ..engine.execute import Failure
    from . import exit_codes
    from .options import parse_source
    from .report import find_report

    out = stdout.decode("utf-8", "replace")
    err = stderr.decode("utf-8", "replace")
    code = exit_codes.FAILED if status is None else status
    report = find_report(out)
    if code != 0 and (report is None or code != exit_codes.FAILED):
        raise exit_codes.error_for(code, err, where)
    if report is None:
        raise exit_codes.error_for(exit_codes.FAILED, err or "the load script printed no report line", where)
    mark = "runctl-load: warning: "
    warnings = [line.split(mark, 1)[1] for line in err.splitlines() if mark in line]
    failed = []
    if code != 0:
        said = [line for line in err.splitlines() if line.strip()]
        failed.append(Failure("", said[-1] if said else f"exit status {code}"))
    return LoadResult(
        "data load",
        parse_source(source).url,
        dest,
        bytes=report.bytes,
        seconds=seconds,
        failed=failed,
        warnings=warnings,
        tool=report.tool,
        shard=report.shard,
        files=report.files,
    )
