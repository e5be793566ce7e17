"""`code push` as an operation: select, connect, plan, execute, return a result.

The copy itself is the shared engine (plan_sync + execute) between a local store of
the selected files and an SSH store; this module only wires them and adds what is
particular to code: the full-mode swap and mtime fixes after hash matches.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ..errors import NotFoundError, RemoteToolMissingError
from ..events import Reporter, null_reporter
from ..filters import Rule
from ..stores.gzip_stream import Compress, wanted
from .target import ConnectOptions, Target, connect, parse_dest

if TYPE_CHECKING:
    from ..engine.plan import Plan
    from ..stores.ssh import SSHStore
    from .selection import Selection

# The engine, the selection (pathspec) and the local store are imported inside the
# functions below: after the remote shell has been asked for, they load while the
# remote login shell starts (~100-150 ms) instead of before the connection.

Mode = Literal["incremental", "full"]
SFTP_FILES_IN_FLIGHT = 64


class PushOptions(NamedTuple):  # NamedTuples here: start-up is timed against rsync
    mode: Mode = "incremental"
    delete: bool = False
    dry_run: bool = False
    rules: tuple[Rule, ...] = ()
    """--exclude / --include in command-line order."""
    ssh: ConnectOptions = ConnectOptions()
    compress: Compress = "auto"
    """gzip the tar stream: auto = unless the remote is this machine (see gzip_stream)."""


@dataclass
class PushResult:
    mode: Mode
    source: str
    destination: str
    sent: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    bytes: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)
    compression: str | None = None
    """"gzip" when the tar stream was compressed."""
    failed: list[dict[str, str]] = field(default_factory=list)
    """Files that could not be written (SFTP, one at a time, when the remote has no tar)."""

    ok: bool = True

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "ok": self.ok,
            "mode": self.mode,
            "sent": self.sent,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "source": self.source,
            "destination": self.destination,
        }
        if self.dry_run:
            doc["dry_run"] = True
        if self.warnings:
            doc["warnings"] = self.warnings
        if self.compression:
            doc["compression"] = self.compression
        if self.failed:
            doc["failed"] = self.failed
        return doc


class CodePush:
    """One SSH connection, reused by every push (``--watch`` pushes many times)."""

    def __init__(self, local_dir: Path, dest: str, options: PushOptions, reporter: Reporter = null_reporter):
        self.root = Path(local_dir)
        self.target: Target = parse_dest(dest)
        self.options = options
        self.reporter = reporter
        self._conn: Any = None

    def _start_selection(self) -> asyncio.Task[Selection]:
        return asyncio.create_task(asyncio.to_thread(_select, self.root, self.options.rules))

    async def __aenter__(self) -> CodePush:
        if not self.root.is_dir():  # fail before any network work
            raise NotFoundError(f"local directory not found: {self.root}", "Check the path.")
        self._conn = await connect(self.target, self.options.ssh)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
            await self._conn.wait_closed()
            self._conn = None

    async def push(self) -> PushResult:
        from ..stores.ssh_session import RemoteShell, request_listing

        started = time.monotonic()
        # The remote shell (one exec channel for the whole push) is asked for first; the
        # SSH store, the engine and the local walk load and run while the remote login
        # shell starts (~100 ms on a host whose .bashrc inits conda or pyenv).
        shell = RemoteShell(self._conn, self.target.url)
        requested = asyncio.ensure_future(request_listing(shell, self.target.path))
        await asyncio.sleep(0)  # the channel request goes out now
        from ..stores.ssh import SSHStore

        dst = SSHStore(self._conn, self.target.path, self.target.url, shell)
        listing = asyncio.ensure_future(dst.prefetch(requested))
        try:
            selecting = self._start_selection()
            try:
                return await self._push(dst, listing, selecting, started)
            finally:
                selecting.cancel()
        finally:
            listing.cancel()
            requested.cancel()
            await dst.close()

    async def _push(
        self, dst: SSHStore, listing: asyncio.Future[None], selecting: asyncio.Task[Selection], started: float
    ) -> PushResult:
        from ..engine.execute import ExecOptions, Outcome, execute
        from .compare import CodeCompare
        from .selection import SelectedStore

        opts = self.options
        selection, _ = await asyncio.gather(selecting, listing)
        src = SelectedStore(selection)
        compare: CodeCompare | None = None
        if opts.mode == "full":
            plan, deleted = await _full_plan(selection, dst, opts.delete)
        else:
            from ..engine.sync_plan import plan_sync

            compare = CodeCompare(src, dst)
            plan = await plan_sync(src, dst, compare, delete=opts.delete, allow=selection.allow())
            deleted = [a.target for a in plan.deletes]
        if plan.copies and opts.mode == "full" and dst.tools and "tar" not in dst.tools:
            raise RemoteToolMissingError(
                f"tar is not installed on {dst.url}: full mode needs it",
                "Install tar there, or push with --mode incremental (SFTP, one file at a time).",
            )
        peer = self._conn.get_extra_info("peername")
        dst.compress = "gzip" in dst.tools and wanted(opts.compress, peer[0] if peer else None)
        outcome = Outcome(skipped=len(plan.skips))
        if not opts.dry_run:
            if compare is not None:
                # Before the tar stream: the tar is the last script of the remote shell.
                await dst.set_mtimes(compare.touch)
            # Without tar the files go over SFTP, one request stream each: many at once.
            lanes = ExecOptions() if dst.batch_writes else ExecOptions(concurrency=SFTP_FILES_IN_FLIGHT)
            outcome = await execute(plan, src, dst, self.reporter, lanes)
        dirs = {e.path for e in selection.entries if e.kind == "dir"}  # reported: files and links
        failed = {f.path for f in outcome.failed}
        return PushResult(
            mode=opts.mode,
            source=str(self.root),
            destination=self.target.url,
            sent=[a.path for a in plan.copies if a.path not in dirs and a.path not in failed],
            deleted=deleted,
            unchanged=sum(1 for a in plan.skips if a.path not in dirs),
            bytes=outcome.bytes,
            seconds=time.monotonic() - started,
            dry_run=opts.dry_run,
            warnings=list(plan.warnings),
            compression="gzip" if dst.compress and plan.copies and not opts.dry_run else None,
            failed=[{"path": f.path, "error": f.error} for f in outcome.failed],
            ok=not outcome.failed,
        )


def _select(root: Path, rules: tuple[Rule, ...]) -> Selection:
    from .selection import select

    return select(root, rules)


async def _full_plan(selection: Selection, dst: Any, delete: bool) -> tuple[Plan, list[str]]:
    """Everything is sent, into a staging directory swapped into place; remote paths
    that must survive (excluded ones; all remote-only ones without --delete) are moved
    back into the new tree."""
    from ..engine.plan import Action, Plan

    remote = [e async for e in dst.list()]
    plan = Plan([Action("copy", e.path, e.size, "full", e) for e in selection.entries])
    allow = selection.allow()
    wanted = selection.paths()
    only_remote = [e for e in remote if e.path not in wanted]
    gone = [e for e in only_remote if delete and allow(e.path)]
    gone_paths = {e.path for e in gone}
    kept = [e.path for e in only_remote if e.path not in gone_paths]
    src_dirs = {e.path for e in selection.entries if e.kind == "dir"}
    dst.staging = True
    dst.keep = _keep_roots(kept, sorted(gone_paths), src_dirs, wanted)
    return plan, [e.path for e in gone if e.kind != "dir"]


def _keep_roots(kept: list[str], gone: list[str], src_dirs: set[str], wanted: set[str]) -> list[str]:
    """The fewest remote paths to move back: the shallowest ancestor of each kept path
    that is not a directory of the new tree and holds nothing that should go."""
    holds_gone = {"/".join(p.split("/")[:i]) for p in gone for i in range(1, p.count("/") + 2)}
    roots: set[str] = set()
    for path in kept:
        parts = path.split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/".join(parts[:i])
            if prefix in src_dirs:
                continue
            if prefix in wanted:
                break  # replaced by a new file or link of the same name
            if prefix not in holds_gone:
                roots.add(prefix)
                break
    ordered = sorted(roots)
    return [r for r in ordered if not any(r.startswith(o + "/") for o in ordered)]


async def push_async(
    local_dir: str | Path, dest: str, options: PushOptions | None = None, reporter: Reporter = null_reporter
) -> PushResult:
    """Push ``local_dir`` to ``dest`` once (see the CLI help for DEST forms)."""
    async with CodePush(Path(local_dir), dest, options or PushOptions(), reporter) as pusher:
        return await pusher.push()


def _snapshot(root: Path, rules: tuple[Rule, ...]) -> tuple[tuple[Any, ...], ...]:
    selection = _select(root, rules)
    return tuple((e.path, e.kind, e.size, e.mtime, e.mode, e.link) for e in selection.entries)


async def watch_async(
    local_dir: str | Path,
    dest: str,
    options: PushOptions,
    on_result: Callable[[PushResult], None],
    *,
    interval: float = 0.5,
    settle: float = 0.3,
    reporter: Reporter = null_reporter,
    max_pushes: int | None = None,
) -> None:
    """Push, then poll the tree and push each change set once it has settled (no
    change for ``settle`` seconds, so an editor's save-and-rename is one push).
    Runs until cancelled (Ctrl-C) or ``max_pushes`` pushes (for tests)."""
    root = Path(local_dir)
    pushes = 0
    async with CodePush(root, dest, options, reporter) as pusher:
        last = await asyncio.to_thread(_snapshot, root, options.rules)
        on_result(await pusher.push())
        pushes += 1
        while max_pushes is None or pushes < max_pushes:
            await asyncio.sleep(interval)
            now = await asyncio.to_thread(_snapshot, root, options.rules)
            if now == last:
                continue
            while True:  # debounce: wait until the tree stops changing
                await asyncio.sleep(settle)
                again = await asyncio.to_thread(_snapshot, root, options.rules)
                if again == now:
                    break
                now = again
            last = now
            on_result(await pusher.push())
            pushes += 1
