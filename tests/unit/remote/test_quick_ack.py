"""quick_ack: every read of an asyncssh client connection asks its TCP socket to ACK now."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from runctl.remote import quick_ack

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux-only")


class _Transport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None


def _fake_asyncssh() -> tuple[SimpleNamespace, type]:
    class Conn:
        def __init__(self, sock: socket.socket) -> None:
            self._transport = _Transport(sock)
            self.got: list[tuple[bytes, int | None]] = []

        def data_received(self, data: bytes, datatype: int | None = None) -> None:
            self.got.append((data, datatype))

    return SimpleNamespace(connection=SimpleNamespace(SSHClientConnection=Conn)), Conn


@pytest.fixture
def tcp() -> Iterator[socket.socket]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as client:
            peer, _ = listener.accept()
            with peer:
                yield client


def _quickack(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK)


def test_each_read_leaves_the_socket_acking_at_once(tcp: socket.socket) -> None:
    module, conn_class = _fake_asyncssh()
    quick_ack.install(module)
    conn = conn_class(tcp)
    for chunk in (b"one", b"two"):
        tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)  # delayed ACKs, as after a write
        assert _quickack(tcp) == 0
        conn.data_received(chunk)
        assert _quickack(tcp) == 1
    assert conn.got == [(b"one", None), (b"two", None)]  # the data still reaches asyncssh


def test_other_transports_are_left_alone() -> None:
    module, conn_class = _fake_asyncssh()
    quick_ack.install(module)
    left, right = socket.socketpair()  # a unix socket: a ProxyCommand's pipe is no TCP either
    with left, right:
        conn = conn_class(left)
        conn.data_received(b"x", 1)
        conn.data_received(b"y")
        assert conn.got == [(b"x", 1), (b"y", None)]
        assert conn.__dict__["_runctl_ack_sock"] is False  # looked at once


def test_a_closed_socket_is_no_error(tcp: socket.socket) -> None:
    module, conn_class = _fake_asyncssh()
    quick_ack.install(module)
    conn = conn_class(tcp)
    conn.data_received(b"a")
    tcp.close()
    conn.data_received(b"b")  # the last bytes before a close still go to asyncssh
    assert [d for d, _ in conn.got] == [b"a", b"b"]


def test_installed_once_on_asyncssh_itself() -> None:
    from runctl.remote.asyncssh_remote import import_asyncssh

    asyncssh = import_asyncssh()
    wrapped = asyncssh.connection.SSHClientConnection.data_received
    assert wrapped.runctl_quick_ack
    quick_ack.install(asyncssh)
    assert asyncssh.connection.SSHClientConnection.data_received is wrapped  # not wrapped twice
    assert not getattr(asyncssh.connection.SSHServerConnection.data_received, "runctl_quick_ack", False)


def test_a_connection_without_an_instance_dict_still_gets_its_data(tcp: socket.socket) -> None:
    """Should asyncssh give its connections __slots__, reads pass through untouched."""

    class Slotted:
        __slots__ = ("_transport", "got")

        def __init__(self, sock: socket.socket) -> None:
            self._transport = _Transport(sock)
            self.got: list[bytes] = []

        def data_received(self, data: bytes, datatype: int | None = None) -> None:
            self.got.append(data)

    quick_ack.install(SimpleNamespace(connection=SimpleNamespace(SSHClientConnection=Slotted)))
    conn = Slotted(tcp)
    conn.data_received(b"a")
    conn.data_received(b"b")
    assert conn.got == [b"a", b"b"]
