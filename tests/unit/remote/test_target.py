"""DEST parsing and the asyncssh import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runctl.errors import UsageError
from runctl.remote.target import parse_dest


def test_parse_dest() -> None:
    t = parse_dest("gpu1:proj")
    assert (t.host, t.path, t.user, t.port) == ("gpu1", "proj", None, None)
    t = parse_dest("me@gpu1:~/a b/$x")
    assert (t.host, t.path, t.user) == ("gpu1", "a b/$x", "me")
    assert parse_dest("gpu1:").path == "."
    t = parse_dest("ssh://me@10.0.0.5:2222/srv/code")
    assert (t.host, t.path, t.user, t.port) == ("10.0.0.5", "/srv/code", "me", 2222)
    assert parse_dest("ssh://h/~/x").path == "x"
    assert parse_dest("[::1]:p").host == "::1"
    for bad in ("just/a/path", "./a:b", "ssh:///x"):
        with pytest.raises(UsageError):
            parse_dest(bad)


def test_import_asyncssh_leaves_out_x509_only() -> None:
    """asyncssh loads without cryptography.x509, and is not left blocked for later imports."""
    code = (
        "import sys; from runctl.remote.asyncssh_remote import import_asyncssh; a = import_asyncssh(); "
        "assert 'cryptography.x509' not in sys.modules; assert a.SSHClientConnectionOptions; "
        "assert 'asyncssh.crypto.x509' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_find_liboqs_looks_in_library_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runctl.remote.asyncssh_remote import _find_liboqs

    (tmp_path / "libfoo.so").touch()
    (tmp_path / "liboqs.so.5").touch()
    monkeypatch.setenv("LD_LIBRARY_PATH", f"/nonexistent:{tmp_path}")
    assert _find_liboqs() == str(tmp_path / "liboqs.so.5")
