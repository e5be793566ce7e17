"""The POSIX sh scripts the remote-tree store runs, and how their failures map to errors.

Every path is pasted through ``shlex.quote``: remote paths with spaces, quotes or ``$``
must never be interpreted by the remote shell. Scripts are fed to ``sh -s`` on stdin,
so neither the user's login shell (bash, zsh, fish) nor a command-line length limit
gets in the way.

All scripts of one push run in ONE remote ``sh -s`` (see ``session_script``): each exec
channel costs a login shell start on the remote (``.bashrc`` with conda/pyenv init is
~100-150 ms), so the listing, hashes, mtime fixes and the final tar share one.
"""

from __future__ import annotations

import posixpath
import re
import secrets
import time
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from shlex import quote

from ..errors import (
    IntegrityError,
    RemoteDiskFullError,
    RemoteError,
    RemoteNotWritableError,
    RemoteToolMissingError,
    RunctlError,
)
from . import unpack_check

LIST_MAGIC = "runctl-list"
LIST_FORMAT = r"%y %m %s %T@ %C@ %P\0%l\0"
"""A listing record (find -printf): ``<type> <mode, octal> <size> <mtime> <ctime> <path>``
and the symlink target, each ended by a NUL. The five leading fields never hold a space,
so a record is one field ahead of its target, and that field, byte for byte, can be the
key of its parse (stores.record_cache)."""

# Time::HiRes (core perl since 5.8) gives sub-second times; without it they are whole
# seconds, which the survey sees in the listing itself (no fractional ctime anywhere).
_PERL_LISTER = r"""
use strict; use File::Find; use Fcntl ":mode";
my $hr = eval { require Time::HiRes; 1 };
find({ no_chdir => 1, wanted => sub {
  my $p = $File::Find::name; return if $p eq "."; $p =~ s{^\./}{};
  my @s = $hr ? Time::HiRes::lstat($_) : lstat($_); return unless @s;
  my $m = $s[2];
  my $t = S_ISLNK($m) ? "l" : S_ISDIR($m) ? "d" : S_ISREG($m) ? "f" : "o";
  my $l = $t eq "l" ? readlink($_) : "";
  printf "%s %o %d %s %s %s\0%s\0", $t, $m & 07777, $s[7], $s[9], $s[10], $p, $l;
}}, ".");
"""

PACKAGE_MANAGER = (
    'r_pm=; for r_p in apk apt-get dnf yum zypper pacman brew pkg; do command -v "$r_p" >/dev/null 2>&1 '
    "&& { r_pm=$r_p; break; }; done"
)
"""Sets ``$r_pm`` to the remote's package manager: failure texts name it, so the hint
can say ``apk add`` on Alpine and ``apt-get install`` on Debian."""


def session_script(token: str, first: str) -> str:
    """The driver fed to ``sh -s``: run ``first`` at once, then run the scripts the client
    sends, one at a time, each as a line ``step`` or ``last``, the script's lines and a
    line holding ``token``.

    Each answer: ``<token>:\\n``, the script's stdout, then ``\\n<token> <exit status>\\n``,
    its stderr, and ``\\n<token>.\\n``. The opening line lets the client skip whatever
    the login shell printed before the driver started (a ``.bashrc`` that echoes a
    welcome banner is common on managed GPU boxes).

    A ``step`` reads /dev/null; a ``last`` script reads the rest of the channel (a tar
    stream up to EOF) and the shell exits after it, so bytes after a failed ``tar`` are
    never taken for commands. Requests are read with the ``read`` builtin, which never
    reads past the end of its line; the client sends nothing until the driver has
    answered ``first``, so the parser's own read-ahead (it reads the driver in blocks)
    cannot swallow a request either.
    """
    return f"""{{
r_nl='
'
exec 3>&1
r_step() {{
  printf '%s:\\n' {token}
  r_err=$( {{ eval "$1"
  }} 2>&1 >&3 3>&- )
  r_st=$?
  printf '\\n%s %d\\n%s\\n%s.\\n' {token} "$r_st" "$r_err" {token}
}}
r_step {quote(first)} </dev/null
while IFS= read -r r_kind; do
  r_s=
  while IFS= read -r r_line; do
    [ "$r_line" = {token} ] && break
    r_s="$r_s$r_line$r_nl"
  done
  case $r_kind in
    step) r_step "$r_s" </dev/null ;;
    last) r_step "$r_s"; exit 0 ;;
    *) exit 2 ;;
  esac
done
exit 0
}}
"""


def session_request(kind: str, token: str, script: str) -> bytes:
    """One request to the driver of ``session_script``."""
    body = script if script.endswith("\n") else script + "\n"
    return f"{kind}\n{body}{token}\n".encode("utf-8", "surrogateescape")


def list_script(root: str, sent: float | None = None, packed: bool = False) -> str:
    """One round trip: a header line, then the whole tree, by the best lister there:

    * ``gnu``: GNU find's -printf (nanoseconds; one process);
    * ``perl``: File::Find with Time::HiRes (sub-second; one process);
    * ``stat``: POSIX find ``-exec stat -c ... {} +`` (BusyBox, Alpine): records framed
      by a random token (stat -c cannot print NUL), so names with newlines survive.

    The header: ``runctl-list <lister> sent=<local time this script was made> now=<the
    remote's date> [tok=...] [tar=busybox] <tools...>``: ``sent`` and ``now`` bound the
    clock skew between the machines (the racy-file rule in codesync.compare needs it).
    A missing root is an empty listing, not an error.

    ``packed`` (and gzip there): the records follow as one gzip -1 stream, and the header
    says ``packed=gzip``. A listing runs to ~75 bytes a file (4.6 MB at 60,000 files, 0.37 s
    of a 100 Mbit/s link) and packs ~7x for 40 ms of the remote's CPU, beside its find.
    The lister's own exit status is the script's, as unpacked (POSIX sh has no pipefail:
    it is carried out of the pipeline on fd 3)."""
    sent = time.time() if sent is None else sent
    tok = f"runctl-s{secrets.token_hex(8)}"
    stat_format = f"{tok} %f %s %Y %Z|%y|%z|%n{tok}%N"
    return f"""
caps=""
for t in tar gzip openssl sha256sum shasum md5sum; do
  command -v "$t" >/dev/null 2>&1 && caps="$caps $t"
done
cd -- {quote(root)} 2>/dev/null || {{ echo "{LIST_MAGIC} missing$caps"; exit 0; }}
# BusyBox tar restores whole-second mtimes only (-ef: the same file, links followed).
if command -v busybox >/dev/null 2>&1 && [ "$(command -v tar)" -ef "$(command -v busybox)" ]; then
  caps="$caps tar=busybox"
fi
r_h="sent={sent:.6f} now=$(date +%s.%N 2>/dev/null)"
r_z=
# Tried, not only found: a BusyBox built without FEATURE_GZIP_LEVELS refuses -1.
if [ {"yes" if packed else "no"} = yes ] && gzip -1 -c </dev/null >/dev/null 2>&1; then
  r_h="$r_h packed=gzip"
  r_z=yes
fi
r_list() {{
  if [ -n "$r_z" ]; then
    {{ r_st=$( {{ {{ "$@"; echo "$?" >&3; }} | gzip -1 -c >&4; }} 3>&1 ); }} 4>&1
    exit "${{r_st:-1}}"
  fi
  exec "$@"
}}
if find . -maxdepth 0 -printf '' >/dev/null 2>&1; then
  echo "{LIST_MAGIC} gnu $r_h$caps"
  r_list find . -mindepth 1 -printf {quote(LIST_FORMAT)}
elif command -v perl >/dev/null 2>&1; then
  echo "{LIST_MAGIC} perl $r_h$caps"
  r_list perl -e {quote(_PERL_LISTER)}
elif find . -maxdepth 0 -exec stat -c '' {{}} + >/dev/null 2>&1; then
  echo "{LIST_MAGIC} stat $r_h tok={tok}$caps"
  export QUOTING_STYLE=literal  # GNU stat: %N unquoted (BusyBox has one form)
  r_list find . -mindepth 1 -exec stat -c {quote(stat_format)} {{}} +
fi
{PACKAGE_MANAGER}
r_m="needs GNU find, perl, or find -exec with stat -c"
echo "runctl: cannot list the tree: $r_m (missing: find; package manager: ${{r_pm:-unknown}})" >&2
exit 127
"""


TAR_PRESENT = (
    f"command -v tar >/dev/null 2>&1 || {{ {PACKAGE_MANAGER}; "
    'echo "tar: not found (missing: tar; package manager: ${r_pm:-unknown})" >&2; exit 127; }'
)
"""Fails with status 127 and the message that ``remote_error`` maps to exit 10."""


def unpack_command(decode: str | None = None) -> str:
    """Unpack a tar stream from stdin into the current directory. -p keeps modes (exec
    bits), -o never tries to chown (fails in containers), mtimes are restored by default.
    ``decode``: a command the stream goes through first (e.g. ``gzip -dc``); a broken
    stream makes tar fail, and tar's status is the pipeline's."""
    return f"{decode} | tar -x -p -o -f -" if decode else "tar -x -p -o -f -"


def tar_command(target: str, decode: str | None = None) -> str:
    """Unpack stdin into ``target``, a new staging directory that must not exist yet."""
    return f"{TAR_PRESENT}; mkdir -- {quote(target)} && cd -- {quote(target)} && {unpack_command(decode)}"


def delete_lines(paths: Iterable[str]) -> str:
    """Remove files and symlinks, then directories left empty (deepest first); a
    directory that still holds excluded files stays. Never fails (missing is fine, and
    so is a directory that is not empty)."""
    quoted = " ".join(quote(p) for p in sorted(paths, reverse=True))
    if not quoted:
        return ""
    return f"""for p in {quoted}; do
  rm -f -- "$p" 2>/dev/null || rmdir -- "$p" 2>/dev/null || :
done
"""


def delete_script(root: str, paths: Iterable[str]) -> str:
    return f"cd -- {quote(root)} || exit 0\n{delete_lines(paths)}exit 0\n"


HASHERS = (
    ("openssl", "sha256", "openssl dgst -sha256 -r"),  # ~3x coreutils' sha256sum: uses SHA-NI
    ("sha256sum", "sha256", "sha256sum"),
    ("shasum", "sha256", "shasum -a 256"),
    ("md5sum", "md5", "md5sum"),
)
"""(remote tool, algorithm, command that digests stdin and prints the hex digest first)."""
SAMPLE_DIFFERS = "~"


def pick_hasher(tools: Iterable[str]) -> tuple[str, str] | None:
    """(algorithm, remote command) of the fastest digest the remote has, from the tools
    its listing reported; None when it has none."""
    present = set(tools)
    for tool, algo, command in HASHERS:
        if tool in present:
            return algo, command
    return None


def hash_script(root: str, command: str, items: Sequence[tuple[str, str | None]], sample: int) -> str:
    """One line per (path, expected sample digest), in order, the digest first on it:
    ``SAMPLE_DIFFERS`` when the digest of the remote file's first and last ``sample``
    bytes is not the expected one (changed: no need to read it all), else the digest of
    the whole file ("-" when it cannot be read). An expected digest of None asks for the
    whole digest at once (a file of at most two samples: its sample is the whole file),
    one process per file."""
    lines = [
        f"cd -- {quote(root)} || exit 1",
        f'r_h() {{ {command} | {{ read -r r_d _; echo "$r_d"; }}; }}',
        f'r_s() {{ {{ dd if="$1" bs={sample} count=1 2>/dev/null; tail -c {sample} "$1"; }} | r_h; }}',
    ]
    for path, expected in items:
        p = quote(path)
        if expected is None:
            lines.append(f"{{ {command} < {p}; }} 2>/dev/null || echo -")
            continue
        lines.append(
            f'if [ -r {p} ] && [ "$(r_s {p})" = {quote(expected)} ]; '
            f"then {{ r_h < {p}; }} 2>/dev/null || echo -; else echo {quote(SAMPLE_DIFFERS)}; fi"
        )
    return "\n".join(lines) + "\n"


TOUCH_PROBE = "./.runctl-touch-probe/none"
"""Never exists (nor does its directory): ``touch -c`` there only parses the date."""


def touch_lines(mtimes: Sequence[tuple[str, float]]) -> str:
    """Set mtimes (files whose content matched): the next listing then sees no change.

    GNU, BSD and POSIX-2008 ``touch -d`` take ISO 8601 with nanoseconds; BusyBox's takes
    no fraction and no ``T``. One probe picks the form: ISO where it parses, else POSIX
    ``-t`` in UTC, which every touch has (whole seconds: truncated, as the remote's tar
    does; the compare knows a whole-second mtime for what it is)."""
    if not mtimes:
        return ""
    head = (
        f"r_tt=; touch -c -m -d 2001-02-03T04:05:06.5Z -- {TOUCH_PROBE} 2>/dev/null || r_tt=1\n"
        'r_t() { if [ -z "$r_tt" ]; then touch -c -m -d "$1" -- "$3"; '
        'else TZ=UTC0 touch -c -m -t "$2" -- "$3"; fi; }\n'
    )
    return head + "".join(f"r_t {quote(iso_stamp(m))} {posix_stamp(m)} {quote(p)} &&\n" for p, m in mtimes)


def touch_script(root: str, mtimes: Sequence[tuple[str, float]]) -> str:
    return f"cd -- {quote(root)} || exit 1\n{touch_lines(mtimes)}:\n"


def _split(mtime: float) -> tuple[int, int]:
    """(whole seconds, nanoseconds) of an mtime, rounded to the nanosecond."""
    whole = int(mtime // 1)
    frac = round((mtime - whole) * 1e9)
    return (whole + 1, frac - 1_000_000_000) if frac >= 1_000_000_000 else (whole, frac)


def iso_stamp(mtime: float) -> str:
    """ISO 8601 with nanoseconds and Z: accepted by GNU, BSD and POSIX ``touch -d``."""
    whole, frac = _split(mtime)
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def posix_stamp(mtime: float) -> str:
    """``touch -t`` form, ``CCYYMMDDhhmm.SS`` (read in UTC with ``TZ=UTC0``): the whole
    seconds of ``iso_stamp``'s time."""
    return datetime.fromtimestamp(_split(mtime)[0], UTC).strftime("%Y%m%d%H%M.%S")


def swap_script(root: str, staging: str, old: str, keep: Sequence[str]) -> str:
    """Put a fully unpacked staging tree in place of ``root`` with two renames, then move
    back what must survive (excluded paths such as outputs/, checkpoints/)."""
    moves = "\n".join(
        f"  if [ -e {quote(old + '/' + k)} ] || [ -L {quote(old + '/' + k)} ]; then "
        f"mkdir -p -- {quote(posixpath.dirname(root + '/' + k))} && "
        f"mv -- {quote(old + '/' + k)} {quote(root + '/' + k)} || exit 1; fi"
        for k in keep
    )
    return f"""set -e
if [ -d {quote(root)} ]; then
  mv -- {quote(root)} {quote(old)}
  mv -- {quote(staging)} {quote(root)}
{moves or "  :"}
  rm -rf -- {quote(old)}
else
  mkdir -p -- {quote(posixpath.dirname(root) or ".")}
  mv -- {quote(staging)} {quote(root)}
fi
"""


def staged_tar_script(
    root: str, staging: str, old: str, keep: Sequence[str], decode: str | None = None, check: bool = False
) -> str:
    """Full mode in one script: unpack stdin into a fresh staging directory, then swap
    it in (``swap_script``); on any failure remove the staging directory. ``check``:
    the stream ends with unpack_check's fragment, run before the swap."""
    drop = f"rm -rf -- {quote(staging)}"
    parent = quote(posixpath.dirname(staging) or ".")
    verify = unpack_check.check_lines(quote(staging), drop) if check else ""
    return f"""mkdir -p -- {parent} || exit 1
( {tar_command(staging, decode)} ) || {{ r_t=$?; {drop}; exit $r_t; }}
{verify}(
{swap_script(root, staging, old, keep)}) || {{ r_t=$?; {drop}; exit $r_t; }}
"""


def remote_error(what: str, status: int | None, stderr: str) -> RunctlError:
    """Map a failed remote command to a typed error with a distinct code and a hint."""
    text = stderr.strip()
    last = text.splitlines()[-1] if text else f"exit status {status}"
    lowered = text.lower()
    message = f"{what} failed on the remote: {last}"
    if status == unpack_check.MISMATCH and unpack_check.MARK in text:
        return IntegrityError(
            f"{what}: the files unpacked on the remote are not the bytes sent; nothing was put in place",
            "Push again; if it persists, check the remote's disk and memory (dmesg).",
        )
    # GNU tar reports a short write as "Wrote only N of M bytes", without the errno.
    if "no space left" in lowered or "quota exceeded" in lowered or re.search(r"wrote only \d+ of", lowered):
        return RemoteDiskFullError(message)
    blocked = ("permission denied", "read-only file system", "not a directory", "file exists")
    if any(s in lowered for s in blocked):  # "file exists": a file where a directory must go
        return RemoteNotWritableError(message)
    if status == 127 or "not found" in lowered:
        return RemoteToolMissingError(message, install_hint(text))
    return RemoteError(message, "Run the command with -v, or check the remote machine's logs.")


_PACKAGES = {"find": "findutils", "stat": "coreutils", "sha256sum": "coreutils", "md5sum": "coreutils"}
"""Package of a tool where it is not the tool's own name (the same on Debian and Alpine)."""
_INSTALL = {
    "apk": "apk add",
    "apt-get": "apt-get install",
    "dnf": "dnf install",
    "yum": "yum install",
    "zypper": "zypper install",
    "pacman": "pacman -S",
    "brew": "brew install",
    "pkg": "pkg install",
}


def install_hint(stderr: str) -> str:
    """How to install what a remote script found missing: the tool from its message
    (``missing: find``, or a shell's ``tar: not found``), the command from the package
    manager the script saw there (else both apt-get and apk, as fitting)."""
    named = re.search(r"missing: ([\w.+-]+)", stderr) or re.search(
        r"([\w.+-]+): (?:command )?not found", stderr
    )
    tool = named.group(1) if named else "tar"
    package = _PACKAGES.get(tool, tool)
    what = "GNU find (or perl)" if tool == "find" else tool

    def command(install: str) -> str:
        return f"{install} {package}" + (f" or {install} perl" if tool == "find" else "")

    manager = re.search(r"package manager: ([\w-]+)", stderr)
    install = _INSTALL.get(manager.group(1)) if manager else None
    if install:
        return f"Install {what} on the remote machine: {command(install)}."
    return (
        f"Install {what} on the remote machine, e.g. {command('apt-get install')} (Debian, Ubuntu) "
        f"or {command('apk add')} (Alpine)."
    )


MOVE_BATCH = 500
"""Paths per mkdir/mv command: far below any ARG_MAX, few processes per push."""


def staged_update_script(
    root: str,
    staging: str,
    files: Sequence[str],
    dirs: Sequence[tuple[str, int]],
    decode: str | None = None,
    existing: Collection[str] = (),
    leftovers: Sequence[str] = (),
    then: str = "",
    check: bool = False,
    tar: bool = True,
) -> str:
    """Incremental mode into an existing tree: unpack stdin, whose members all lie in
    ``staging`` (a fresh directory inside ``root``, so on the same filesystem; tar
    creates it), then rename each file and
    symlink into place with ``mv`` (one command per directory and batch; rename(2)
    replaces a file whole), so an interrupted or failed push never leaves a half-written
    file under its real name. ``dirs``: directories of the batch, with their modes;
    ``existing``: directories the remote already has (no mkdir process for them);
    ``leftovers``: what interrupted pushes left behind, removed first; ``then``: more
    of the plan (mtime fixes, deletes), run only once every file is in place; ``check``:
    the stream ends with unpack_check's fragment, run before anything is moved. Without
    ``tar``, the staging directory was filled another way (over SFTP, fragment included)
    and the script only checks and moves."""
    stage = '"$r_s"/'
    steps: list[str] = []
    wanted = {d for d, _ in dirs} | {posixpath.dirname(f) for f in files}
    made = sorted(d for d in wanted if d and d not in existing)
    for i in range(0, len(made), MOVE_BATCH):
        steps.append("mkdir -p -- " + " ".join(quote(d) for d in made[i : i + MOVE_BATCH]))
    by_mode: dict[int, list[str]] = {}
    for d, mode in dirs:
        by_mode.setdefault(mode & 0o7777, []).append(d)
    for mode, group in sorted(by_mode.items()):
        for i in range(0, len(group), MOVE_BATCH):
            steps.append(f"chmod {mode:o} -- " + " ".join(quote(d) for d in group[i : i + MOVE_BATCH]))
    by_dir: dict[str, list[str]] = {}
    for f in files:
        by_dir.setdefault(posixpath.dirname(f), []).append(f)
    for folder, group in sorted(by_dir.items()):
        dest = quote(folder + "/") if folder else "./"
        for i in range(0, len(group), MOVE_BATCH):
            sources = " ".join(stage + quote(f) for f in group[i : i + MOVE_BATCH])
            steps.append(f"mv -f -- {sources} {dest}")
    drop = 'rm -rf -- "$r_s"'
    body = " &&\n  ".join(steps) if steps else ":"
    clean = f"rm -rf -- {' '.join(quote(p) for p in leftovers)}\n" if leftovers else ""
    verify = unpack_check.check_lines('"$r_s"', drop) if check else ""
    unpack = f"{TAR_PRESENT}\n{unpack_command(decode)} || {{ r_t=$?; {drop}; exit $r_t; }}\n" if tar else ""
    return f"""cd -- {quote(root)} || exit 1
{clean}r_s={quote(staging)}
{unpack}{verify}{{
  {body}
}} || {{ r_t=$?; {drop}; exit $r_t; }}
{drop}
{then}"""
