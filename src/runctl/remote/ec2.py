"""EC2 instance ids as targets: DescribeInstances says where an instance is, who logs
in, and with which key; the AMI's name says the login user, as AWS documents it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import NotFoundError
from .aws import AWSOptions, aws_error, client, error_code

# (substring of the lower-cased AMI name, login user), first match wins: AWS's
# documented default users per distribution ("Deep Learning ... Ubuntu" is ubuntu).
LOGIN_USERS = (
    ("ubuntu", "ubuntu"),
    ("debian", "admin"),
    ("centos", "centos"),
    ("fedora", "fedora"),
    ("bitnami", "bitnami"),
    ("rocky", "rocky"),
    ("almalinux", "ec2-user"),
    ("amzn", "ec2-user"),
    ("al2023", "ec2-user"),
    ("amazon linux", "ec2-user"),
    ("rhel", "ec2-user"),
    ("suse", "ec2-user"),
    ("sles", "ec2-user"),
)
DEFAULT_USER = "ec2-user"


class Instance(NamedTuple):
    instance_id: str
    state: str
    public_dns: str | None
    public_ip: str | None
    private_ip: str | None
    key_name: str | None
    image_name: str | None

    def address(self, private: bool) -> str | None:
        if private:
            return self.private_ip
        return self.public_dns or self.public_ip

    @property
    def login_user(self) -> str:
        name = (self.image_name or "").lower()
        return next((user for part, user in LOGIN_USERS if part in name), DEFAULT_USER)

    def key_file(self, ssh_dir: Path | None = None) -> Path | None:
        """The private key of the instance's key pair, if this machine has it."""
        if not self.key_name:
            return None
        folder = ssh_dir or Path(os.path.expanduser("~/.ssh"))
        for name in (f"{self.key_name}.pem", self.key_name):
            if (folder / name).is_file():
                return folder / name
        return None


async def describe(instance_id: str, aws: AWSOptions) -> Instance:
    """The instance, or NotFoundError (exit 4) when it is unknown, stopped or terminated."""
    ec2 = client("ec2", aws)
    try:
        reply = await asyncio.to_thread(ec2.describe_instances, InstanceIds=[instance_id])
    except Exception as exc:
        if error_code(exc).startswith("InvalidInstanceID"):
            raise NotFoundError(
                f"no EC2 instance {instance_id} in this account and region",
                "Check the id, and --region / AWS_REGION.",
            ) from exc
        raise aws_error(exc, f"describe {instance_id}") from exc
    found = [i for r in reply.get("Reservations", []) for i in r.get("Instances", [])]
    if not found:
        raise NotFoundError(f"no EC2 instance {instance_id} in this account and region")
    raw = found[0]
    state = raw.get("State", {}).get("Name", "unknown")
    if state != "running":
        hint = "Start it first (aws ec2 start-instances)." if state in ("stopped", "stopping") else ""
        raise NotFoundError(f"EC2 instance {instance_id} is {state}, not running", hint)
    return Instance(
        instance_id=instance_id,
        state=state,
        public_dns=raw.get("PublicDnsName") or None,
        public_ip=raw.get("PublicIpAddress") or None,
        private_ip=raw.get("PrivateIpAddress") or None,
        key_name=raw.get("KeyName") or None,
        image_name=await _image_name(ec2, raw.get("ImageId")),
    )


async def _image_name(ec2: Any, image_id: str | None) -> str | None:
    if not image_id:
        return None
    try:
        reply = await asyncio.to_thread(ec2.describe_images, ImageIds=[image_id])
    except Exception:  # a deregistered or private AMI: fall back to the default user
        return None
    images = reply.get("Images", [])
    return str(images[0].get("Name", "")) if images else None
