"""Verifying a code push's unpack on the remote, before anything takes its place.

While the tar stream is written, the bytes of its regular files are hashed in stream
order (one running digest: what was sent, padding included if a file shrank). The last
member of the stream is a shell fragment that the remote script sources once tar has
finished: it concatenates the unpacked files in the same order through the remote's
own digest command and compares the result with the digest written into it. A mismatch
stops the script before any rename or swap (exit status ``MISMATCH``, one line on
stderr), so the old tree stays whole, and runctl reports an IntegrityError.

One digest over the concatenation, not one per file: a per-file check costs a process
per file on the remote (60,000 of them at monorepo scale); ``cat`` in batches costs
one per ``BATCH`` files, whatever the shell and toolset (BusyBox included). The
fragment travels inside the stream because the digest is known only once the stream has
been read, and stdin, after the script, belongs to tar.
"""

from __future__ import annotations

import hashlib
from shlex import quote

from ..stores.local import TMP_MARK

MISMATCH = 86
"""Exit status of a remote script whose unpacked files do not match the stream."""
MARK = "runctl-verify:"
"""Opens the remote's stderr line on a mismatch (remote_error maps it)."""
NAME = f"{TMP_MARK}verify"
"""The fragment's member name, at the top of the unpacked tree (a temporary name:
listings skip it, and the script removes it)."""
BATCH = 500
"""Files per ``cat``: far below any ARG_MAX."""


class StreamDigest:
    """The running digest of the regular files of a tar stream, and their names in order."""

    def __init__(self, algo: str, command: str, base: str) -> None:
        self.algo = algo
        self.command = command
        """The remote command that digests stdin and prints the hex digest first."""
        self.base = base
        """Where the members are unpacked, as a shell word (quoted, or a variable)."""
        self.hasher = hashlib.new(algo)
        self.files: list[str] = []
        """Names of the regular files hashed, in stream order, relative to ``base``."""

    def fragment(self) -> bytes:
        """The shell fragment checking the unpacked files against this digest; its
        status is 0 only when they match (no files: the digest of nothing)."""
        lines = [f"r_want={self.hasher.hexdigest()}", f"r_got=$(cd -- {self.base} && {{"]
        for i in range(0, len(self.files), BATCH):
            names = " ".join(quote(f) for f in self.files[i : i + BATCH])
            lines.append(f"  cat -- {names} &&")
        lines.append(f"  :; }} | {self.command}) || r_got=")
        lines.append("set -- $r_got")
        lines.append('[ "${1:-}" = "$r_want" ]')
        return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def check_lines(base: str, drop: str) -> str:
    """Script lines run once tar has finished: source the fragment, remove it; on a
    mismatch, one line on stderr, ``drop`` (remove what was unpacked), exit MISMATCH."""
    fragment = f"{base}/{NAME}"
    return (
        f'. {fragment} || {{ echo "{MARK} the files unpacked on the remote are not the bytes sent" >&2; '
        f"{drop}; exit {MISMATCH}; }}\n"
        f"rm -f -- {fragment}\n"
    )
