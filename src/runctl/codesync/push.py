"""`code push` as an operation: select, connect, plan, execute, return a result.

The copy itself is the shared engine between a local store of the selected files and
a remote-tree store: one planner (plan_sync; full mode copies everything and commits
staged), one plan holding every action (copies, deletes, mtime fixes), executed by
the store's session as one remote script. This module only wires them.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ..errors import UsageError
from ..events import Reporter, null_reporter
from ..filters import Rule
from ..remote import open_remote
from ..remote.target import ConnectOptions, Target, parse_dest
from ..results import Result
from ..stores.gzip_stream import MEASURE_ABOVE, Compress, wanted
from ..stores.local import require_directory

if TYPE_CHECKING:
    from ..engine.plan import Plan
    from ..remote.seam import Remote
    from ..stores.remote_tree import RemoteTree, RemoteTreeStore
    from .plan_memo import PlanMemo
    from .selection import Selection

# The engine, the selection (pathspec) and the local store are imported inside the
# functions below: after the remote shell has been asked for, they load while the
# remote login shell starts (~100-150 ms) instead of before the connection.

Mode = Literal["incremental", "full"]


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
class PushResult(Result):
    command: str = "code push"
    source: str = ""
    destination: str = ""
    mode: Mode = "incremental"
    sent: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    compression: str | None = None
    """"gzip" when the tar stream was compressed."""
    transport: str = ""
    """How the remote was reached: "asyncssh" or "openssh"."""
    lister: str = ""
    """What listed the remote tree: "gnu" (find -printf), "perl" or "stat" (BusyBox stat)."""
    remote_tools: list[str] = field(default_factory=list)
    """The remote's tools runctl looked for and found (tar, gzip, digest commands)."""
    verified: str | None = None
    """The digest ("sha256", "md5") the remote checked the unpacked files with before
    putting them in place; None when nothing was unpacked or it has no digest tool."""

    def details(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "mode": self.mode,
            "sent": self.sent,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "transport": self.transport,
            "remote": {"lister": self.lister, "tools": self.remote_tools},
            "verified": self.verified,
        }
        if self.compression:
            doc["compression"] = self.compression
        return doc


class CodePush:
    """One connection, reused by every push (``--watch`` pushes many times)."""

    def __init__(self, local_dir: Path, dest: str, options: PushOptions, reporter: Reporter = null_reporter):
        self.root = Path(local_dir)
        self.target: Target = parse_dest(dest)
        self.options = options
        self.reporter = reporter
        self.remote: Remote | None = None
        self._round_trip: float | None = None
        self._early: asyncio.Task[Selection] | None = None
        """The first push's local walk, started before the connection is made."""
        self._gc_paused = False

    def _pause_gc(self) -> None:
        """Until the plan is made. Planning makes two listings of entries (120,000 at
        60,000 files) and a plan, all alive until the plan is made: the cyclic GC, run
        every 700 allocations, traversed them again and again (0.1-0.3 s of such a push)."""
        if gc.isenabled():
            gc.disable()
            self._gc_paused = True

    def _resume_gc(self) -> None:
        if self._gc_paused:
            self._gc_paused = False
            # What planning made is frozen out of the collector's reach (freed by reference
            # counting all the same): enabled over it, the first collection traversed it
            # all at once (0.1 s).
            gc.freeze()
            gc.enable()

    def _start_selection(self) -> asyncio.Task[Selection]:
        return asyncio.create_task(asyncio.to_thread(_select, self.root, self.options.rules))

    async def __aenter__(self) -> CodePush:
        require_directory(self.root)  # fail before any network work
        self._pause_gc()
        # The walk (60,000 lstat calls: ~0.3 s here) runs while the SSH handshake waits
        # on the network.
        self._early = self._start_selection()
        try:
            self.remote = await open_remote(self.target, self.options.ssh)
        except BaseException:
            self._early.cancel()
            raise
        if not self.remote.interactive and not self.target.path.startswith("/"):
            await self.remote.close()
            raise UsageError(
                f"over {self.remote.name.upper()}, push to an absolute path, not {self.target.path!r}",
                "The agent runs as root with no home directory, e.g. i-0abc...:/home/ubuntu/project",
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._early is not None:
            self._early.cancel()
        self._resume_gc()
        remote, self.remote = self.remote, None
        if remote is not None:
            await remote.close()

    async def push(self) -> PushResult:
        from ..remote.shell import RemoteShell, request_listing

        assert self.remote is not None, "use CodePush as an async context manager"
        started = time.monotonic()
        self._pause_gc()
        # The remote shell (one command for the whole push) is asked for first; the
        # store, the engine and the local walk load and run while the remote login
        # shell starts (~100 ms on a host whose .bashrc inits conda or pyenv).
        shell = RemoteShell(self.remote)
        requested = asyncio.ensure_future(request_listing(shell, self.target.path))
        await asyncio.sleep(0)  # the request goes out now
        from ..stores.record_cache import RecordCache
        from ..stores.remote_tree import RemoteTreeStore

        address = f"{self.remote.name} {self.target.url}"
        dst = RemoteTreeStore(shell, self.target.path, RecordCache.for_destination(address))
        memo = self._memo(address)
        if memo is None or memo.memo is None:
            dst.load_records()  # else only once the memo cannot answer (see _listing)
        listing = asyncio.ensure_future(self._listing(dst, requested, memo))
        try:
            # A later push (watch mode) walks again: the tree has changed since.
            selecting, self._early = (self._early or self._start_selection()), None
            try:
                return await self._push(dst, requested, listing, selecting, started, memo)
            finally:
                selecting.cancel()
        finally:
            self._resume_gc()
            for future in (requested, listing):
                future.cancel()
                if future.done() and not future.cancelled():
                    future.exception()  # retrieved: a failure after another one is not news
            await dst.close()

    def _memo(self, address: str) -> PlanMemo | None:
        """The memo of this destination, for the pushes it can answer (see plan_memo)."""
        from .plan_memo import PlanMemo

        opts = self.options
        return PlanMemo(address) if opts.mode == "incremental" and not opts.delete else None

    async def _listing(
        self, dst: RemoteTreeStore, requested: asyncio.Future[bytes], memo: PlanMemo | None
    ) -> tuple[bytes, bytes | None]:
        """The listing and its digest for the memo. A listing the memo has not seen
        starts the kept records' read at once, while the walk still runs."""
        raw = await requested
        if memo is None:
            return raw, None
        from .plan_memo import remote_digest

        digest = remote_digest(repr(self.options.rules), raw)
        if not memo.remote_matches(digest):
            dst.load_records()
        return raw, digest

    async def _push(
        self,
        dst: RemoteTreeStore,
        requested: asyncio.Future[bytes],
        listing: asyncio.Future[tuple[bytes, bytes | None]],
        selecting: asyncio.Task[Selection],
        started: float,
        memo: PlanMemo | None,
    ) -> PushResult:
        # The listing's answer arrives meanwhile; it is parsed once the walk is done. Parsed
        # during the walk (both are Python: one GIL), each of the walk's lstat calls waited
        # for the GIL, and the two took twice as long together as one after the other.
        selection = await selecting
        raw, digest = await listing
        if memo is not None and digest is not None and memo.remote_matches(digest):
            from ..stores.remote_tree import listing_head

            head = listing_head(raw, dst.url)
            known = memo.recall(digest, selection.entries, head.clock_ahead)
            if known is not None:
                self._resume_gc()
                return await self._plan_and_run(dst, head, selection, started, known)
            dst.load_records()
        tree = await dst.survey(requested)
        plan = await self._plan(dst, tree, selection)
        if memo is not None:
            if digest is not None and tree.clock_ahead is not None and not plan.actions:
                self._remember(memo, digest, dst, tree, selection, plan)
            else:
                # Gone: the next push, likely another edit, then reads the kept records
                # from its start, not only once a memo has failed to answer it.
                memo.forget()
        return await self._plan_and_run(dst, tree, selection, started, plan)

    async def _plan(self, dst: RemoteTreeStore, tree: RemoteTree, selection: Selection) -> Plan:
        from ..engine.compare import Always, Compare
        from ..engine.sync_plan import plan_sync
        from .compare import CodeCompare
        from .selection import SelectedStore

        opts = self.options
        src = SelectedStore(selection)
        full = opts.mode == "full"
        compare: Compare = Always(src, dst) if full else CodeCompare(src, dst, tree)
        try:
            return await plan_sync(
                src,
                dst,
                compare,
                delete=opts.delete,
                allow=selection.allow(),
                dst_entries=tree.entries,
                src_entries=selection.entries,
                staged=full,
                record_skips=False,  # counted: 60,000 skip actions and events cost 0.15 s
                source_selected=True,  # the selection is what ``allow`` admits
            )
        finally:
            self._resume_gc()

    def _remember(
        self,
        memo: PlanMemo,
        digest: bytes,
        dst: RemoteTreeStore,
        tree: RemoteTree,
        selection: Selection,
        plan: Plan,
    ) -> None:
        """Keep an empty plan for the next push, with the largest clock bound it holds for."""
        from .compare import CodeCompare
        from .selection import SelectedStore

        bound = CodeCompare(SelectedStore(selection), dst, tree).trusted_up_to(tree.entries)
        memo.keep(digest, selection.entries, bound, plan)

    async def _plan_and_run(
        self,
        dst: RemoteTreeStore,
        tree: RemoteTree,
        selection: Selection,
        started: float,
        plan: Plan,
    ) -> PushResult:
        from ..engine.execute import ExecOptions, Outcome, execute
        from .selection import SelectedStore

        opts = self.options
        src = SelectedStore(selection)
        full = opts.mode == "full"
        compress = False
        outcome = Outcome(skipped=plan.skip_count)
        if not opts.dry_run:
            if plan.copies and tree.has_tar and "gzip" in tree.tools:
                compress = wanted(opts.compress, await self._link_round_trip(dst, plan))
            session = dst.open_session(ExecOptions(), tree, compress)
            outcome = await execute(plan, src, dst, self.reporter, session=session)
        dirs = {e.path for e in selection.entries if e.kind == "dir"}  # reported: files and links
        # Every directory on both sides is a skip (directory mtimes are no signal).
        skipped_dirs = len(dirs) - sum(1 for a in plan.copies if a.path in dirs)
        failed = {f.path for f in outcome.failed}
        deleted = [a.target for a in plan.deletes if not (full and a.entry and a.entry.kind == "dir")]
        return PushResult(
            mode=opts.mode,
            source=str(self.root),
            destination=self.target.url,
            sent=[a.path for a in plan.copies if a.path not in dirs and a.path not in failed],
            deleted=deleted,
            unchanged=plan.skip_count - skipped_dirs + sum(1 for a in plan.touches if a.path not in dirs),
            # A dry run reports what it would send, as its file list does.
            bytes=sum(a.size for a in plan.copies) if opts.dry_run else outcome.bytes,
            seconds=time.monotonic() - started,
            dry_run=opts.dry_run,
            warnings=list(plan.warnings),
            compression="gzip" if compress and plan.copies else None,
            failed=outcome.failed,
            transport=self.remote.name if self.remote else "",
            lister=tree.lister,
            remote_tools=sorted(tree.tools),
            verified=outcome.verified,
        )

    async def _link_round_trip(self, dst: RemoteTreeStore, plan: Plan) -> float | None:
        """Measured once per connection, only when ``auto`` needs it, and only with the
        event loop idle: measured while the plan was made (CPU-bound), the loop's own
        delay in reading the answer counted as latency and loopback looked like a WAN.

        Not measured for a plan under MEASURE_ABOVE bytes (None: compressed): there either
        choice costs a few milliseconds wherever the link is, and the measurement costs a
        round trip (30 ms of a 0.7 s ten-file push over a 30 ms WAN). Nor when a digest
        request of this push has timed the link (``RemoteShell.round_trip_seen``: its
        answer's opening line, printed before the digest is taken, with the loop idle
        while the remote hashes)."""
        if self.options.compress != "auto" or self._round_trip is not None:
            return self._round_trip
        if sum(a.size for a in plan.copies) < MEASURE_ABOVE:
            return None
        hint = dst.shell.remote.round_trip_hint
        if hint is None:
            # A digest request this push made (a changed large file) has timed the link
            # already: no round trip of its own (30 ms of a 1 s push over a 30 ms WAN).
            hint = dst.shell.round_trip_seen
        self._round_trip = hint if hint is not None else await dst.shell.round_trip()
        return self._round_trip


def _select(root: Path, rules: tuple[Rule, ...]) -> Selection:
    from .selection import select

    return select(root, rules)


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
