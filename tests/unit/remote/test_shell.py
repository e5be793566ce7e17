"""The remote shell driver (remote.scripts.session_script) run by a local sh: framing of
answers, stderr and exit status per script, and no read-ahead into a tar stream."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from shlex import quote

import pytest

from runctl.remote.scripts import session_request, session_script

TOKEN = "runctl-0123456789abcdef"
SHELLS = [s for s in ("sh", "dash", "bash") if shutil.which(s)]


def answer(proc: subprocess.Popen[bytes]) -> tuple[bytes, int, bytes]:
    assert proc.stdout is not None
    buf = b""
    tail = f"\n{TOKEN}.\n".encode()
    while tail not in buf:
        chunk = os.read(proc.stdout.fileno(), 65536)
        assert chunk, f"shell ended early: {buf!r}"
        buf += chunk
    head = f"\n{TOKEN} ".encode()
    out, _, rest = buf.partition(head)
    _noise, opened, out = out.partition(f"{TOKEN}:\n".encode())
    assert opened, f"no opening line: {buf!r}"
    status, _, err = rest[: -len(tail)].partition(b"\n")
    return out, int(status), err


@pytest.mark.parametrize("shell", SHELLS)
def test_steps_then_last_reads_the_rest(shell: str, tmp_path: Path) -> None:
    proc = subprocess.Popen([shell, "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=tmp_path)
    assert proc.stdin is not None
    proc.stdin.write(session_script(TOKEN, "printf 'a\\0b'; echo oops >&2; exit 3").encode())
    proc.stdin.flush()
    assert answer(proc) == (b"a\0b", 3, b"oops")
    weird = "it's $HOME `x` \\n"
    proc.stdin.write(session_request("step", TOKEN, f"printf %s {quote(weird)}; cat"))
    proc.stdin.flush()
    assert answer(proc) == (weird.encode(), 0, b"")  # a step reads /dev/null, not the channel
    # The last script reads the channel to EOF; bytes after it never reach the shell.
    data = b"streamed\n" + f"{TOKEN}\nstep\ntouch pwned\n{TOKEN}\n".encode()
    proc.stdin.write(session_request("last", TOKEN, "head -c 9 > got; exit 4") + data)
    proc.stdin.close()
    assert answer(proc) == (b"", 4, b"")
    assert proc.wait(timeout=10) == 0
    assert (tmp_path / "got").read_bytes() == b"streamed\n"
    assert not (tmp_path / "pwned").exists()
