"""ACK what the SSH server sends at once: 40 ms fewer on every session a push opens.

OpenSSH's sshd turns Nagle's algorithm off only for sessions with a terminal. Without
one (every exec channel), a small packet it writes while an earlier one is still
unacknowledged waits in its kernel for our ACK, and Linux delays ACKs by up to 40 ms
in request/response traffic. After authentication sshd sends a debug and a host-key
message, then confirms our channel open: the confirmation waited for that timer on
each push (44 ms of the session open on loopback, against 2 with this; the OpenSSH
client, and rsync over it, pay it too).

So after each read the socket is told to ACK now (TCP_QUICKACK: Linux only, and not
sticky, hence per read: one cheap system call). Only asyncssh's client connections
over TCP are touched; elsewhere (a tunnel, another OS) nothing changes.
"""

from __future__ import annotations

import socket
from types import ModuleType
from typing import Any

_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
_TCP = (socket.AF_INET, socket.AF_INET6)


def install(asyncssh: ModuleType) -> None:
    """Wrap asyncssh's client connections' ``data_received`` (once per process). At class
    level: uvloop binds a protocol's ``data_received`` when the transport is made."""
    conn_class = getattr(getattr(asyncssh, "connection", None), "SSHClientConnection", None)
    received = getattr(conn_class, "data_received", None)
    if _QUICKACK is None or received is None or getattr(received, "runctl_quick_ack", False):
        return
    option = _QUICKACK

    def data_received(self: Any, data: bytes, datatype: int | None = None) -> None:
        state: dict[str, Any] | None = getattr(self, "__dict__", None)  # None: __slots__
        if state is not None:
            sock = state.get("_runctl_ack_sock")
            if sock is None:
                sock = state["_runctl_ack_sock"] = tcp_socket(self)
            if sock:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, option, 1)
                except OSError:  # closed meanwhile: nothing to ACK
                    state["_runctl_ack_sock"] = False
        received(self, data, datatype)

    data_received.runctl_quick_ack = True  # type: ignore[attr-defined]
    conn_class.data_received = data_received  # type: ignore[union-attr]


def tcp_socket(conn: Any) -> Any:
    """The connection's TCP socket, or False (a tunnel, a pipe, no transport yet)."""
    transport = getattr(conn, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock if sock is not None and sock.family in _TCP else False
