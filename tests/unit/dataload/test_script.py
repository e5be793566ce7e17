"""The generated sh script, without S3: its text, its quoting (run under dash and bash
against a stand-in runctl that records its argv), its tool choice and exit statuses."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runctl.dataload import exit_codes
from runctl.dataload.options import InstanceShards, LoadOptions
from runctl.dataload.script import HELPER_END, helper_source, load_script
from runctl.errors import UsageError
from runctl.filters import Shard
from runctl.settings import Settings
from tests.conftest import cli
from tests.unit.dataload.tooling import SHELLS, bare_path

WEIRD = 'sp ace/it\'s $x "q" `b` [c] {d} \u00fc\u4e2d'


def fake_runctl(bin_dir: Path, log: Path) -> None:
    exe = bin_dir / "runctl"
    exe.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "if sys.argv[1:] == ['data', 'load', '--help']:\n"
        "    sys.exit(0)\n"
        "stdin = sys.stdin.read()  # a fed script (sh -s) must not reach the tools\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:] + ([stdin] if stdin else [])) + '\\n')\n"
        "print('runctl-load files=1 bytes=2 seconds=0.1 tool=runctl')\n"
    )
    exe.chmod(0o755)


def fake_tool(bin_dir: Path, name: str) -> None:
    exe = bin_dir / name
    exe.write_text("#!/bin/sh\necho should not run >&2\nexit 99\n")
    exe.chmod(0o755)


def run(script: str, shell: str, path: str, tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    file = tmp / "load.sh"
    file.write_text(script)
    clean = {"PATH": path, "HOME": str(tmp), "TMPDIR": str(tmp), **env}
    return subprocess.run(
        [shell, str(file)], capture_output=True, text=True, env=clean, cwd=tmp, timeout=60, check=False
    )


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.parametrize(
    "options",
    [
        LoadOptions(),
        LoadOptions(tool="s5cmd", delete=True, rules=(("exclude", "*.tmp"),)),
        LoadOptions(tool="aws", rules=(("exclude", "data/"), ("include", "data/keep/"))),
        LoadOptions(rules=(("exclude", "[ab]*"),), endpoint_url="http://h:1", region="eu-1", concurrency=3),
    ],
)
@pytest.mark.parametrize("shard", [None, Shard(1, 3)])
@pytest.mark.parametrize("shell", SHELLS)
def test_scripts_parse_under_every_shell(options: LoadOptions, shard: Shard | None, shell: str) -> None:
    script = load_script(f"s3://bkt/{WEIRD}", f"/data/{WEIRD}", options, shard)
    assert script.startswith("#!/bin/sh\n")
    check = subprocess.run([shell, "-n"], input=script, capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("shell", SHELLS)
def test_every_value_reaches_runctl_exactly(tmp_path: Path, shell: str) -> None:
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    path = bare_path(bin_dir)
    fake_runctl(bin_dir, log)
    dest = tmp_path / f"d ir/{WEIRD}"
    rules = (("exclude", f"it's $v/{WEIRD}"), ("include", "-x*"))
    options = LoadOptions(
        tool="runctl", delete=True, rules=rules, endpoint_url="http://e:9/$x", region="r'1", concurrency=7
    )
    proc = run(load_script(f"s3://bkt/{WEIRD}", str(dest), options, Shard(2, 5)), shell, path, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "runctl-load files=1 bytes=2 seconds=0.1 tool=runctl\n"
    expected = ["data", "load", f"s3://bkt/{WEIRD}/", str(dest), "--tool", "runctl", "--shard", "2/5"]
    expected += ["--delete", f"--exclude=it's $v/{WEIRD}", "--include=-x*"]
    expected += ["--endpoint-url", "http://e:9/$x", "--region", "r'1", "--concurrency", "7"]
    assert calls(log) == [expected]
    assert dest.is_dir()  # the script creates DEST


def test_no_credentials_travel(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "AWS_ACCESS_KEY_ID": "AKIAFAKE",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t/v4l",
        "AWS_SESSION_TOKEN": "t0k",
    }
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://laptop-only:1")
    settings = Settings(profile="laptop-profile", endpoint_url="http://given:2", region="eu-west-1")
    for tool in ("auto", "s5cmd", "aws"):
        script = load_script("s3://bkt/p", "/d", LoadOptions.from_settings(settings, tool=tool), Shard(0, 2))
        for value in (*secrets.values(), "laptop-profile", "laptop-only"):
            assert value not in script
        for word in ("AWS_ACCESS_KEY", "AWS_SECRET", "AWS_SESSION_TOKEN", "--profile"):
            assert word not in script
        assert "rl_endpoint=http://given:2" in script and "rl_region=eu-west-1" in script
        assert "rl_concurrency=\n" in script  # the default (10) does not travel: s5cmd keeps its 256
    given = LoadOptions.from_settings(Settings(concurrency=64))
    assert "rl_concurrency=64" in load_script("s3://bkt/p", "/d", given)


@pytest.mark.parametrize("shell", SHELLS)
def test_one_script_picks_each_instances_shard(tmp_path: Path, shell: str) -> None:
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    path = bare_path(bin_dir)
    fake_runctl(bin_dir, log)
    table = InstanceShards.spread(["i-0aaa", "i-0bbb", "it's odd"])
    script = load_script(
        "s3://bkt/p", str(tmp_path / "d"), LoadOptions(tool="runctl"), shard_by_instance=table
    )
    for instance, shard in [("i-0aaa", "0/3"), ("i-0bbb", "1/3"), ("it's odd", "2/3")]:
        assert run(script, shell, path, tmp_path, AWS_SSM_INSTANCE_ID=instance).returncode == 0
        assert calls(log)[-1][6:8] == ["--shard", shard]
    for env in ({"AWS_SSM_INSTANCE_ID": "i-other"}, {}):
        proc = run(script, shell, path, tmp_path, **env)
        assert proc.returncode == exit_codes.NO_SHARD and "no shard for instance" in proc.stderr
        assert proc.stdout == ""
    assert len(calls(log)) == 3


def test_shard_table_validation() -> None:
    with pytest.raises(UsageError):
        InstanceShards(2, {"i-1": 2})
    with pytest.raises(UsageError):
        InstanceShards(2, {"i-1": 0}, variable="NOT A NAME")
    with pytest.raises(UsageError):
        load_script("s3://bkt/p", "/d", LoadOptions(), Shard(0, 2), InstanceShards.spread(["i-1"]))


@pytest.mark.parametrize("shell", SHELLS)
def test_missing_tools_and_python_have_their_own_statuses(tmp_path: Path, shell: str) -> None:
    path = bare_path(tmp_path / "bin")
    dest = str(tmp_path / "d")

    def status(options: LoadOptions, shard: Shard | None = None) -> tuple[int, str]:
        proc = run(load_script("s3://bkt/p", dest, options, shard), shell, path, tmp_path)
        assert proc.stdout == "" and proc.stderr.count("\n") == 1  # one line on stderr
        return proc.returncode, proc.stderr

    assert status(LoadOptions())[0] == exit_codes.NO_TOOL
    assert status(LoadOptions(tool="s5cmd"))[0] == exit_codes.TOOL_MISSING
    assert status(LoadOptions(tool="runctl"))[0] == exit_codes.TOOL_MISSING
    fake_tool(tmp_path / "bin", "s5cmd")
    code, said = status(LoadOptions(tool="s5cmd"), Shard(0, 2))
    assert code == exit_codes.NO_PYTHON and "python3 is needed" in said
    code, said = status(LoadOptions(), Shard(0, 2))  # auto: s5cmd is here but cannot shard
    assert code == exit_codes.NO_PYTHON
    code, said = status(LoadOptions(tool="s5cmd", rules=(("exclude", "[ab]*"),)))
    assert code == exit_codes.NO_PYTHON


@pytest.mark.parametrize("shell", SHELLS)
def test_destination_under_home_and_unwritable(tmp_path: Path, shell: str) -> None:
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    path = bare_path(bin_dir)
    fake_runctl(bin_dir, log)
    assert run(load_script("s3://bkt/p", "~/data set", LoadOptions()), shell, path, tmp_path).returncode == 0
    assert calls(log)[-1][3] == str(tmp_path / "data set")
    (tmp_path / "file").write_text("x")
    proc = run(
        load_script("s3://bkt/p", str(tmp_path / "file" / "sub"), LoadOptions()), shell, path, tmp_path
    )
    assert proc.returncode == exit_codes.DEST_UNWRITABLE and "cannot create" in proc.stderr


@pytest.mark.parametrize("shell", SHELLS)
def test_a_script_fed_on_stdin_runs_the_same(tmp_path: Path, shell: str) -> None:
    """SSH executors run it as ``sh -s`` with the script on stdin: no tool may eat the rest."""
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    path = bare_path(bin_dir)
    fake_runctl(bin_dir, log)
    script = load_script("s3://bkt/p", str(tmp_path / "d"), LoadOptions(), Shard(0, 2))
    script += "\necho this line must never run\n" + "# padding\n" * 2000
    for feed in ("file", "pipe"):
        clean = {"PATH": path, "HOME": str(tmp_path)}
        if feed == "file":
            (tmp_path / "s.sh").write_text(script)
            with open(tmp_path / "s.sh") as fh:
                proc = subprocess.run([shell, "-s"], stdin=fh, capture_output=True, text=True, env=clean)
        else:
            proc = subprocess.run([shell, "-s"], input=script, capture_output=True, text=True, env=clean)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "runctl-load files=1 bytes=2 seconds=0.1 tool=runctl\n"
    assert [c[-2:] for c in calls(log)] == [["--shard", "0/2"]] * 2


def test_home_must_exist_for_a_destination_under_it(tmp_path: Path) -> None:
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    path = bare_path(bin_dir)
    fake_runctl(bin_dir, log)
    file = tmp_path / "s.sh"
    file.write_text(load_script("s3://bkt/p", "~/data", LoadOptions()))
    proc = subprocess.run(
        ["dash", str(file)], capture_output=True, text=True, env={"PATH": path}, check=False
    )
    assert proc.returncode != 0 and "HOME" in proc.stderr and "absolute path" in proc.stderr
    assert not log.exists()


def test_s5cmd_cannot_take_a_prefix_with_wildcards() -> None:
    assert "rl_tools='runctl aws'" in load_script("s3://bkt/we*rd", "/d", LoadOptions())
    assert "rl_tools='runctl s5cmd aws'" in load_script("s3://bkt/we[i]{r}d", "/d", LoadOptions())
    with pytest.raises(UsageError):
        load_script("s3://bkt/we*rd", "/d", LoadOptions(tool="s5cmd"))


def test_only_the_requested_tool_and_the_helper_only_when_needed() -> None:
    plain = load_script("s3://bkt/p", "/d", LoadOptions(tool="s5cmd"))
    assert "rl_tools=s5cmd" in plain and "rl_load_aws" not in plain and HELPER_END not in plain
    assert '"$rl_verb" $rl_delete  "s3://$rl_bucket/$rl_prefix*"' in plain  # a wildcard, no --recursive
    sharded = load_script("s3://bkt/p", "/d", LoadOptions(tool="aws"), Shard(0, 4))
    assert sharded.count(HELPER_END) == 2 and "rl_aws_python=yes" in sharded
    assert f"\n{HELPER_END}\n" in sharded  # the here-document ends on a line of its own
    assert helper_source() in sharded


def test_the_helper_is_python36_code() -> None:
    source = helper_source()
    ast.parse(source, feature_version=(3, 6))
    old = Path.home() / ".pyenv" / "versions"
    for python in sorted(old.glob("3.6*/bin/python3")) if old.is_dir() else []:
        program = source.replace('__name__ == "__main__"', "False")  # define everything, run nothing
        proc = subprocess.run([str(python), "-c", program], check=False)
        assert proc.returncode == 0


def test_print_script_runs_nothing_and_json_carries_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    dest = tmp_path / "never"
    result = cli("data", "load", "s3://no-such-bucket/p", str(dest), "--print-script", "--shard", "1/2")
    assert result.code == 0 and result.out.startswith("#!/bin/sh\n") and "rl_shard_index=1" in result.out
    assert not dest.exists()
    result = cli("-o", "json", "data", "load", "s3://bkt/p", str(dest), "--print-script", "--tool", "aws")
    doc = result.json()
    assert isinstance(doc, dict) and doc["ok"] and doc["command"] == "data load"
    assert doc["script"].startswith("#!/bin/sh") and doc["tool"] == "aws" and doc["source"] == "s3://bkt/p/"
    assert not dest.exists()


@pytest.mark.parametrize("shard", ["3/3", "-1/2", "a/b", "1/0"])
def test_bad_shard_is_exit_2(shard: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    result = cli("data", "load", "s3://bkt/p", str(tmp_path / "d"), f"--shard={shard}")
    assert result.code == 2 and "shard" in result.err and result.out == ""
    result = cli("-o", "json", "data", "load", "s3://bkt/p", str(tmp_path / "d"), f"--shard={shard}")
    doc = result.json()
    assert result.code == 2 and isinstance(doc, dict) and doc["error"]["code"] == "usage"
    assert not (tmp_path / "d").exists()


def test_remote_flags_parse_and_ssm_needs_instance_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    ssh = ["-F", "/dev/null", "-i", "k", "--port", "2222", "--known-hosts", "kh", "--accept-new-host-key"]
    ssh += ["--ssh-client", "openssh", "--via", "ssm"]
    for where in (["--on", "host"], ["--targets", "a,b"]):
        result = cli("data", "load", "s3://bkt/p", "/d", *where, *ssh)
        assert result.code == 2 and "instance id" in result.err
    result = cli("data", "load", "s3://bkt/p", "/d", "--on", "a", "--targets", "b")
    assert result.code == 2  # one or the other


def test_relative_and_dash_destinations() -> None:
    assert "rl_dest=./-odd" in load_script("s3://bkt/p", "-odd", LoadOptions())
    assert "rl_dest=data" in load_script("s3://bkt/p", "data/", LoadOptions())
    assert "rl_dest=/" in load_script("s3://bkt/", "/", LoadOptions())
    assert os.sep == "/"


REPORT_KEYS = [
    ("pre\\fix/a b/c.bin", 5, True),
    ("pre\\fix/d/e", 7, True),
    ("pre\\fix/d/", 0, False),  # a marker
    ("pre\\fix/./d/e", 7, False),
    ("pre\\fix/d//e", 7, False),
    ("pre\\fix/../x", 1, False),
    ("pre\\fix/missing", 9, False),
    ("pre\\fix/dir", 3, False),  # DEST holds a directory of that name
    ("other/d/e", 4, False),  # not under the prefix: DEST/other/d/e does not exist
    ("pre\\fix/" + "\u00fc\u4e2d $x", 11, True),
    ("pre\\fix/big", 2**40, True),
]


def report_script(all_selected: bool) -> str:
    """The report functions alone, on a listing in the aws form (keys with the prefix)."""
    from runctl.dataload import script

    common = script._COMMON
    body = common[common.index("rl_have()") :]
    return "\n".join(
        [
            "set -u",
            "rl_tool=aws rl_started=$(date +%s) rl_tmp=tmp rl_dest=dest",
            f"rl_all_selected={'yes' if all_selected else 'no'}",
            "rl_selected() { return 0; }",
            body.replace("trap rl_cleanup EXIT", ""),
            "rl_report keys 'pre\\fix/'",
        ]
    )


@pytest.mark.parametrize("shell", [*SHELLS, *(["busybox"] if shutil.which("busybox") else [])])
def test_the_awk_count_and_the_sh_loop_agree(tmp_path: Path, shell: str) -> None:
    """No rule: DEST's files are counted by one awk pass over find's list; with rules (or
    without awk), by the sh loop. Both leave out the same names. Under BusyBox its own
    sh, awk and find do it."""
    (tmp_path / "tmp").mkdir()
    dest = tmp_path / "dest"
    (dest / "dir").mkdir(parents=True)
    (dest / "d").mkdir()
    (dest / "x").write_text("")  # what ../x would name, were it not refused
    lines = []
    for key, size, counted in REPORT_KEYS:
        lines.append(f"{size} {key}")
        rel = key.split("/", 1)[1]
        if counted and not (dest / rel).exists():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_text("x")
    (dest / "d" / "e").write_text("x")  # the file './d/e' and 'd//e' would name
    (tmp_path / "keys").write_text("\n".join(lines) + "\n")
    want = [k for k in REPORT_KEYS if k[2]]
    expected = f"files={len(want)} bytes={sum(k[1] for k in want)}"
    argv = [shutil.which("busybox") or "busybox", "sh"] if shell == "busybox" else [shell]
    tools = tmp_path / ("bb" if shell == "busybox" else "bin")
    if shell == "busybox":
        tools.mkdir()
        for name in ("sh", "awk", "find", "date", "rm", "mkdir", "mktemp", "cat", "sed", "grep"):
            (tools / name).symlink_to(shutil.which("busybox") or "")
        with_awk = str(tools)
    else:
        with_awk = bare_path(tools)
    without_awk = bare_path(tmp_path / "no-awk")
    (tmp_path / "no-awk" / "awk").unlink()
    outs = []
    for all_selected, path in ((True, with_awk), (False, with_awk), (True, without_awk)):
        if shell == "busybox" and path == without_awk:
            continue
        (tmp_path / "r.sh").write_text(report_script(all_selected))
        proc = subprocess.run(
            [*argv, "r.sh"], capture_output=True, text=True, cwd=tmp_path, env={"PATH": path}, timeout=60
        )
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        outs.append(proc.stdout)
    assert all(expected in out for out in outs), (expected, outs)


def fake_s5cmd(bin_dir: Path, log: Path) -> None:
    """An s5cmd whose listing takes a second: its log says when each call ran."""
    exe = bin_dir / "s5cmd"
    exe.write_text(
        "#!/bin/sh\n"
        "for a; do case $a in ls|cp|sync) verb=$a ;; esac; dest=$a; done\n"
        f'echo "start $verb" >>{log}\n'
        'if [ "$verb" = ls ]; then sleep 1; echo "2024/01/01 00:00:00         5  a.txt"; fi\n'
        'if [ "$verb" != ls ]; then printf hello >"${dest%/}/a.txt"; fi\n'
        f'echo "end $verb" >>{log}\n'
    )
    exe.chmod(0o755)


@pytest.mark.parametrize("delete", [False, True])
def test_the_listing_runs_beside_the_fetch_unless_the_fetch_deletes(tmp_path: Path, delete: bool) -> None:
    """The report's listing costs a request per 1,000 keys: without --delete it overlaps
    the fetch; with --delete it comes first, so an empty prefix fails before a sync that
    would empty DEST."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    path = bare_path(bin_dir, "sleep")
    fake_s5cmd(bin_dir, log)
    (tmp_path / "dest").mkdir()
    script = load_script("s3://bucket/p/", str(tmp_path / "dest"), LoadOptions(tool="s5cmd", delete=delete))
    proc = run(script, "dash", path, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "files=1 bytes=5" in proc.stdout
    events = log.read_text().split("\n")
    fetch = "sync" if delete else "cp"
    if delete:
        assert events.index("end ls") < events.index(f"start {fetch}"), events
    else:
        assert events.index(f"start {fetch}") < events.index("end ls"), events


def logging_runctl(bin_dir: Path, log: Path, *, knows_load: bool, status: int = 0, via: str = "exe") -> None:
    """A runctl that logs every call; without ``knows_load`` it has no `data load` (an old
    runctl, or another program of that name): every call is a usage error, exit 2.

    ``via="module"``: no runctl executable but a ``python3`` that has the module (its
    ``-c`` calls are logged as ``["-c"]``); without ``knows_load`` its module is broken
    (exit 1, as an import error does)."""
    unknown = 2 if via == "exe" else 1
    module = via == "module"
    exe = bin_dir / ("python3" if module else "runctl")
    exe.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        "args = sys.argv[1:]\n"
        f"if {module} and args[:1] == ['-c']:\n"
        f"    open({str(log)!r}, 'a').write(json.dumps(['-c']) + '\\n')\n"
        "    sys.exit(0)  # the module is there\n"
        f"if {module}:\n"
        "    assert args[:2] == ['-m', 'runctl'], args\n"
        "    args = args[2:]\n"
        f"open({str(log)!r}, 'a').write(json.dumps(args) + '\\n')\n"
        f"if not {knows_load}:\n"
        "    sys.stderr.write(\"runctl: error: argument command: invalid choice: 'data'\\n\")\n"
        f"    sys.exit({unknown})\n"
        "if args[-1] == '--help':\n"
        "    sys.exit(0)\n"
        f"if {status}:\n"
        "    sys.stderr.write('error: a usage error of the load itself\\n')\n"
        f"    sys.exit({status})\n"
        "print('runctl-load files=1 bytes=2 seconds=0.1 tool=runctl')\n"
    )
    exe.chmod(0o755)


@pytest.mark.parametrize("via", ["exe", "module"])
@pytest.mark.parametrize("shell", SHELLS)
def test_a_runctl_found_is_not_asked_for_help_first(tmp_path: Path, shell: str, via: str) -> None:
    """The probe cost runctl's start on every load: the load is run straight away. A
    python3 is asked only whether it can find the module (no runctl import)."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    path = bare_path(bin_dir)
    logging_runctl(bin_dir, log, knows_load=True, via=via)
    proc = run(load_script("s3://bucket/p/", str(tmp_path / "d"), LoadOptions()), shell, path, tmp_path)
    assert proc.returncode == 0, proc.stderr
    found = [["-c"]] if via == "module" else []
    assert [c[:2] for c in calls(log)] == [*found, ["data", "load"]] and "--help" not in calls(log)[-1]


@pytest.mark.parametrize("via", ["exe", "module"])
@pytest.mark.parametrize("shell", SHELLS)
def test_a_runctl_without_data_load_gives_way_to_the_next_tool(tmp_path: Path, shell: str, via: str) -> None:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    path = bare_path(bin_dir, "sleep")
    logging_runctl(bin_dir, log, knows_load=False, via=via)
    fake_s5cmd(bin_dir, tmp_path / "s5cmd.log")
    (tmp_path / "d").mkdir()
    proc = run(load_script("s3://bucket/p/", str(tmp_path / "d"), LoadOptions()), shell, path, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "tool=s5cmd" in proc.stdout and 'has no working "data load"; trying the next tool' in proc.stderr
    assert ("python3 -m runctl" in proc.stderr) == (via == "module")
    assert calls(log)[-1] == ["data", "load", "--help"]  # asked only once the load failed
    # --tool runctl: no other tool to go on with; the status says runctl is missing.
    proc = run(
        load_script("s3://bucket/p/", str(tmp_path / "d"), LoadOptions(tool="runctl")), shell, path, tmp_path
    )
    assert proc.returncode == exit_codes.TOOL_MISSING, proc.stderr


@pytest.mark.parametrize("shell", SHELLS)
def test_a_usage_error_of_a_runctl_with_data_load_is_its_own(tmp_path: Path, shell: str) -> None:
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    path = bare_path(bin_dir, "sleep")
    logging_runctl(bin_dir, log, knows_load=True, status=2)
    fake_s5cmd(bin_dir, tmp_path / "s5cmd.log")
    proc = run(load_script("s3://bucket/p/", str(tmp_path / "d"), LoadOptions()), shell, path, tmp_path)
    assert proc.returncode == 2 and "trying the next tool" not in proc.stderr
    assert not (tmp_path / "s5cmd.log").exists()  # no other tool ran
