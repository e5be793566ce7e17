"""EC2 instance ids as targets, resolved with DescribeInstances against moto's EC2 API
(moto's EC2 is faithful; its SSM does not run commands, so SSM has its own emulator)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runctl.errors import NotFoundError
from runctl.remote.aws import AWSOptions
from runctl.remote.ec2 import Instance, describe
from runctl.remote.instances import ssh_route
from runctl.remote.target import ConnectOptions, parse_target
from tests.conftest import cli

UBUNTU_AMI = "ami-785db401"  # moto's "ubuntu/images/hvm-ssd/ubuntu-xenial-16.04-..."
AMAZON_AMI = "ami-760aaa0f"  # moto's "amzn-ami-hvm-2017.09.1..."


@pytest.fixture
def ec2(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """A botocore EC2 client on moto, and runctl pointed at it through the environment."""
    import botocore.session

    for key in [k for k in os.environ if k.startswith(("AWS_", "RUNCTL_")) and k != "RUNCTL_CACHE_DIR"]:
        monkeypatch.delenv(key)
    env = {
        "AWS_ENDPOINT_URL_EC2": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "HOME": str(tmp_path / "home"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    client = botocore.session.Session().create_client(
        "ec2", region_name="us-east-1", endpoint_url=moto_endpoint
    )
    yield client


def launch(ec2: Any, image: str = UBUNTU_AMI, key: str | None = "gpu-key") -> str:
    params: dict[str, Any] = {"ImageId": image, "MinCount": 1, "MaxCount": 1, "InstanceType": "g5.xlarge"}
    if key:
        params["KeyName"] = key
        try:
            ec2.create_key_pair(KeyName=key)
        except Exception as exc:  # already there from another test on the shared moto
            assert "Duplicate" in str(exc)
    instance_id: str = ec2.run_instances(**params)["Instances"][0]["InstanceId"]
    return instance_id


def resolve(instance_id: str) -> Instance:
    return asyncio.run(describe(instance_id, AWSOptions(region="us-east-1")))


def test_instance_id_resolves_to_host_user_and_key(ec2: Any) -> None:
    iid = launch(ec2)
    key = Path(os.environ["HOME"]) / ".ssh" / "gpu-key.pem"
    key.write_text("not really a key")
    instance = resolve(iid)
    assert instance.state == "running"
    assert instance.key_name == "gpu-key"
    assert instance.login_user == "ubuntu"
    target = parse_target(f"{iid}:/work/project")
    route = ssh_route(instance, target, ConnectOptions())
    assert not isinstance(route, Exception)
    ssh_target, opts = route
    assert ssh_target.host == (instance.public_dns or instance.public_ip)
    assert ssh_target.user == "ubuntu" and ssh_target.path == "/work/project"
    assert opts.identity == key and opts.via == "ssh"


def test_private_ip_user_and_identity_flags_win(ec2: Any, tmp_path: Path) -> None:
    iid = launch(ec2, image=AMAZON_AMI)
    instance = resolve(iid)
    assert instance.login_user == "ec2-user"
    given = tmp_path / "my-key"
    route = ssh_route(
        instance, parse_target(iid), ConnectOptions(identity=given, private_ip=True, user="trainer")
    )
    assert not isinstance(route, Exception)
    ssh_target, opts = route
    assert ssh_target.host == instance.private_ip and ssh_target.user == "trainer"
    assert opts.identity == given


def test_no_key_here_means_no_ssh_route(ec2: Any) -> None:
    instance = resolve(launch(ec2, key="absent-key"))
    route = ssh_route(instance, parse_target(instance.instance_id), ConnectOptions())
    assert isinstance(route, NotFoundError)
    assert "absent-key" in route.message


def test_stopped_instance_is_a_clear_error(ec2: Any) -> None:
    iid = launch(ec2)
    ec2.stop_instances(InstanceIds=[iid])
    result = cli("-o", "json", "exec", iid, "--via", "ssh", "--", "true")
    assert result.code == 4, result.out
    error = result.json()["error"]  # type: ignore[index]
    assert iid in error["message"] and "stopped" in error["message"]


def test_terminated_instance_is_a_clear_error(ec2: Any) -> None:
    iid = launch(ec2)
    ec2.terminate_instances(InstanceIds=[iid])
    result = cli("exec", iid, "--", "true")
    assert result.code == 4
    assert "terminated" in result.err and iid in result.err


def test_unknown_instance_id_is_exit_4(ec2: Any) -> None:
    result = cli("exec", "i-0123456789abcdef0", "--via", "ssh", "--", "true")
    assert result.code == 4, result.err
    assert "i-0123456789abcdef0" in result.err


def test_via_ssm_on_a_host_name_is_a_usage_error(ec2: Any) -> None:
    result = cli("exec", "gpu-box", "--via", "ssm", "--", "true")
    assert result.code == 2
    assert "instance id" in result.err


def test_auto_takes_ssm_when_this_machine_has_no_key(
    ec2: Any, ssm_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--via auto: the instance (moto's EC2) has a key pair whose key is not here, and SSM
    (the emulator, which manages the same id) is used instead."""
    iid = launch(ec2, key="absent-key")
    ssm_emulator.add_instance(iid)
    for key, value in ssm_emulator.env().items():
        monkeypatch.setenv(key, value)
    result = cli("-o", "json", "exec", iid, "--", "echo hello from $AWS_SSM_INSTANCE_ID")
    assert result.code == 0, result.out
    doc = result.json()
    assert doc["via"] == "ssm"  # type: ignore[index]
    assert doc["stdout"] == f"hello from {iid}\n"  # type: ignore[index]


def test_auto_names_both_reasons_when_neither_route_works(
    ec2: Any, ssm_emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    iid = launch(ec2, key="absent-key")
    for key, value in ssm_emulator.env().items():
        monkeypatch.setenv(key, value)
    result = cli("exec", iid, "--", "true")
    assert result.code == 4, result.err
    assert "absent-key" in result.err and "not managed by SSM" in result.err
