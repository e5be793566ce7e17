"""The options of every command that reaches a remote machine (code push, exec, data
load --on/--targets): how to reach it over SSH, and, for EC2 instance ids, over which
route. One definition, so the commands cannot drift apart."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..remote.target import ConnectOptions
    from ..settings import Settings


def add_ssh_options(p: argparse.ArgumentParser) -> None:
    """-F, -i, --port, --known-hosts, --accept-new-host-key, --ssh-client."""
    p.add_argument("-F", dest="ssh_config", type=Path, metavar="SSH_CONFIG", help="ssh config file")
    p.add_argument("-i", dest="identity", type=Path, metavar="IDENTITY", help="private key file")
    p.add_argument("--port", type=int, help="ssh port (overrides the config)")
    p.add_argument("--known-hosts", type=Path, metavar="FILE", help="known_hosts file to verify against")
    p.add_argument(
        "--accept-new-host-key",
        action="store_true",
        help="trust an unknown host key on first use and add it to known_hosts",
    )
    p.add_argument(
        "--ssh-client",
        choices=["asyncssh", "openssh"],
        default=None,
        help="asyncssh (default, in-process) or openssh: the system ssh with your exact ~/.ssh/config "
        "(ProxyCommand, ControlMaster, certificates); also RUNCTL_SSH_CLIENT or config ssh_client",
    )


def add_instance_options(p: argparse.ArgumentParser) -> None:
    """--via, --user, --private-ip, --timeout, --ssm-output-s3 (EC2 instance id targets)."""
    p.add_argument(
        "--via",
        choices=["ssh", "ssm", "auto"],
        default="auto",
        help="for instance ids: ssh, ssm, or auto (ssh when the instance has an address and its key "
        "is here, else ssm)",
    )
    p.add_argument("--user", help="login user on an instance (default: from its AMI, e.g. ubuntu)")
    p.add_argument("--private-ip", action="store_true", help="reach an instance at its private address")
    p.add_argument(
        "--timeout",
        type=int,
        metavar="SECONDS",
        help="stop the command after this long (over SSM: its executionTimeout, default 3600, max 172800)",
    )
    p.add_argument(
        "--ssm-output-s3",
        metavar="S3_URL",
        help="s3://BUCKET/PREFIX for SSM's whole output (else it is cut at 24,000 characters); "
        "also config [ssm] output_s3",
    )
    p.add_argument(
        "--staging",
        metavar="S3_URL",
        help="s3://BUCKET/PREFIX where what an SSM instance must fetch is staged (a code push's tar "
        "stream, a large script) and outputs are kept until read; deleted afterwards; also config "
        "[ssm] staging",
    )


def add_remote_options(p: argparse.ArgumentParser) -> None:
    add_ssh_options(p)
    add_instance_options(p)


def connect_options(args: argparse.Namespace, settings: Settings | None) -> ConnectOptions:
    """ConnectOptions from the parsed options (and settings, for region/profile/SSM)."""
    from ..errors import UsageError
    from ..remote.aws import AWSOptions
    from ..remote.ssm_command import MAX_EXECUTION_TIMEOUT
    from ..remote.target import ConnectOptions
    from .code_cmd import ssh_client

    timeout = getattr(args, "timeout", None)
    if timeout is not None and not 1 <= timeout <= MAX_EXECUTION_TIMEOUT:
        raise UsageError(f"--timeout must be 1 to {MAX_EXECUTION_TIMEOUT} seconds, got {timeout}")
    return ConnectOptions(
        config=args.ssh_config,
        identity=args.identity,
        port=args.port,
        known_hosts=args.known_hosts,
        accept_new_host_key=args.accept_new_host_key,
        client=ssh_client(args),
        via=getattr(args, "via", "auto"),
        user=getattr(args, "user", None),
        private_ip=getattr(args, "private_ip", False),
        aws=AWSOptions(settings.profile, settings.region) if settings else AWSOptions(),
        timeout=timeout,
        ssm_output_s3=getattr(args, "ssm_output_s3", None) or (settings.ssm_output_s3 if settings else None),
        staging=getattr(args, "staging", None) or (settings.ssm_staging if settings else None),
    )
