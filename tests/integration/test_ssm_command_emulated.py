"""runctl.remote.ssm_command against emulated SSM: one script on many instances."""

from __future__ import annotations

import asyncio

import pytest

from runctl.remote.aws import AWSOptions
from runctl.remote.instances import ssm_runner
from runctl.remote.ssm_command import CommandSpec, Poll
from tests.ssm_emulator import SSMEmulator


def test_one_script_on_many_instances_is_one_send_per_50(ssm_env: SSMEmulator) -> None:
    ssm_env.delivery_delay = 0.05
    boxes = [ssm_env.add_instance() for _ in range(55)]
    ids = [b.instance_id for b in boxes]
    run = ssm_runner(AWSOptions(region="us-east-1"))
    run.poll = Poll(first=0.2)
    spec = CommandSpec('echo "me=$AWS_SSM_INSTANCE_ID"; [ "${AWS_SSM_INSTANCE_ID#i-0}" != x ] || exit 9')
    results = asyncio.run(run.run(ids, spec))
    assert set(results) == set(ids)
    for iid, invocation in results.items():
        assert invocation.status == "Success" and invocation.exit_status == 0, invocation  # with its stderr
        assert invocation.stdout == f"me={iid}\n".encode()
    sends = ssm_env.requests("SendCommand")
    assert [len(s["InstanceIds"]) for s in sends] == [50, 5]
    assert ssm_env.count("ListCommandInvocations") >= 2  # many instances are polled together
    assert ssm_env.count("DescribeInstanceInformation") >= 2  # pre-flight, 50 ids a call


def test_each_instance_keeps_its_own_status(ssm_env: SSMEmulator) -> None:
    good, bad = ssm_env.add_instance(), ssm_env.add_instance()
    run = ssm_runner(AWSOptions(region="us-east-1"))
    run.poll = Poll(first=0.2)
    script = f'[ "$AWS_SSM_INSTANCE_ID" = {bad.instance_id} ] && {{ echo broken >&2; exit 4; }}; echo ok'
    results = asyncio.run(run.run([good.instance_id, bad.instance_id], CommandSpec(script)))
    assert results[good.instance_id].exit_status == 0
    failed = results[bad.instance_id]
    assert failed.status == "Failed" and failed.exit_status == 4 and failed.stderr == b"broken\n"
    assert failed.error() is None  # the script's own failure, not a transport one


def test_one_offline_agent_stops_the_fan_out_before_sending(ssm_env: SSMEmulator) -> None:
    from runctl.errors import RemoteError

    up, down = ssm_env.add_instance(), ssm_env.add_instance(online=False)
    run = ssm_runner(AWSOptions(region="us-east-1"))
    with pytest.raises(RemoteError, match=down.instance_id):
        asyncio.run(run.run([up.instance_id, down.instance_id], CommandSpec("true")))
    assert ssm_env.count("SendCommand") == 0
