"""One remote ``sh -s`` that runs every script of an operation, through ONE started command.

On a real host each exec channel starts the user's login shell (``bash -c``, which
sources ``.bashrc``: conda/pyenv init alone measured 85-150 ms), so the listing, the
hash requests, the mtime fixes and the final tar stream all go through one shell, as
rsync's single ``rsync --server`` does. The wire protocol is in
``scripts.session_script``; this class only frames requests and answers, over any
transport behind the seam (``remote.seam.Remote``).

A ``last`` script (the tar stream) ends the shell; the next script opens a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from ..errors import LocalIOError, NetworkError
from . import scripts
from .seam import Process, Remote

COMMAND = "sh -s"
"""The exec request: the same in every login shell (bash, zsh, fish, csh)."""
READ_SIZE = 1 << 16


class RemoteShell:
    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        self.url = remote.url
        self.token = f"runctl-{secrets.token_hex(8)}"
        self._proc: Process | None = None
        self._last_exchange = 0.0
        self.round_trip_seen: float | None = None
        """The shortest wait, over the requests so far, for an answer's opening line, which
        the driver prints before it runs the script: a round trip, free with every request
        after the first (that one waits for the login shell). None before any such request."""
        self._buf = bytearray()
        self._lock = asyncio.Lock()

    async def run(self, script: str, what: str) -> bytes:
        """Run ``script`` (stdin: /dev/null); return its stdout or raise a typed error."""
        async with self._lock:
            try:
                sent = time.monotonic()
                timed = self._proc is not None and self.remote.interactive
                if self._proc is None:
                    await self._start(script, what)  # the first script rides along with the driver
                else:
                    await self._send(scripts.session_request("step", self.token, script), what)
                if not self.remote.interactive:
                    assert self._proc is not None
                    self._proc.stdin.write_eof()  # nothing else comes: the command may start
                out, status, err = await self._answer(what, sent if timed else None)
                self._last_exchange = time.monotonic() - sent
                if not self.remote.interactive:
                    self._abandon()  # that command is over; the next script starts another
            except BaseException:
                self._abandon()  # e.g. cancelled mid-answer: never read a stale answer later
                raise
        if status != 0:
            raise scripts.remote_error(what, status, err.decode(errors="replace"))
        return out

    async def round_trip(self) -> float:
        """Seconds for one empty script there and back: the link's latency as this
        transport sees it (a tunnel through a local port included). Timed from the send,
        so waiting for another script to finish first does not count."""
        await self.run(":", "measuring the link")
        return self._last_exchange

    async def run_last(self, script: str, what: str, feed: Callable[[Any], Awaitable[None]]) -> None:
        """Run ``script`` reading what ``feed`` writes to the channel (up to EOF); the
        shell then exits. A failure of the script is raised as a typed remote error."""
        async with self._lock:
            if self._proc is None:
                await self._start(":", "starting a remote shell")
                if self.remote.interactive:  # else the answer comes with the last one's
                    await self._answer("starting a remote shell")
            proc = self._proc
            assert proc is not None
            await self._send(scripts.session_request("last", self.token, script), what)
            sent_ok = False
            try:
                await feed(proc.stdin)
                proc.stdin.write_eof()
                sent_ok = True
            except self.remote.io_errors:
                pass  # the remote script went away: its status and stderr say why
            except OSError as exc:  # a local file could not be read
                self._abandon()
                raise LocalIOError(f"reading a local file failed: {exc}") from exc
            except BaseException:
                self._abandon()  # the remote tar sees a truncated stream and fails
                raise
            try:
                if not self.remote.interactive:
                    await self._answer(what)  # the driver's first (empty) script
                _, status, err = await self._answer(what)
            finally:
                self._abandon()
        if status != 0 or not sent_ok:
            raise scripts.remote_error(what, status, err.decode(errors="replace"))

    async def close(self) -> None:
        """End the shell without waiting for it (EOF makes the driver exit)."""
        if self._proc is not None:
            with contextlib.suppress(Exception):
                self._proc.stdin.write_eof()
            self._abandon()

    # -- internals -----------------------------------------------------------------

    def _abandon(self) -> None:
        proc, self._proc = self._proc, None
        self._buf.clear()
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.close()

    async def _start(self, first: str, what: str) -> None:
        driver = scripts.session_script(self.token, first)
        self._buf.clear()
        if not self.remote.interactive:
            # The driver is the command itself; stdin carries only requests (and a tar
            # stream), all there before it starts, so sh must not read its script from
            # stdin too: its read-ahead would swallow the requests.
            self._proc = await self.remote.start(driver)
            return
        self._proc = await self.remote.start(COMMAND)
        await self._send(driver.encode("utf-8", "surrogateescape"), what)

    async def _send(self, data: bytes, what: str) -> None:
        assert self._proc is not None
        try:
            self._proc.stdin.write(data)
            await self._proc.stdin.drain()
        except (OSError, *self.remote.io_errors) as exc:  # type: ignore[misc]
            await self._died(what, exc)

    async def _answer(self, what: str, sent: float | None = None) -> tuple[bytes, int, bytes]:
        """Read one answer: (stdout, exit status, stderr) of the script just sent. With
        ``sent`` (when the request went), the wait for its opening line is a round trip."""
        assert self._proc is not None
        token = self.token.encode()
        head, tail = b"\n" + token + b" ", b"\n" + token + b".\n"
        opening = token + b":\n"
        buf = self._buf
        if sent is not None and opening in buf:
            sent = None  # it came with an earlier read: when is not known
        searched = 0
        while (end := buf.find(tail, searched)) < 0:
            searched = max(0, len(buf) - len(tail))
            try:
                chunk = await self._proc.stdout.read(READ_SIZE)
            except (OSError, *self.remote.io_errors) as exc:  # type: ignore[misc]
                await self._died(what, exc)
            if not chunk:
                await self._died(what, None)
            buf += chunk
            if sent is not None and opening in buf:
                waited, sent = time.monotonic() - sent, None
                seen = self.round_trip_seen
                self.round_trip_seen = waited if seen is None else min(seen, waited)
        start = buf.rfind(head, 0, end + 1)
        if start < 0:
            await self._died(what, None)  # not our driver talking: treat as a dead shell
        opened = buf.rfind(token + b":\n", 0, start)
        # Before the opening line: what the login shell printed (a banner), never an answer.
        out = bytes(buf[opened + len(token) + 2 : start]) if opened >= 0 else bytes(buf[:start])
        status_line, _, err = bytes(buf[start + len(head) : end]).partition(b"\n")
        del buf[: end + len(tail)]
        try:
            status = int(status_line)
        except ValueError:
            status = 1
        return out, status, err

    async def _died(self, what: str, exc: BaseException | None) -> NoReturn:
        """The shell or the channel ended without answering: raise why (the transport's
        own error first: with OpenSSH a refused login ends the command like this)."""
        proc, self._proc = self._proc, None
        self._buf.clear()
        if exc is not None and not isinstance(exc, BrokenPipeError):
            raise NetworkError(f"{what}: connection to {self.url} failed: {exc}") from exc
        assert proc is not None
        try:
            status, stderr = await asyncio.wait_for(proc.wait(), 10)
        except (TimeoutError, OSError, *self.remote.io_errors) as err:  # type: ignore[misc]
            raise NetworkError(f"{what}: connection to {self.url} failed: {err}") from err
        failure = await self.remote.failure(status, stderr)
        if failure is not None:
            raise failure
        raise scripts.remote_error(what, status, stderr.decode(errors="replace"))


def request_listing(shell: RemoteShell, root: str) -> Awaitable[bytes]:
    """Ask the remote shell for the listing of ``root`` (the remote-tree store parses it).
    Here rather than in the store so a push can send it before the store has loaded."""
    # Packed over SSH only: SSM's output is text (and 24,000 characters inline).
    return shell.run(scripts.list_script(root or ".", packed=shell.remote.interactive), "listing")
