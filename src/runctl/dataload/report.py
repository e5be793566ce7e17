"""The one machine-readable line a load ends with, and its one parser.

Every way a load runs prints it as the last line of stdout: runctl's own engine (``runctl
data load``, here or on the instance), the sh script's s5cmd and AWS CLI paths and the
python3 helper. A remote executor reads the line from the script's output, so the whole
protocol is this line::

    runctl-load files=N bytes=B seconds=S tool=T [shard=I/N]

``files``/``bytes``: what DEST holds of the selected source set after the load (the
keys that passed the rules and the shard and are present locally; bytes are their
source sizes). ``seconds``: the load's wall time (whole seconds from sh, which has no
finer clock everywhere). ``tool``: runctl, s5cmd or aws. Fields are space-separated
``key=value`` pairs with no spaces inside; a parser ignores keys it does not know, so
later versions may add some.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import RemoteError

TAG = "runctl-load"
_FIELD = re.compile(r"([a-z_]+)=(\S*)")


@dataclass(frozen=True)
class LoadReport:
    files: int
    bytes: int
    seconds: float
    tool: str
    shard: str | None = None
    """``"I/N"`` when the load was one shard."""


def format_report(report: LoadReport) -> str:
    """The report line (without a newline)."""
    line = f"{TAG} files={report.files} bytes={report.bytes} seconds={report.seconds:.3f} tool={report.tool}"
    return line + (f" shard={report.shard}" if report.shard else "")


def find_report(stdout: str) -> LoadReport | None:
    """The report on the last non-empty line of ``stdout``, or None if there is none."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        return None
    head, _, rest = lines[-1].strip().partition(" ")
    if head != TAG:
        return None
    fields = dict(_FIELD.findall(rest))
    try:
        return LoadReport(
            files=int(fields["files"]),
            bytes=int(fields["bytes"]),
            seconds=float(fields["seconds"]),
            tool=fields["tool"],
            shard=fields.get("shard") or None,
        )
    except (KeyError, ValueError):
        return None


def parse_report(stdout: str) -> LoadReport:
    """The report that ends ``stdout``; RemoteError if the load did not get that far."""
    report = find_report(stdout)
    if report is None:
        tail = stdout.strip().splitlines()[-1:] or ["(no output)"]
        raise RemoteError(
            f"the load ended without its report line (last line: {tail[0][:200]!r})",
            "Run the script by hand (runctl data load --print-script) to see where it stops.",
        )
    return report
