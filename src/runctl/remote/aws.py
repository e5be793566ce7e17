"""botocore clients for AWS's control plane (EC2 to resolve instance ids, SSM to run
commands), and the one place their exceptions become runctl's typed errors.

Endpoints come from botocore's own resolution, so ``AWS_ENDPOINT_URL_SSM`` /
``AWS_ENDPOINT_URL_EC2`` (or ``endpoint_url`` in the profile's ``[services]``) point
runctl at an emulator or a VPC endpoint; runctl's ``--endpoint-url`` is S3's alone
and never applies here. Retries use botocore's adaptive mode: polling many
instances is exactly the traffic SSM throttles.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from ..errors import (
    AccessDeniedError,
    CredentialsError,
    NetworkError,
    NotFoundError,
    RunctlError,
    UsageError,
)


class AWSOptions(NamedTuple):
    profile: str | None = None
    region: str | None = None


_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
_BAD_CREDENTIALS = {
    "AuthFailure",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidSignatureException",
}


def client(service: str, opts: AWSOptions) -> Any:
    """A botocore client for ``service`` ("ec2", "ssm") with adaptive retries."""
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    try:
        session = botocore.session.Session(profile=opts.profile or os.environ.get("AWS_PROFILE") or None)
        region = (
            opts.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or session.get_config_variable("region")
        )
        if not region:
            raise UsageError(
                f"no AWS region for {service.upper()}",
                "Pass --region, set AWS_REGION, or set region in your AWS profile.",
            )
        config = Config(
            retries={"mode": "adaptive", "max_attempts": 10},
            connect_timeout=10,
            read_timeout=60,
            user_agent_extra="runctl",
        )
        return session.create_client(service, region_name=region, config=config)
    except ProfileNotFound as exc:
        raise CredentialsError(
            f"AWS profile {opts.profile!r} not found",
            "List profiles with `aws configure list-profiles`.",
        ) from exc
    except BotoCoreError as exc:
        raise aws_error(exc, f"create an {service.upper()} client") from exc


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ("" for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def aws_error(exc: BaseException, doing: str) -> RunctlError:
    """A typed error for a failed control-plane call; ``doing`` says what was attempted
    ("send the command to i-0abc")."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    if isinstance(exc, RunctlError):
        return exc
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CredentialsError(f"cannot {doing}: no AWS credentials found")
    if isinstance(exc, NoRegionError):
        return UsageError(f"cannot {doing}: no AWS region", "Pass --region or set AWS_REGION.")
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return NetworkError(f"cannot {doing}: {exc}", "Check your network and the AWS endpoint.")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = str(exc.response.get("Error", {}).get("Message", "")) or code
        if code in _DENIED:
            return AccessDeniedError(
                f"cannot {doing}: access denied ({message})",
                "The AWS credentials lack the IAM permission for this call; see README, 'IAM permissions'.",
            )
        if code in _BAD_CREDENTIALS:
            return CredentialsError(f"cannot {doing}: {message}")
        if code.startswith("InvalidInstanceID") or code == "InvalidInstanceId":
            return NotFoundError(f"cannot {doing}: {message}", "Check the instance id and the region.")
        return RunctlError(f"cannot {doing}: {code}: {message}")
    return NetworkError(f"cannot {doing}: {exc}")
