"""``runctl data load``: put an S3 dataset (or one shard of it) onto a machine.

* ``script.load_script`` writes the POSIX sh script that does it on any machine with
  runctl, s5cmd or the AWS CLI (remote executors and ``--print-script`` use it);
* ``report.parse_report`` reads the one line such a load ends with;
* ``local.load`` runs a load here: runctl's engine in-process, or the script with /bin/sh;
* the shard is runctl.filters.Shard (rclone's ``--hash-filter`` partition).
"""

from .exit_codes import error_for
from .local import load, load_async
from .options import InstanceShards, LoadOptions, Source, parse_source
from .report import LoadReport, format_report, parse_report
from .result import LoadResult
from .script import load_script

__all__ = [
    "InstanceShards",
    "LoadOptions",
    "LoadReport",
    "LoadResult",
    "Source",
    "error_for",
    "format_report",
    "load",
    "load_async",
    "load_script",
    "parse_report",
    "parse_source",
]
