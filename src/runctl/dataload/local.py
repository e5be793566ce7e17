"""A load that runs here (no ``--on``/``--targets``).

``--tool runctl`` and ``auto`` (we are runctl) run runctl's own engine in-process:
``plan_sync`` from the S3 store to the local store, with the rules and the shard as the
path selector, then ``execute``. This is also what the generated script runs on an
instance that has runctl (``runctl data load ... --tool runctl``), so the CLI prints the
same report line. ``--tool s5cmd|aws`` runs the generated script here with /bin/sh,
exactly as an instance would, and reads its report line.

``--delete`` with a shard also removes local files of other shards (they are not in this
shard's source set: a machine moved from shard 2 to shard 3 keeps no stale data); files
the rules exclude are never removed, as with ``s3 sync --delete``. A source prefix with
no objects at all is "not found" (exit 4) before anything is deleted, so a mistyped
prefix never empties DEST.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import LocalIOError, NotFoundError
from ..events import Reporter, null_reporter
from ..filters import Shard, from_flags
from ..settings import Settings
from .options import LoadOptions, parse_source
from .result import LoadResult

COMMAND = "data load"


async def load_async(
    source: str,
    dest: str | os.PathLike[str],
    options: LoadOptions,
    *,
    shard: Shard | None = None,
    settings: Settings | None = None,
    reporter: Reporter = null_reporter,
) -> LoadResult:
    """Load ``source`` (``s3://BUCKET/PREFIX``) into the local directory ``dest``."""
    settings = settings or Settings()
    if options.tool in ("auto", "runctl"):
        return await _engine_load(source, Path(dest), options, shard, settings, reporter)
    import asyncio

    return await asyncio.to_thread(_script_load, source, os.fspath(dest), options, shard, settings)


def load(
    source: str,
    dest: str | os.PathLike[str],
    options: LoadOptions,
    *,
    shard: Shard | None = None,
    settings: Settings | None = None,
    reporter: Reporter = null_reporter,
) -> LoadResult:
    """Blocking twin of :func:`load_async`."""
    from ..aio import run

    return run(load_async(source, dest, options, shard=shard, settings=settings, reporter=reporter))


async def _engine_load(
    source: str, dest: Path, options: LoadOptions, shard: Shard | None, settings: Settings, reporter: Reporter
) -> LoadResult:
    from ..api import exec_options
    from ..engine.compare import SizeAndMtime
    from ..engine.execute import execute
    from ..engine.sync_plan import plan_sync
    from ..stores.factory import open_local, open_s3
    from ..stores.local import check_destination

    started = time.monotonic()
    src = parse_source(source)
    rules = from_flags(options.rules) if options.rules else None

    # DEST is checked now but created only once the source is known to exist: a mistyped
    # bucket or an unreachable endpoint leaves nothing behind.
    check_destination(dest, directory=True)
    s3, _ = open_s3(src.url, settings, directory=True)
    local, _ = open_local(dest, settings, directory=True)
    async with s3, local:
        # Both listings stream through the merge and unchanged files are only counted:
        # memory stays flat at a million keys (copies beyond COPIES_IN_MEMORY spill).
        plan = await plan_sync(
            s3,
            local,
            SizeAndMtime(s3, local),
            delete=options.delete,
            allow=rules,
            src_allow=shard,  # the other shards' files are not this machine's
            checks_in_flight=max(32, settings.concurrency or 0),
            dst_entries=None if dest.is_dir() else [],
            record_skips=False,
        )
        copies = plan.copies
        # Unchanged files are counted; the few kept as actions were checked by content.
        settled = [a.size for a in plan.actions if a.kind in ("skip", "touch")]
        selected = len(copies) + len(settled) + plan.unrecorded_skips
        selected_bytes = sum(a.size for a in copies) + sum(settled) + plan.unrecorded_skip_bytes
        if not selected and not plan.warnings:
            async for _ in s3.list():
                break
            else:
                raise NotFoundError(f"no objects under {src.url}", "Check the prefix with `runctl s3 list`.")
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LocalIOError(f"cannot create the destination {dest}: {exc.strerror or exc}") from exc
        outcome = await execute(plan, s3, local, reporter, exec_options(settings))
        failed = {f.path for f in outcome.failed}
        lost = [a.size for a in copies if a.target in failed] if failed else []
    return LoadResult(
        COMMAND,
        src.url,
        str(dest),
        bytes=selected_bytes - sum(lost),
        seconds=time.monotonic() - started,
        failed=outcome.failed,
        warnings=list(plan.warnings),
        tool="runctl",
        shard=str(shard) if shard else None,
        files=selected - len(lost),
        copied=outcome.files,
        deleted=outcome.deleted,
        skipped=outcome.skipped + outcome.touched,
    )


def _script_load(
    source: str, dest: str, options: LoadOptions, shard: Shard | None, settings: Settings
) -> LoadResult:
    """Run the generated script here, as an instance would, and read its report."""
    from .result import script_result
    from .script import load_script

    script = load_script(source, dest, options, shard)
    env = dict(os.environ)
    if settings.profile:  # this machine's profile: in the script's environment, never in its text
        env["AWS_PROFILE"] = settings.profile
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="runctl-load-") as tmp:
        path = Path(tmp) / "load.sh"
        path.write_text(script, encoding="utf-8")
        proc = subprocess.run(
            ["/bin/sh", str(path)], stdin=subprocess.DEVNULL, capture_output=True, env=env, check=False
        )
    return script_result(source, dest, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
