"""The README's first command (`runctl demo`) and `runctl local-s3 start|status|stop`,
each run as a user would: a real process with its own SeaweedFS."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import cli_subprocess


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "RUNCTL_")) or k == "RUNCTL_CACHE_DIR"
    }
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def test_demo_round_trips_and_verifies_every_byte(tmp_path: Path) -> None:
    result = cli_subprocess("-o", "json", "demo", env=_env(tmp_path))
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["ok"] is True
    assert doc["verified"] == doc["listed"] == doc["upload"]["files"] == doc["download"]["files"] == 501
    assert doc["upload"]["bytes"] == doc["download"]["bytes"] > 64 << 20


def test_local_s3_start_status_stop(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert json.loads(cli_subprocess("-o", "json", "local-s3", "status", env=env).out)["state"] == "stopped"
    started = cli_subprocess("local-s3", "start", env=env)
    assert started.code == 0, started.err
    exports = dict(line[len("export ") :].split("=", 1) for line in started.out.splitlines())
    try:
        assert exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        again = json.loads(cli_subprocess("-o", "json", "local-s3", "start", env=env).out)
        assert again["state"] == "already running"
        # The printed environment is all a user needs to use it.
        used = dict(env, **exports)
        (tmp_path / "f.txt").write_text("hello")
        assert cli_subprocess("s3", "upload", str(tmp_path / "f.txt"), "s3://runctl/x/", env=used).code == 0
        listed = json.loads(cli_subprocess("-o", "json", "s3", "list", "s3://runctl/x/", env=used).out)
        assert [o["key"] for o in listed["objects"]] == ["x/f.txt"]
    finally:
        stopped = cli_subprocess("local-s3", "stop", env=env)
    assert stopped.code == 0, stopped.err
    assert json.loads(cli_subprocess("-o", "json", "local-s3", "status", env=env).out)["state"] == "stopped"
    assert cli_subprocess("local-s3", "stop", env=env).code == 4  # nothing left to stop
