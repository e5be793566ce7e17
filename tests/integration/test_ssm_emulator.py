"""Emulated SSM: the loopback Run Command emulator (tests/ssm_emulator.py) driven by a plain
botocore ``ssm`` client, as runctl's SSM client will drive it. Every script really runs."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from tests.conftest import S3Server, botocore_client
from tests.ssm_emulator import SSMEmulator, process_alive

pytestmark = pytest.mark.integration

TERMINAL = {"Success", "Failed", "TimedOut", "Cancelled"}
ISO_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def send(client: Any, instance_ids: list[str], commands: list[str], **extra: Any) -> str:
    params: dict[str, list[str]] = {"commands": commands}
    params.update(extra.pop("params", {}))
    reply = client.send_command(
        InstanceIds=instance_ids, DocumentName="AWS-RunShellScript", Parameters=params, **extra
    )
    command_id: str = reply["Command"]["CommandId"]
    return command_id


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response["Error"]["Code"])


def get(client: Any, command_id: str, instance_id: str) -> dict[str, Any] | None:
    """GetCommandInvocation, None while it answers InvocationDoesNotExist."""
    try:
        reply: dict[str, Any] = client.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "InvocationDoesNotExist":
            return None
        raise
    return reply


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(interval)


def wait_terminal(client: Any, command_id: str, instance_id: str, timeout: float = 10.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        reply = get(client, command_id, instance_id)
        return reply if reply is not None and reply["Status"] in TERMINAL else None

    result: dict[str, Any] = wait_for(done, timeout)
    return result


def test_emulated_ssm_send_runs_script_and_reports_success(ssm_emulator: SSMEmulator) -> None:
    ssm_emulator.delivery_delay = 0.4
    instance = ssm_emulator.add_instance()
    client = ssm_emulator.client()
    reply = client.send_command(
        InstanceIds=[instance.instance_id],
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": ["echo hello from $AWS_SSM_INSTANCE_ID", "sleep 0.5", "echo bye"]},
        Comment="smoke",
    )
    command = reply["Command"]
    command_id = command["CommandId"]
    assert re.fullmatch(r"[0-9a-f-]{36}", command_id)
    assert (command["Status"], command["StatusDetails"]) == ("Pending", "Pending")
    assert command["InstanceIds"] == [instance.instance_id]
    assert (command["MaxConcurrency"], command["MaxErrors"], command["TargetCount"]) == ("50", "0", 1)
    # ExpiresAfter is the total timeout: delivery timeout (3600) + execution timeout (3600).
    expires = (command["ExpiresAfter"] - command["RequestedDateTime"]).total_seconds()
    assert expires == pytest.approx(7200, abs=1)

    seen: list[str] = []
    while True:
        answer = get(client, command_id, instance.instance_id)
        status = "InvocationDoesNotExist" if answer is None else answer["Status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if answer is not None and answer["Status"] in TERMINAL:
            break
        if answer is not None:
            assert answer["ResponseCode"] == -1
            assert answer["StandardOutputContent"] == ""
        time.sleep(0.05)
    assert seen == ["InvocationDoesNotExist", "Pending", "InProgress", "Success"]
    assert ssm_emulator.count("GetCommandInvocation") >= 5
    assert (answer["StatusDetails"], answer["ResponseCode"]) == ("Success", 0)
    assert answer["StandardOutputContent"] == f"hello from {instance.instance_id}\nbye\n"
    assert answer["StandardErrorContent"] == ""
    assert (answer["PluginName"], answer["DocumentName"], answer["Comment"]) == (
        "aws:runShellScript",
        "AWS-RunShellScript",
        "smoke",
    )
    assert ISO_STAMP.fullmatch(answer["ExecutionStartDateTime"])
    assert ISO_STAMP.fullmatch(answer["ExecutionEndDateTime"])
    elapsed = re.fullmatch(r"PT(\d+(?:\.\d+)?)S", answer["ExecutionElapsedTime"])
    assert elapsed and 0.5 <= float(elapsed.group(1)) < 5
    assert answer["StandardOutputUrl"] == answer["StandardErrorUrl"] == ""
    # The agent's files, where the agent puts them.
    orchestration = instance.orchestration_dir(command_id)
    assert orchestration == (
        instance.root / ".ssm/orchestration" / command_id / "awsrunShellScript/0.awsrunShellScript"
    )
    script = (orchestration / "_script.sh").read_text()
    assert script == "echo hello from $AWS_SSM_INSTANCE_ID\nsleep 0.5\necho bye\n"
    assert (orchestration / "stdout").read_text() == answer["StandardOutputContent"]
    assert ssm_emulator.calls[0][0] == "SendCommand"
    assert ssm_emulator.calls[0][1]["Comment"] == "smoke"


def test_emulated_ssm_script_environment_is_the_agents(
    ssm_emulator: SSMEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-tests-own-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "the-tests-own-token")
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "mytool").write_text("#!/bin/sh\necho mytool ran\n")
    (tools / "mytool").chmod(0o755)
    role = {
        "AWS_ACCESS_KEY_ID": "role-key",
        "AWS_SECRET_ACCESS_KEY": "role-secret",
        "AWS_SSM_REGION_NAME": "x",
    }
    instance = ssm_emulator.add_instance(path=str(tools), env=role)
    bare = ssm_emulator.add_instance(set_home=False)
    client = ssm_emulator.client()
    command_id = send(
        client,
        [instance.instance_id, bare.instance_id],
        [
            "for v in HOME PATH LANG AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN; do",
            '  eval "echo $v=\\$$v"',
            "done",
            "echo AWS_SSM_INSTANCE_ID=$AWS_SSM_INSTANCE_ID AWS_SSM_REGION_NAME=$AWS_SSM_REGION_NAME",
            "echo SSM_COMMAND_ID=$SSM_COMMAND_ID",
            "pwd",
            "command -v mytool >/dev/null && mytool",
            "command -v tar >/dev/null || echo no tar",
            "read line; echo stdin=$?",
        ],
    )
    out = wait_terminal(client, command_id, instance.instance_id)
    assert out["Status"] == "Success", out
    lines = out["StandardOutputContent"].splitlines()
    assert lines[:6] == [
        f"HOME={instance.root}",
        f"PATH={tools}",
        "LANG=C.UTF-8",
        "AWS_ACCESS_KEY_ID=role-key",
        "AWS_SECRET_ACCESS_KEY=role-secret",
        "AWS_SESSION_TOKEN=",
    ]
    # The agent's own variables win over the instance's environment.
    assert lines[6] == f"AWS_SSM_INSTANCE_ID={instance.instance_id} AWS_SSM_REGION_NAME=us-east-1"
    assert lines[7] == f"SSM_COMMAND_ID={command_id}"
    assert lines[8] == str(instance.orchestration_dir(command_id))
    assert lines[9:] == ["mytool ran", "no tar", "stdin=1"]

    bare_out = wait_terminal(client, command_id, bare.instance_id)["StandardOutputContent"].splitlines()
    assert bare_out[0] == "HOME="  # as under systemd: the real agent's scripts have no HOME
    assert bare_out[1] == "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert bare_out[3:5] == ["AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="]

    # sh -c <script>: a #! line picks the interpreter, as on a real agent.
    bash_id = send(client, [bare.instance_id], ["#!/bin/bash", 'echo "bash ${BASH_VERSINFO[0]}"'])
    bash_out = wait_terminal(client, bash_id, bare.instance_id)
    assert re.fullmatch(r"bash \d+\n", bash_out["StandardOutputContent"]), bash_out


def test_emulated_ssm_nonzero_exit_is_failed_with_its_response_code(ssm_emulator: SSMEmulator) -> None:
    instance = ssm_emulator.add_instance()
    client = ssm_emulator.client()
    command_id = send(client, [instance.instance_id], ["echo out", "echo err >&2", "exit 7"])
    out = wait_terminal(client, command_id, instance.instance_id)
    assert (out["Status"], out["StatusDetails"], out["ResponseCode"]) == ("Failed", "Failed", 7)
    assert (out["StandardOutputContent"], out["StandardErrorContent"]) == ("out\n", "err\n")
    listed = client.list_commands(CommandId=command_id)["Commands"][0]
    assert (listed["Status"], listed["ErrorCount"], listed["CompletedCount"]) == ("Failed", 1, 1)
    # A script killed by a signal: sh reports 128 + the signal.
    killed_id = send(client, [instance.instance_id], ["kill -9 $$"])
    killed = wait_terminal(client, killed_id, instance.instance_id)
    assert (killed["Status"], killed["ResponseCode"]) == ("Failed", 137)


def test_emulated_ssm_large_output_is_cut_inline_and_whole_in_s3(
    ssm_emulator: SSMEmulator, s3: S3Server
) -> None:
    instance = ssm_emulator.add_instance()
    client = ssm_emulator.client()
    prefix = s3.fresh_prefix()[len(f"s3://{s3.bucket}/") :] + "runs"
    command_id = send(
        client,
        [instance.instance_id],
        ["seq 1 20000", "seq 1 5000 >&2"],
        OutputS3BucketName=s3.bucket,
        OutputS3KeyPrefix=prefix,
    )
    full_out = "".join(f"{i}\n" for i in range(1, 20001))
    full_err = "".join(f"{i}\n" for i in range(1, 5001))
    out = wait_terminal(client, command_id, instance.instance_id)
    assert out["Status"] == "Success"
    # The agent keeps the head and marks the cut: 24,000 and 8,000 characters in all.
    assert out["StandardOutputContent"] == full_out[:23980] + "--output truncated--"
    assert out["StandardErrorContent"] == full_err[:7980] + "--output truncated--"
    key = f"{prefix}/{command_id}/{instance.instance_id}/awsrunShellScript/0.awsrunShellScript"
    assert out["StandardOutputUrl"] == f"https://s3.us-east-1.amazonaws.com/{s3.bucket}/{key}/stdout"
    assert out["StandardErrorUrl"].endswith(f"/{key}/stderr")
    s3_client = botocore_client(s3.endpoint, s3.server.access_key, s3.server.secret_key)
    stdout = s3_client.get_object(Bucket=s3.bucket, Key=f"{key}/stdout")["Body"].read().decode()
    stderr = s3_client.get_object(Bucket=s3.bucket, Key=f"{key}/stderr")["Body"].read().decode()
    assert (stdout, stderr) == (full_out, full_err)
    assert ssm_emulator.s3_upload_errors == []

    # Details: one plugin whose Output holds both streams in 2,500 bytes, cut as the agent cuts.
    plugins = wait_for(
        lambda: client.list_command_invocations(CommandId=command_id, Details=True)["CommandInvocations"]
    )[0]["CommandPlugins"]
    assert len(plugins) == 1
    plugin = plugins[0]
    assert (plugin["Name"], plugin["Status"], plugin["ResponseCode"]) == ("aws:runShellScript", "Success", 0)
    assert len(plugin["Output"]) == 2500
    assert plugin["Output"].startswith("1\n2\n3\n")
    assert "\n---Output truncated---\n----------ERROR-------\n1\n2\n" in plugin["Output"]
    assert plugin["Output"].endswith("\n---Error truncated----")
    assert (plugin["OutputS3BucketName"], plugin["OutputS3KeyPrefix"]) == (
        s3.bucket,
        f"{prefix}/{command_id}/{instance.instance_id}/awsrunShellScript",
    )
    assert plugin["StandardOutputUrl"] == out["StandardOutputUrl"]


def test_emulated_ssm_three_instances_in_one_command(ssm_emulator: SSMEmulator, s3: S3Server) -> None:
    instances = [ssm_emulator.add_instance() for _ in range(3)]
    ids = [i.instance_id for i in instances]
    client = ssm_emulator.client()
    prefix = s3.fresh_prefix()[len(f"s3://{s3.bucket}/") :].rstrip("/")
    command_id = send(
        client,
        ids,
        ['echo "I am $AWS_SSM_INSTANCE_ID"', "sleep 1", "seq 1 1000"],
        OutputS3BucketName=s3.bucket,
        OutputS3KeyPrefix=prefix,
    )
    # Eventual consistency: the first listing right after SendCommand is empty.
    assert client.list_command_invocations(CommandId=command_id)["CommandInvocations"] == []

    def all_done() -> list[dict[str, Any]] | None:
        found = client.list_command_invocations(CommandId=command_id, Details=True)["CommandInvocations"]
        return found if len(found) == 3 and all(inv["Status"] in TERMINAL for inv in found) else None

    invocations = wait_for(all_done, timeout=15)
    assert [inv["InstanceId"] for inv in invocations] == ids
    for inv in invocations:
        assert (inv["Status"], inv["StatusDetails"]) == ("Success", "Success")
        (plugin,) = inv["CommandPlugins"]
        assert plugin["Output"].startswith(f"I am {inv['InstanceId']}\n1\n2\n")
        assert len(plugin["Output"]) == 2500
        assert plugin["Output"].endswith("\n---Output truncated---")
    # They ran at the same time, each in its own process.
    starts = [inv["CommandPlugins"][0]["ResponseStartDateTime"] for inv in invocations]
    finishes = [inv["CommandPlugins"][0]["ResponseFinishDateTime"] for inv in invocations]
    assert max(starts) < min(finishes)
    # Paging.
    first = client.list_command_invocations(CommandId=command_id, MaxResults=2)
    assert len(first["CommandInvocations"]) == 2 and first["CommandInvocations"][0]["CommandPlugins"] == []
    rest = client.list_command_invocations(CommandId=command_id, MaxResults=2, NextToken=first["NextToken"])
    assert [inv["InstanceId"] for inv in rest["CommandInvocations"]] == ids[2:] and "NextToken" not in rest
    only = client.list_command_invocations(CommandId=command_id, InstanceId=ids[1])["CommandInvocations"]
    assert [inv["InstanceId"] for inv in only] == [ids[1]]
    # Each instance's stdout is in S3; the empty stderr is not uploaded (its URL is still given).
    s3_client = botocore_client(s3.endpoint, s3.server.access_key, s3.server.secret_key)
    listing = s3_client.list_objects_v2(Bucket=s3.bucket, Prefix=f"{prefix}/{command_id}/")
    keys = sorted(obj["Key"] for obj in listing["Contents"])
    assert keys == sorted(
        f"{prefix}/{command_id}/{i}/awsrunShellScript/0.awsrunShellScript/stdout" for i in ids
    )
    assert invocations[0]["StandardErrorUrl"].endswith("/stderr")
    summary = client.list_commands(CommandId=command_id)["Commands"][0]
    assert (summary["Status"], summary["TargetCount"], summary["CompletedCount"]) == ("Success", 3, 3)


def test_emulated_ssm_max_concurrency_and_max_errors(ssm_emulator: SSMEmulator) -> None:
    instances = [ssm_emulator.add_instance() for _ in range(3)]
    ids = [i.instance_id for i in instances]
    client = ssm_emulator.client()
    command_id = send(client, ids, ["sleep 0.3"], MaxConcurrency="1")
    runs = [wait_terminal(client, command_id, i) for i in ids]
    assert [r["Status"] for r in runs] == ["Success"] * 3
    # One at a time: each started after the one before had finished.
    for before, after in itertools.pairwise(runs):
        assert after["ExecutionStartDateTime"] >= before["ExecutionEndDateTime"]

    # MaxErrors 0: after the first failure the system stops sending to the others.
    failing = send(
        client, ids, [f'[ "$AWS_SSM_INSTANCE_ID" != {ids[0]} ]'], MaxConcurrency="1", MaxErrors="0"
    )
    outcome = [wait_terminal(client, failing, i) for i in ids]
    assert [(o["Status"], o["StatusDetails"]) for o in outcome] == [
        ("Failed", "Failed"),
        ("Cancelled", "Terminated"),
        ("Cancelled", "Terminated"),
    ]
    assert not instances[1].orchestration_dir(failing).exists()
    summary = client.list_commands(CommandId=failing)["Commands"][0]
    assert (summary["Status"], summary["ErrorCount"], summary["CompletedCount"]) == ("Failed", 1, 3)


def test_emulated_ssm_working_directory(ssm_emulator: SSMEmulator, tmp_path: Path) -> None:
    instance = ssm_emulator.add_instance()
    client = ssm_emulator.client()
    workdir = tmp_path / "project dir"
    workdir.mkdir()
    command_id = send(
        client,
        [instance.instance_id],
        ["pwd", "touch made-here"],
        params={"workingDirectory": [str(workdir)]},
    )
    out = wait_terminal(client, command_id, instance.instance_id)
    assert (out["Status"], out["StandardOutputContent"]) == ("Success", f"{workdir}\n")
    assert (workdir / "made-here").exists()

    missing = tmp_path / "missing"
    command_id = send(
        client, [instance.instance_id], ["echo never"], params={"workingDirectory": [str(missing)]}
    )
    out = wait_terminal(client, command_id, instance.instance_id)
    assert (out["Status"], out["ResponseCode"], out["StandardOutputContent"]) == ("Failed", 1, "")
    assert (
        out["StandardErrorContent"] == f"failed to run commands: chdir {missing}: no such file or directory"
    )


def test_emulated_ssm_execution_timeout_kills_the_process_group(ssm_emulator: SSMEmulator) -> None:
    ssm_emulator.timeout_scale = 0.1  # executionTimeout 5 (the agent's minimum) lasts 0.5 s
    instance = ssm_emulator.add_instance()
    client = ssm_emulator.client()
    started = time.monotonic()
    command_id = send(
        client,
        [instance.instance_id],
        ["echo started", "sleep 60 & echo $! > child.pid", "wait"],
        params={"executionTimeout": ["5"]},
    )
    out = wait_terminal(client, command_id, instance.instance_id)
    assert time.monotonic() - started < 4
    assert (out["Status"], out["StatusDetails"], out["ResponseCode"]) == (
        "TimedOut",
        "ExecutionTimedOut",
        137,
    )
    assert out["StandardOutputContent"] == "started\n"
    child = int((instance.orchestration_dir(command_id) / "child.pid").read_text())
    wait_for(lambda: not process_alive(child), timeout=3)
    summary = client.list_commands(CommandId=command_id)["Commands"][0]
    assert (summary["Status"], summary["ErrorCount"]) == ("TimedOut", 1)

    # The agent replaces an executionTimeout under 5 s by its default, 3600; ExpiresAfter shows it.
    reply = client.send_command(
        InstanceIds=[instance.instance_id],
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": ["true"], "executionTimeout": ["2"]},
        TimeoutSeconds=30,
    )["Command"]
    total = (reply["ExpiresAfter"] - reply["RequestedDateTime"]).total_seconds()
    assert total == pytest.approx((30 + 3600) * 0.1, abs=0.5)
    # The document's pattern is checked by the service.
    with pytest.raises(botocore.exceptions.ClientError) as bad:
        send(client, [instance.instance_id], ["true"], params={"executionTimeout": ["0"]})
    assert error_code(bad.value) == "InvalidParameters"


def test_emulated_ssm_background_child_holding_stdout_keeps_it_running(ssm_emulator: SSMEmulator) -> None:
    instance = ssm_emulator.add_instance()
    client = ssm_emulator.client()
    started = time.monotonic()
    command_id = send(client, [instance.instance_id], ["(sleep 1; echo late) &", "echo early"])
    time.sleep(0.6)
    assert wait_for(lambda: get(client, command_id, instance.instance_id))["Status"] == "InProgress"
    out = wait_terminal(client, command_id, instance.instance_id)
    assert time.monotonic() - started >= 1
    assert (out["Status"], out["StandardOutputContent"]) == ("Success", "early\nlate\n")


def test_emulated_ssm_cancel_kills_the_running_script(ssm_emulator: SSMEmulator) -> None:
    ssm_emulator.cancel_delay = 0.5
    instance = ssm_emulator.add_instance()
    client = ssm_emulator.client()
    command_id = send(
        client,
        [instance.instance_id],
        ["echo $$ > shell.pid", "sleep 60 & echo $! > child.pid", "echo up", "wait"],
    )
    orchestration = instance.orchestration_dir(command_id)
    wait_for(lambda: (orchestration / "child.pid").exists() and (orchestration / "child.pid").read_text())
    shell, child = (int((orchestration / f"{n}.pid").read_text()) for n in ("shell", "child"))
    assert process_alive(shell) and process_alive(child)
    assert wait_for(lambda: get(client, command_id, instance.instance_id))["Status"] == "InProgress"

    client.cancel_command(CommandId=command_id)
    cancelling = get(client, command_id, instance.instance_id)
    assert cancelling is not None and cancelling["Status"] == "Cancelling"
    details = wait_for(
        lambda: client.list_command_invocations(CommandId=command_id, Details=True)["CommandInvocations"]
    )
    assert details[0]["Status"] == "Cancelling"
    assert details[0]["CommandPlugins"][0]["Status"] == "InProgress"  # plugins have no Cancelling
    assert client.list_commands(CommandId=command_id)["Commands"][0]["Status"] == "Cancelling"

    out = wait_terminal(client, command_id, instance.instance_id)
    assert (out["Status"], out["StatusDetails"], out["ResponseCode"]) == ("Cancelled", "Cancelled", 137)
    assert out["StandardOutputContent"] == "up\n"
    wait_for(lambda: not process_alive(shell) and not process_alive(child), timeout=3)
    assert client.list_commands(CommandId=command_id)["Commands"][0]["Status"] == "Cancelled"

    # An invocation not yet delivered is cancelled at once; it never runs.
    offline = ssm_emulator.add_instance(online=False)
    pending_id = send(client, [offline.instance_id], ["echo never"])
    client.cancel_command(CommandId=pending_id, InstanceIds=[offline.instance_id])
    out = wait_terminal(client, pending_id, offline.instance_id)
    assert (out["Status"], out["ResponseCode"], out["ExecutionStartDateTime"]) == ("Cancelled", -1, "")
    offline.online = True
    time.sleep(0.4)
    assert not offline.orchestration_dir(pending_id).exists()


def test_emulated_ssm_offline_agent_times_out_undelivered(ssm_emulator: SSMEmulator) -> None:
    # TimeoutSeconds 30 (AWS's minimum) + executionTimeout 10 = 40 s, scaled to 1.6 s.
    ssm_emulator.timeout_scale = 0.04
    late, never = ssm_emulator.add_instance(online=False), ssm_emulator.add_instance(online=False)
    client = ssm_emulator.client()
    info = client.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [never.instance_id]}]
    )
    assert info["InstanceInformationList"][0]["PingStatus"] == "ConnectionLost"
    started = time.monotonic()
    command_id = send(
        client,
        [late.instance_id, never.instance_id],
        ["echo ran"],
        params={"executionTimeout": ["10"]},
        TimeoutSeconds=30,
    )
    time.sleep(0.5)
    pending = wait_for(lambda: get(client, command_id, never.instance_id))
    assert (pending["Status"], pending["ResponseCode"]) == ("Pending", -1)
    late.online = True  # back before the delivery timeout (1.2 s): it runs
    assert wait_terminal(client, command_id, late.instance_id)["StandardOutputContent"] == "ran\n"

    out = wait_terminal(client, command_id, never.instance_id)
    assert time.monotonic() - started >= 1.5
    assert (out["Status"], out["StatusDetails"], out["ResponseCode"]) == ("TimedOut", "DeliveryTimedOut", -1)
    assert out["ExecutionStartDateTime"] == "" and out["StandardOutputContent"] == ""
    never.online = True  # too late: an expired command is never delivered
    time.sleep(0.4)
    assert not never.orchestration_dir(command_id).exists()
    summary = client.list_commands(CommandId=command_id)["Commands"][0]
    assert (summary["CompletedCount"], summary["DeliveryTimedOutCount"], summary["ErrorCount"]) == (2, 1, 0)


def test_emulated_ssm_accepts_a_delivery_timeout_under_awss_minimum(ssm_emulator: SSMEmulator) -> None:
    ssm_emulator.timeout_scale = 0.2  # 1 s + executionTimeout 5 s -> expires after 1.2 s
    instance = ssm_emulator.add_instance(online=False)
    strict = ssm_emulator.client()
    with pytest.raises(botocore.exceptions.ParamValidationError):
        send(strict, [instance.instance_id], ["true"], TimeoutSeconds=1)  # botocore knows AWS's 30
    client = ssm_emulator.client(parameter_validation=False)
    command_id = send(
        client, [instance.instance_id], ["true"], TimeoutSeconds=1, params={"executionTimeout": ["5"]}
    )
    out = wait_terminal(client, command_id, instance.instance_id, timeout=5)
    assert (out["Status"], out["StatusDetails"]) == ("TimedOut", "DeliveryTimedOut")


def test_emulated_ssm_agent_lost_mid_run_reports_when_back(ssm_emulator: SSMEmulator) -> None:
    instance = ssm_emulator.add_instance()
    client = ssm_emulator.client()
    command_id = send(client, [instance.instance_id], ["sleep 0.5", "echo finished"])
    orchestration = instance.orchestration_dir(command_id)
    wait_for(lambda: (orchestration / "_script.sh").exists())
    instance.online = False
    stdout = orchestration / "stdout"
    wait_for(lambda: stdout.exists() and stdout.read_text() == "finished\n", timeout=5)
    time.sleep(0.3)
    assert wait_for(lambda: get(client, command_id, instance.instance_id))["Status"] == "InProgress"
    instance.online = True
    out = wait_terminal(client, command_id, instance.instance_id)
    assert (out["Status"], out["StandardOutputContent"]) == ("Success", "finished\n")


def test_emulated_ssm_rejects_what_aws_rejects(ssm_emulator: SSMEmulator) -> None:
    instance = ssm_emulator.add_instance()
    client = ssm_emulator.client()

    def code_of(call: Callable[[], Any]) -> str:
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            call()
        return error_code(caught.value)

    unmanaged = "i-0123456789abcdef0"
    assert code_of(lambda: send(client, [unmanaged], ["true"])) == "InvalidInstanceId"
    assert code_of(lambda: send(client, [instance.instance_id, unmanaged], ["true"])) == "InvalidInstanceId"
    assert code_of(lambda: send(client, [instance.instance_id] * 2, ["true"])) == "DuplicateInstanceId"
    assert (
        code_of(
            lambda: client.send_command(
                InstanceIds=[instance.instance_id], DocumentName="AWS-RunPowerShellScript", Parameters={}
            )
        )
        == "InvalidDocument"
    )
    assert code_of(lambda: send(client, [instance.instance_id], [])) == "InvalidParameters"
    many = [f"i-{n:017x}" for n in range(51)]
    # botocore checks no maximum: the 51 ids reach the service, which refuses them.
    assert code_of(lambda: send(client, many, ["true"])) == "ValidationException"
    with pytest.raises(botocore.exceptions.ParamValidationError):
        send(client, [instance.instance_id], ["true"], TimeoutSeconds=29)  # but it checks minimums
    assert ssm_emulator.count("SendCommand") == 6
    assert ssm_emulator.requests("GetCommandInvocation") == []  # nothing was started
    nowhere = "00000000-0000-0000-0000-000000000000"
    assert code_of(lambda: client.get_command_invocation(CommandId=nowhere, InstanceId=unmanaged)) == (
        "InvocationDoesNotExist"
    )
    assert code_of(lambda: client.cancel_command(CommandId=nowhere)) == "InvalidCommandId"
    assert code_of(lambda: client.list_documents()) == "UnknownOperationException"
    assert ssm_emulator.requests("ListDocuments") == [{}]
    # A freshly started agent refuses sends for a while; a deregistered (Inactive) one too.
    booting = ssm_emulator.add_instance(reject_sends_for=30)
    assert code_of(lambda: send(client, [booting.instance_id], ["true"])) == "InvalidInstanceId"
    instance.ping_status = "Inactive"
    assert code_of(lambda: send(client, [instance.instance_id], ["true"])) == "InvalidInstanceId"
    # Injected faults, e.g. throttling (botocore retries it unless told not to).
    ssm_emulator.inject_error("DescribeInstanceInformation", times=1)
    assert client.describe_instance_information()["InstanceInformationList"]
    no_retry = ssm_emulator.client(retries={"total_max_attempts": 1, "mode": "standard"})
    ssm_emulator.inject_error("DescribeInstanceInformation", times=1)
    assert code_of(lambda: no_retry.describe_instance_information()) == "ThrottlingException"


def test_emulated_ssm_describe_instance_information(ssm_emulator: SSMEmulator) -> None:
    online = [ssm_emulator.add_instance() for _ in range(4)]
    offline = ssm_emulator.add_instance(online=False)
    retired = ssm_emulator.add_instance()
    retired.ping_status = "Inactive"
    gone = ssm_emulator.add_instance()
    ssm_emulator.remove_instance(gone.instance_id)
    client = ssm_emulator.client()

    everything = client.describe_instance_information()["InstanceInformationList"]
    assert len(everything) == 6
    first = everything[0]
    assert (first["InstanceId"], first["PingStatus"], first["PlatformType"]) == (
        online[0].instance_id,
        "Online",
        "Linux",
    )
    assert first["AgentVersion"] and first["PlatformName"] and first["ResourceType"] == "EC2Instance"
    assert first["IPAddress"].startswith("10.0.") and first["ComputerName"].endswith(".ec2.internal")

    wanted = [offline.instance_id, online[1].instance_id, gone.instance_id, "i-00000000000000000"]
    by_new = client.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": wanted}])
    by_old = client.describe_instance_information(
        InstanceInformationFilterList=[{"key": "InstanceIds", "valueSet": wanted}]
    )
    for reply in (by_new, by_old):
        found = {i["InstanceId"]: i["PingStatus"] for i in reply["InstanceInformationList"]}
        assert found == {offline.instance_id: "ConnectionLost", online[1].instance_id: "Online"}
    lost = client.describe_instance_information(Filters=[{"Key": "PingStatus", "Values": ["ConnectionLost"]}])
    assert [i["InstanceId"] for i in lost["InstanceInformationList"]] == [offline.instance_id]
    inactive = client.describe_instance_information(Filters=[{"Key": "PingStatus", "Values": ["Inactive"]}])
    assert [i["InstanceId"] for i in inactive["InstanceInformationList"]] == [retired.instance_id]

    offline_since = lost["InstanceInformationList"][0]["LastPingDateTime"]
    offline.online = True
    back = client.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [offline.instance_id]}]
    )
    assert back["InstanceInformationList"][0]["PingStatus"] == "Online"
    assert back["InstanceInformationList"][0]["LastPingDateTime"] >= offline_since

    pages = list(
        client.get_paginator("describe_instance_information").paginate(PaginationConfig={"PageSize": 5})
    )
    assert [len(p["InstanceInformationList"]) for p in pages] == [5, 1]
    with pytest.raises(botocore.exceptions.ClientError) as bad:
        client.describe_instance_information(Filters=[{"Key": "tag:Name", "Values": ["x"]}])
    assert error_code(bad.value) == "InvalidFilterKey"


def test_emulated_ssm_is_reachable_through_the_environment(ssm_emulator: SSMEmulator, s3: S3Server) -> None:
    """A separate process finds the emulator through ``env()`` alone, as runctl will."""
    instance = ssm_emulator.add_instance()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(s3.server.env())
    env.update(ssm_emulator.env())
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    program = (
        "import botocore.session, sys\n"
        "c = botocore.session.Session().create_client('ssm')\n"
        "print(c.meta.endpoint_url)\n"
        "r = c.describe_instance_information()\n"
        "print(r['InstanceInformationList'][0]['InstanceId'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [ssm_emulator.endpoint, instance.instance_id]
