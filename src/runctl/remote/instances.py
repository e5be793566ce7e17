"""Reaching an EC2 instance by its id: over SSH (address and key from EC2) or SSM.

``--via auto`` takes SSH when the instance has an address and this machine has its
key (``-i``, or ``~/.ssh/KEYNAME[.pem]``), else SSM when SSM manages it: SSH streams
and needs no S3 staging, SSM needs no open port and no key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from ..errors import NotFoundError, RunctlError, UsageError
from .aws import AWSOptions
from .ssm_command import MIN_EXECUTION_TIMEOUT, RunCommand

if TYPE_CHECKING:
    from .ec2 import Instance
    from .seam import Remote
    from .ssm_remote import SSMRemote
    from .target import ConnectOptions, Target


def ssm_runner(aws: AWSOptions) -> RunCommand:
    """Run Command with a client for ``aws`` and whole outputs read with runctl's S3 store."""
    from .aws import client

    async def read_output(bucket: str, key: str) -> bytes | None:
        from ..stores.s3 import S3Store
        from ..stores.s3_config import S3Options

        store = S3Store(bucket, "", S3Options(profile=aws.profile, region=aws.region))
        try:
            reader = await store.open(key)
            return b"".join([chunk async for chunk in reader.chunks()])
        except NotFoundError:
            return None

    return RunCommand(client("ssm", aws), read_output)


def ssm_remote(instance_id: str, opts: ConnectOptions, path: str = ".") -> SSMRemote:
    """Over SSM a path must be absolute: the agent runs scripts as root, in its own
    directory, and without HOME, so a relative path would land anywhere."""
    from ..stores.s3_config import S3Options

    if path != "." and not path.startswith("/"):
        raise UsageError(
            f"over SSM, the path on {instance_id} must be absolute, not {path!r}",
            f"e.g. {instance_id}:/home/ubuntu/{path}",
        )
    from .ssm_remote import SSMRemote
    from .ssm_staging import Staging, parse_location

    if opts.timeout is not None and opts.timeout < MIN_EXECUTION_TIMEOUT:
        raise UsageError(
            f"over SSM, --timeout must be at least {MIN_EXECUTION_TIMEOUT} seconds, got {opts.timeout}",
            "The SSM agent replaces a smaller executionTimeout with its default, 3600.",
        )
    s3 = S3Options(profile=opts.aws.profile, region=opts.aws.region)
    staging = Staging(opts.staging, s3) if opts.staging else None
    output = parse_location(opts.ssm_output_s3, "--ssm-output-s3") if opts.ssm_output_s3 else None
    run = ssm_runner(opts.aws)
    if output is None and staging is not None:
        run.read_output = staging.take_output  # outputs beside staged objects are read once
    return SSMRemote(instance_id, run, execution_timeout=opts.timeout, output_s3=output, staging=staging)


class SSMRoute(NamedTuple):
    instance_id: str
    why_not_ssh: RunctlError | None = None
    """With --via auto: why SSH was not possible (joined to SSM's own error, if any)."""


async def choose_route(target: Target, opts: ConnectOptions) -> tuple[Target, ConnectOptions] | SSMRoute:
    """How ``target`` (an instance id) is reached: an SSH host and options, or SSM."""
    assert target.instance_id is not None
    if opts.via == "ssm":
        return SSMRoute(target.instance_id)
    from .ec2 import describe

    instance = await describe(target.instance_id, opts.aws)
    route = ssh_route(instance, target, opts)
    if isinstance(route, RunctlError):
        if opts.via == "ssh":
            raise route
        return SSMRoute(target.instance_id, route)
    return route


async def reach_instance(target: Target, opts: ConnectOptions) -> Remote:
    """A remote for ``target`` (an instance id), by the route ``opts.via`` asks for."""
    route = await choose_route(target, opts)
    if isinstance(route, SSMRoute):
        remote = ssm_remote(route.instance_id, opts, target.path)
        try:
            await remote.check()
        except RunctlError as exc:
            if route.why_not_ssh is None:
                raise
            why = route.why_not_ssh
            raise type(why)(f"{why.message}, and {exc.message}", why.hint) from exc
        return remote
    from . import open_remote

    ssh_target, ssh_opts = route
    return await open_remote(ssh_target, ssh_opts)


def ssh_route(
    instance: Instance, target: Target, opts: ConnectOptions
) -> tuple[Target, ConnectOptions] | RunctlError:
    """The SSH host, user and key for ``instance``, or why there is none."""
    from .target import Target

    address = instance.address(opts.private_ip)
    if address is None:
        which = "private" if opts.private_ip else "public"
        return NotFoundError(
            f"{instance.instance_id} has no {which} address for SSH",
            "Use --via ssm, or --private-ip from inside its VPC.",
        )
    key = opts.identity or instance.key_file()
    if key is None:
        name = instance.key_name
        why = "no key pair"
        if name:
            why = f"no private key for key pair {name!r} in ~/.ssh ({name}.pem, {name})"
        return NotFoundError(f"{instance.instance_id}: {why}", "Pass -i KEY, or use --via ssm.")
    user = target.user or opts.user or instance.login_user
    return Target(address, target.path, user, target.port), opts._replace(identity=key, via="ssh")
