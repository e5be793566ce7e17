"""Run the real CLI process many times and check every exit status.

An asyncio program using obstore can abort with SIGABRT (exit 134, no message) at
interpreter exit, after its work is done. Only a real process shows that, and only
some of the time, so this runs ``python -m runctl`` repeatedly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import S3Server, cli_subprocess, read_tree, write_tree


def test_every_run_exits_with_exactly_the_expected_status(s3_env: S3Server, tmp_path: Path) -> None:
    files = {f"f{i}.txt": f"file {i}\n".encode() for i in range(4)}
    files["sub/deep.bin"] = os.urandom(4096)
    src = write_tree(tmp_path / "src", files)
    url = s3_env.fresh_prefix()
    missing_bucket = "s3://runctl-exit-codes-missing/"

    runs: list[tuple[int, list[str]]] = [
        (0, ["--version"]),
        *[(0, ["s3", "upload", str(src / f"f{i}.txt"), url + "single/"]) for i in range(4)],
        (0, ["s3", "upload", str(src), url + "tree/", "--recursive"]),
        (0, ["s3", "list", url]),
        (0, ["s3", "list", url, "--recursive"]),
        (0, ["-o", "json", "s3", "list", url + "tree/", "--recursive"]),
        (0, ["s3", "download", url + "single/f0.txt", str(tmp_path / "one.txt")]),
        (0, ["s3", "download", url + "tree/", str(tmp_path / "dst"), "--recursive"]),
        (4, ["s3", "download", url + "no-such-key", str(tmp_path / "nothing")]),
        (4, ["-o", "json", "s3", "list", missing_bucket]),
        (4, ["s3", "upload", str(tmp_path / "no-such-file"), url]),
        (2, ["s3", "list", "not-an-s3-url"]),
        (2, ["s3", "upload", str(src), url]),  # a directory without --recursive
        *[(0, ["-o", "json", "s3", "list", url + "single/"]) for _ in range(5)],
    ]
    assert len(runs) >= 20

    wrong: list[str] = []
    for expected, argv in runs:
        res = cli_subprocess(*argv)
        if res.code != expected:
            wrong.append(f"{argv}: exit {res.code}, expected {expected}; stderr: {res.err[-300:]!r}")
        if "Traceback" in res.err:
            wrong.append(f"{argv}: traceback on stderr: {res.err[-300:]!r}")
        if "-o" in argv:
            doc = json.loads(res.out)
            assert doc["ok"] is (expected == 0), (argv, doc)
    assert wrong == [], "\n".join(wrong)

    # The runs really did their work.
    assert (tmp_path / "one.txt").read_bytes() == files["f0.txt"]
    assert read_tree(tmp_path / "dst") == files
    assert not (tmp_path / "nothing").exists()


def test_one_request_then_exit_many_times(s3_env: S3Server, tmp_path: Path) -> None:
    """The crash pattern: a single awaited request as the last thing before exit."""
    (tmp_path / "x.txt").write_bytes(b"x")
    url = s3_env.fresh_prefix()
    codes = [cli_subprocess("s3", "upload", str(tmp_path / "x.txt"), url, "-q").code]
    codes += [cli_subprocess("s3", "list", url, "-q").code for _ in range(8)]
    assert codes == [0] * 9
