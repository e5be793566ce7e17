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


def test_import_asyncssh_is_silent() -> None:
    """Importing asyncssh prints nothing, with every warning shown: cryptography 47 and
    later deprecate DSA, and asyncssh's modules name its types (one warning a line)."""
    code = "from runctl.remote.asyncssh_remote import import_asyncssh; import_asyncssh()"
    done = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_find_liboqs_looks_in_library_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runctl.remote.asyncssh_remote import _find_liboqs

    (tmp_path / "libfoo.so").touch()
    (tmp_path / "liboqs.so.5").touch()
    monkeypatch.setenv("LD_LIBRARY_PATH", f"/nonexistent:{tmp_path}")
    assert _find_liboqs() == str(tmp_path / "liboqs.so.5")


@pytest.mark.parametrize(
    ("text", "host", "path", "user", "instance"),
    [
        ("gpu1", "gpu1", ".", None, None),
        ("ubuntu@gpu1", "gpu1", ".", "ubuntu", None),
        ("gpu1:/work", "gpu1", "/work", None, None),
        ("i-0abc1234", "i-0abc1234", ".", None, "i-0abc1234"),
        ("i-0123456789abcdef0:/data", "i-0123456789abcdef0", "/data", None, "i-0123456789abcdef0"),
        ("ec2-user@i-0123456789abcdef0", "i-0123456789abcdef0", ".", "ec2-user", "i-0123456789abcdef0"),
        ("i-0abc123", "i-0abc123", ".", None, None),  # 7 hex digits: a host name, not an id
        ("ssh://me@h:2222/x", "h", "/x", "me", None),
    ],
)
def test_parse_target(text: str, host: str, path: str, user: str | None, instance: str | None) -> None:
    from runctl.remote.target import parse_target

    target = parse_target(text)
    assert (target.host, target.path, target.user, target.instance_id) == (host, path, user, instance)


@pytest.mark.parametrize("bad", ["", "-x", "a/b"])
def test_parse_target_refuses(bad: str) -> None:
    from runctl.remote.target import parse_target

    with pytest.raises(UsageError):
        parse_target(bad)


def test_command_line_quotes_several_arguments_and_changes_directory() -> None:
    from runctl.remote.command import command_line

    assert command_line(["echo $HOME && ls"], ".") == "echo $HOME && ls"
    assert command_line(["echo", "a b", "$x"], ".") == "echo 'a b' '$x'"
    assert command_line(["pwd"], "/my dir") == "cd -- '/my dir' && pwd"
    with pytest.raises(UsageError):
        command_line([], ".")


@pytest.mark.parametrize("dest", ["gpu1:/work/x\ntouch y", "gpu1:a\rb", "ssh://gpu1/a%0Ab", "gpu1:a\0b"])
def test_parse_dest_refuses_control_characters_in_the_path(dest: str) -> None:
    from runctl.remote.target import parse_dest

    with pytest.raises(UsageError, match="holds a"):
        parse_dest(dest)
