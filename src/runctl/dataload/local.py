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
    from ..engine.plan import Action
    from ..engine.sync_plan import plan_sync
    from ..stores.factory import open_local, open_s3
    from ..stores.local import check_destination, safe_relpath

    started = time.monotonic()
    src = parse_source(source)
    rules = from_flags(options.rules) if options.rules else None

    def allow(path: str) -> bool:
        return (rules is None or rules(path)) and (shard is None or shard(path))

    # DEST is checked now but created only once the source is known to exist: a mistyped
    # bucket or an unreachable endpoint leaves nothing behind.
    check_destination(dest, directory=True)
    s3, _ = open_s3(src.url, settings, directory=True)
    local, _ = open_local(dest, settings, directory=True)
    async with s3, local:
        here = [e async for e in local.list()] if dest.is_dir() else []
        plan = await plan_sync(
            s3,
            local,
            SizeAndMtime(s3, local),
            delete=options.delete,
            allow=allow if rules is not None or shard is not None else None,
            checks_in_flight=max(32, settings.concurrency or 0),
            dst_entries=here,
        )
        selected = [a for a in plan.all_actions() if a.kind in ("copy", "skip", "touch")]
        if not selected and not plan.warnings:
            async for _ in s3.list():
                break
            else:
                raise NotFoundError(f"no objects under {src.url}", "Check the prefix with `runctl s3 list`.")
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LocalIOError(f"cannot create the destination {dest}: {exc.strerror or exc}") from exc
        if options.delete and shard is not None:
            plan.actions += [
                Action("delete", e.path, e.size, "not in shard", e)
                for e in here
                if e.kind == "file" and not shard(e.path) and (rules is None or rules(e.path))
                if safe_relpath(e.path) is not None
            ]
        outcome = await execute(plan, s3, local, reporter, exec_options(settings))
    failed = {f.path for f in outcome.failed}
    kept = [a for a in selected if a.target not in failed]
    return LoadResult(
        COMMAND,
        src.url,
        str(dest),
        bytes=sum(a.size for a in kept),
        seconds=time.monotonic() - started,
        failed=outcome.failed,
        warnings=list(plan.warnings),
        tool="runctl",
        shard=str(shard) if shard else None,
        files=len(kept),
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
