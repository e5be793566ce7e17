"""Reaching a remote machine: one seam (seam.py), its transports, and the remote shell
that runs every script of an operation through one started command (shell.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .seam import Remote
    from .target import ConnectOptions, Target


async def open_remote(target: Target, opts: ConnectOptions) -> Remote:
    """The transport the options ask for: for an EC2 instance id SSH or SSM (--via),
    else SSH with asyncssh unless --ssh-client openssh."""
    if target.instance_id is not None:
        from .instances import reach_instance

        return await reach_instance(target, opts)
    if opts.via == "ssm":
        from ..errors import UsageError

        raise UsageError(
            f"--via ssm needs an EC2 instance id, not {target.host!r}", "e.g. i-0abc12345678def90"
        )
    if opts.identity is not None and not opts.identity.exists():
        # ssh itself only warns and tries the other keys; a key that was asked for by name
        # and is not there is a typo to name now, not an authentication failure later.
        from ..errors import NotFoundError

        raise NotFoundError(f"identity file not found: {opts.identity}", "Check the path given to -i.")
    if opts.client == "openssh":
        from .openssh_remote import OpenSSHRemote

        return OpenSSHRemote(target, opts)
    from .asyncssh_remote import AsyncSSHRemote

    return await AsyncSSHRemote.open(target, opts)
