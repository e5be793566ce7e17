"""Two round trips fewer in asyncssh's user authentication (60 ms over a 30 ms WAN, on
every command that reaches a remote; OpenSSH, and so rsync, pays both).

asyncssh, like OpenSSH, first sends a "none" request only to learn the server's methods,
then offers each public key without a signature and signs it once the server says it
would take it. Here the first request is already publickey (the usual and often the
only method: a server that refuses it answers with its list, as it answers "none"), and
a key held in a local file is signed straight away: signing costs microseconds, and a
wrong key is refused in the same one round trip the offer would have taken.

Keys held elsewhere are still offered first: an agent may ask the user to confirm each
use, and a security key (sk-*) wants a touch, for a key the server would refuse.

Both tweaks reach into asyncssh's private auth classes: each one checks the names it
uses and leaves asyncssh as it is when they are not there (asyncssh then behaves as
its release does; tests/integration/test_ssh_auth_round_trips.py notices that).
"""

from __future__ import annotations

from functools import cache
from types import ModuleType
from typing import Any

_FIRST_METHODS = [b"publickey", b"none"]
"""publickey first; "none" next, reached at once (no round trip) when there is no key."""


def install(asyncssh: ModuleType) -> None:
    """Sign local keys without offering them first (once per process)."""
    handlers = getattr(getattr(asyncssh, "auth", None), "_client_auth_handlers", None)
    if not isinstance(handlers, dict):
        return
    base = handlers.get(b"publickey")
    local_pair: type = getattr(getattr(asyncssh, "public_key", None), "SSHLocalKeyPair", type(None))
    if base is None or getattr(base, "runctl_signs_first", False) or local_pair is type(None):
        return
    if not all(hasattr(base, name) for name in ("_start", "_send_signed_request", "send_request")):
        return
    from asyncssh.packet import Boolean, String

    class SignsFirst(base):  # type: ignore[misc, valid-type]
        runctl_signs_first = True

        async def _start(self) -> None:
            self._keypair = keypair = await self._conn.public_key_auth_requested()
            if keypair is None:
                self._conn.try_next_auth(next_method=True)
                return
            algorithm: bytes = keypair.algorithm
            if isinstance(keypair, local_pair) and not algorithm.startswith(b"sk-"):
                await self._send_signed_request()
                return
            # An agent's or a security key's: offered first, as asyncssh does.
            await self.send_request(Boolean(False), String(algorithm), String(keypair.public_data))

    handlers[b"publickey"] = SignsFirst


@cache
def client_factory(asyncssh: ModuleType) -> Any:
    """An SSHClient whose connection asks for publickey first, not "none"."""

    class PublickeyFirst(asyncssh.SSHClient):  # type: ignore[misc, name-defined]
        def connection_made(self, conn: Any) -> None:
            super().connection_made(conn)
            if getattr(conn, "_auth_methods", None) == [b"none"]:
                conn._auth_methods = list(_FIRST_METHODS)

    return PublickeyFirst
