"""Uploads that run while a training script goes on, and that the script's end cannot lose.

A ``daemon=True`` thread dies with the interpreter, half-way through a multipart upload,
and the script still exits 0. ``upload_in_background`` instead runs each upload in a
thread of its own that is *not* a daemon: the interpreter waits for it at exit, so a
script that just ends still finishes its uploads first. The handle it returns can be
waited on (``wait()``, or ``wait_for_uploads()`` for all of them). An upload that failed
and that nobody waited for is logged at exit as an error, loudly: it is data that did not
reach S3, and a script's exit status cannot say so any more.

Blocking transfers (``runctl.upload`` / ``runctl.sync``) started from any thread, a daemon
one included, are waited for at exit as well (atexit runs while daemon threads still
do), so the old pattern loses nothing that had started; it cannot help an upload whose
thread had not yet called runctl when the script ended. Nothing here survives
``os._exit``, SIGKILL or an unhandled signal.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .results import TransferResult

log = logging.getLogger("runctl")

_lock = threading.Condition()
_pending: list[PendingUpload] = []
"""Handles not yet finished, or finished with an error nobody has seen."""
_in_flight = 0
"""Blocking transfers running now, in any thread."""
_hook_installed = False


class PendingUpload:
    """An upload running in the background: ``wait()`` for its result."""

    def __init__(self, run: Callable[[], TransferResult], source: str, destination: str) -> None:
        self.source = source
        self.destination = destination
        self._run = run
        self._done = threading.Event()
        self._result: TransferResult | None = None
        self._error: BaseException | None = None
        self._seen = False
        self._thread = threading.Thread(
            target=self._work,
            name=f"runctl upload {source}",
            daemon=False,  # see the module docstring
        )

    def _start(self) -> None:
        self._thread.start()

    def _work(self) -> None:
        try:
            self._result = self._run()
        except BaseException as exc:  # kept for wait(), which raises it in the caller's thread
            self._error = exc
        finally:
            self._done.set()
            with _lock:
                if self._error is None and not (self._result is not None and self._result.failed):
                    _forget(self)
                _lock.notify_all()

    def done(self) -> bool:
        """True once the upload has finished (well or not)."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> TransferResult:
        """Block until the upload has finished; return its result, or raise its error
        (``runctl.errors``). ``TimeoutError`` if it is still running after ``timeout`` s."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"upload of {self.source} to {self.destination} still running")
        self._seen = True
        with _lock:
            _forget(self)
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    @property
    def ok(self) -> bool:
        """Finished, with every file uploaded."""
        return self.done() and self._error is None and self._result is not None and self._result.ok

    def __repr__(self) -> str:
        state = "running" if not self.done() else ("ok" if self.ok else "failed")
        return f"<PendingUpload {self.source} -> {self.destination} {state}>"

    def _loss(self) -> str | None:
        """What was lost, for the exit report (None: nothing)."""
        if self._error is not None:
            return f"{type(self._error).__name__}: {self._error}"
        if self._result is not None and self._result.failed:
            return "; ".join(f"{f.path}: {f.error}" for f in self._result.failed)
        return None


def _forget(handle: PendingUpload) -> None:
    if handle in _pending:
        _pending.remove(handle)


def upload_in_background(src: str | os.PathLike[str], dst: str, **kwargs: Any) -> PendingUpload:
    """Start ``runctl.upload(src, dst, **kwargs)`` in a background thread and return at once.

    The interpreter waits for the upload before it exits, so a script may simply end;
    ``handle.wait()`` gives its result (or raises its error) when you want it.
    """
    from . import api

    def run() -> TransferResult:
        return api.upload(src, dst, **kwargs)

    handle = PendingUpload(run, os.fspath(src), dst)
    with _lock:
        _install_hook()
        _pending.append(handle)
    handle._start()
    return handle


def wait_for_uploads(timeout: float | None = None) -> list[TransferResult]:
    """Wait for every background upload still running (and take those that failed
    unseen); return their results, in the order they were started. Raises the first
    error once all have finished, or ``TimeoutError``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _lock:
        handles = list(_pending)
    results: list[TransferResult] = []
    first: BaseException | None = None
    for handle in handles:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            results.append(handle.wait(left))
        except TimeoutError:
            raise
        except BaseException as exc:  # every handle is waited for before the first error is raised
            first = first or exc
    if first is not None:
        raise first
    return results


@contextmanager
def tracked() -> Iterator[None]:
    """Count a blocking transfer as in flight, so that interpreter exit waits for it."""
    global _in_flight
    with _lock:
        _install_hook()
        _in_flight += 1
    try:
        yield
    finally:
        with _lock:
            _in_flight -= 1
            _lock.notify_all()


def _install_hook() -> None:
    global _hook_installed
    if not _hook_installed:
        atexit.register(_at_exit)
        _hook_installed = True


def _at_exit() -> None:
    """Runs after non-daemon threads have been joined (so background uploads are done),
    while daemon threads still run: wait for blocking transfers still in flight in them,
    then report, loudly, every upload that failed and that nobody waited for."""
    with _lock:
        if _in_flight:
            log.warning("runctl: waiting for %d transfer(s) to finish before exiting", _in_flight)
        while _in_flight:
            _lock.wait()
        lost = [(h, h._loss()) for h in _pending if h.done() and not h._seen]
    for handle, what in lost:
        if what is not None:
            log.error(
                "runctl: background upload of %s to %s FAILED, not in S3: %s",
                handle.source,
                handle.destination,
                what,
            )
