"""`runctl exec` over emulated SSM: botocore speaks SSM's real protocol to the loopback
emulator (tests/ssm_emulator.py), which really runs each script in a sandbox."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import S3Server, cli, interrupt_when
from tests.ssm_emulator import SSMEmulator


def doc(result: Any) -> dict[str, Any]:
    value: dict[str, Any] = result.json()
    return value


def test_exec_runs_on_the_instance(ssm_env: SSMEmulator) -> None:
    box = ssm_env.add_instance()
    command = "echo $AWS_SSM_INSTANCE_ID; pwd"
    result = cli("-o", "json", "exec", box.instance_id, "--via", "ssm", "--", command)
    assert result.code == 0, result.out + result.err
    document = doc(result)
    assert document["via"] == "ssm" and document["target"] == box.instance_id
    assert document["stdout"].splitlines()[0] == box.instance_id
    assert document["truncated"] is False and document["exit_status"] == 0
    assert ssm_env.count("DescribeInstanceInformation") == 1  # pre-flight
    assert ssm_env.count("SendCommand") == 1
    assert ssm_env.requests("SendCommand")[0]["DocumentName"] == "AWS-RunShellScript"


def test_text_output_and_exit_status(ssm_env: SSMEmulator) -> None:
    box = ssm_env.add_instance()
    result = cli("exec", box.instance_id, "--via", "ssm", "--", "printf", "[%s]\\n", "a b", "x y")
    assert result.code == 0, result.err
    assert result.out == "[a b]\n[x y]\n"
    failed = cli("exec", box.instance_id, "--via", "ssm", "--", "echo oops >&2; exit 3")
    assert failed.code == 3
    assert "oops" in failed.err


def test_path_in_the_target_is_the_working_directory(ssm_env: SSMEmulator) -> None:
    box = ssm_env.add_instance()
    work = box.root / "my work"
    work.mkdir()
    result = cli("exec", f"{box.instance_id}:{work}", "--via", "ssm", "--", "pwd")
    assert result.code == 0, result.err
    assert result.out.strip() == str(work)


def test_missing_working_directory_is_not_found_and_nothing_runs(ssm_env: SSMEmulator) -> None:
    box = ssm_env.add_instance()
    marker = box.root / "ran"
    result = cli(
        "-o", "json", "exec", f"{box.instance_id}:{box.root}/absent", "--via", "ssm", "--", f"touch {marker}"
    )
    assert result.code == 4, result.out + result.err
    assert result.json()["error"]["message"].startswith("cannot enter the working directory")
    assert "runctl-no-workdir" not in result.out + result.err
    assert not marker.exists()


def test_long_output_is_reported_cut_without_an_output_location(ssm_env: SSMEmulator) -> None:
    box = ssm_env.add_instance()
    command = "i=0; while [ $i -lt 3000 ]; do echo line-$i-xxxxxxxxxxxx; i=$((i+1)); done"
    result = cli("-o", "json", "exec", box.instance_id, "--via", "ssm", "--", command)
    assert result.code == 0
    document = doc(result)
    assert document["truncated"] is True
    assert document["stdout"].startswith("line-0-x") and "--output truncated--" not in document["stdout"]
    assert 23_900 < len(document["stdout"]) <= 24_000
    text = cli("exec", box.instance_id, "--via", "ssm", "--", command)
    assert "was cut" in text.err and "--ssm-output-s3" in text.err


def test_long_output_is_whole_with_an_output_location(ssm_env: SSMEmulator, s3_env: S3Server) -> None:
    box = ssm_env.add_instance()
    command = "i=0; while [ $i -lt 3000 ]; do echo line-$i-xxxxxxxxxxxx; i=$((i+1)); done"
    where = s3_env.fresh_prefix()
    via = ("--via", "ssm", "--ssm-output-s3", where)
    result = cli("-o", "json", "exec", box.instance_id, *via, "--", command)
    assert result.code == 0, result.out
    document = doc(result)
    assert document["truncated"] is False
    lines = document["stdout"].splitlines()
    assert len(lines) == 3000 and lines[-1] == "line-2999-xxxxxxxxxxxx"
    assert ssm_env.requests("SendCommand")[0]["OutputS3BucketName"] == s3_env.bucket


def test_timeout_is_the_execution_timeout(ssm_env: SSMEmulator) -> None:
    box = ssm_env.add_instance()
    started = time.monotonic()
    result = cli("-o", "json", "exec", box.instance_id, "--via", "ssm", "--timeout", "5", "--", "sleep 30")
    assert result.code == 124, result.out
    assert "TimedOut" in doc(result)["error"]["message"]
    assert time.monotonic() - started < 25
    sent = ssm_env.requests("SendCommand")[0]
    assert sent["Parameters"]["executionTimeout"] == ["5"]


def test_timeout_below_the_agents_minimum_is_refused(ssm_env: SSMEmulator) -> None:
    box = ssm_env.add_instance()
    result = cli("exec", box.instance_id, "--via", "ssm", "--timeout", "2", "--", "true")
    assert result.code == 2
    assert "at least 5" in result.err
    assert ssm_env.count("SendCommand") == 0


def test_offline_agent_is_refused_before_sending(ssm_env: SSMEmulator) -> None:
    box = ssm_env.add_instance(online=False)
    result = cli("exec", box.instance_id, "--via", "ssm", "--", "true")
    assert result.code == 6, result.err
    assert box.instance_id in result.err and "AmazonSSMManagedInstanceCore" in result.err
    assert ssm_env.count("SendCommand") == 0


def test_unmanaged_instance_is_not_found(ssm_env: SSMEmulator) -> None:
    result = cli("-o", "json", "exec", "i-0123456789abcdef0", "--via", "ssm", "--", "true")
    assert result.code == 4
    assert "not managed by SSM" in doc(result)["error"]["message"]
    assert ssm_env.count("SendCommand") == 0


def test_throttled_polls_are_retried(ssm_env: SSMEmulator) -> None:
    box = ssm_env.add_instance()
    ssm_env.inject_error("GetCommandInvocation", "ThrottlingException", times=2)
    result = cli("exec", box.instance_id, "--via", "ssm", "--", "echo fine")
    assert result.code == 0, result.err
    assert result.out == "fine\n"


def test_ctrl_c_cancels_the_command(ssm_env: SSMEmulator) -> None:
    box = ssm_env.add_instance()
    marker = box.root / "started"
    argv = ["exec", box.instance_id, "--via", "ssm", "--", f"touch '{marker}'; sleep 60"]
    result = interrupt_when(marker, *argv)
    assert result.code == 130, result.err
    assert ssm_env.count("CancelCommand") == 1
    ssm_env.wait_idle(10)
    ssm_env.not_found_polls = 0
    [command_id] = [c["CommandId"] for c in ssm_env.requests("CancelCommand")]
    status = ssm_env.client().get_command_invocation(CommandId=command_id, InstanceId=box.instance_id)
    assert status["Status"] == "Cancelled"


def test_relative_paths_are_refused_over_ssm(ssm_env: SSMEmulator, tmp_path: Any) -> None:
    box = ssm_env.add_instance()
    result = cli("exec", f"{box.instance_id}:work", "--via", "ssm", "--", "pwd")
    assert result.code == 2
    assert "absolute" in result.err
    (tmp_path / "src").mkdir()
    pushed = cli("code", "push", str(tmp_path / "src"), f"{box.instance_id}:proj", "--via", "ssm")
    assert pushed.code == 2 and "absolute" in pushed.err
    assert ssm_env.count("SendCommand") == 0


def test_a_script_too_large_to_go_inline_is_staged(
    ssm_env: SSMEmulator, s3_env: S3Server, s3_client: Any
) -> None:
    """SSM takes at most 64 KB of parameters: a larger command travels as a staged object
    (fetched by presigned URL), or is refused with a hint when there is no staging."""
    box = ssm_env.add_instance()
    big = "x=1\n" + "# padding to make the script large\n" * 2000 + "echo big done"
    refused = cli("exec", box.instance_id, "--via", "ssm", "--", big)
    assert refused.code == 2 and "--staging" in refused.err
    assert ssm_env.count("SendCommand") == 0
    staging = s3_env.fresh_prefix()
    result = cli("exec", box.instance_id, "--via", "ssm", "--staging", staging, "--", big)
    assert result.code == 0, result.err
    assert result.out == "big done\n"
    [sent] = ssm_env.requests("SendCommand")
    assert len("\n".join(sent["Parameters"]["commands"])) < 4096
    listed = s3_client.list_objects_v2(Bucket=s3_env.bucket, Prefix=staging[len(f"s3://{s3_env.bucket}/") :])
    assert listed.get("KeyCount", 0) == 0
