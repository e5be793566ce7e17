"""Resolve endpoint, region and credentials the way the AWS CLI does.

Fast path: with no ``--profile`` and keys in the environment (the AWS CLI's first
choice too), nothing heavy is imported. Otherwise botocore, the AWS CLI's own
resolver, walks the full chain: shared config and credentials files, profiles,
SSO, assume-role, container and instance metadata. It costs ~190 ms of import, so
only commands that need it pay for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..errors import CredentialsError, UsageError

if TYPE_CHECKING:
    from obstore.store import S3Credential, S3CredentialProvider


@dataclass(frozen=True)
class S3Options:
    """What the user asked for at the edge (flags, config file, environment)."""

    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    retries: int = 5
    connect_timeout: float = 5.0
    idle_timeout: float = 10.0
    """A request that sends or receives nothing for this long is abandoned (and retried):
    a server that accepts and then stalls must not hold a transfer for minutes."""
    retry_budget: float = 30.0
    """No new retry of a request starts once this many seconds have passed since its first try."""


class _BotocoreCredentials:
    """An obstore credential callback backed by botocore's (refreshing) credentials."""

    def __init__(self, creds: Any) -> None:
        self._creds = creds

    def __call__(self) -> S3Credential:
        from datetime import UTC, datetime

        frozen = self._creds.get_frozen_credentials()
        return {
            "access_key_id": frozen.access_key,
            "secret_access_key": frozen.secret_key,
            "token": frozen.token,
            # botocore refreshes ahead of expiry; asking again every few minutes is cheap.
            "expires_at": datetime.now(UTC) + timedelta(minutes=5),
        }


def _botocore_session(profile: str | None) -> Any:
    try:
        import botocore.session
        from botocore.exceptions import ProfileNotFound
    except ImportError as exc:  # pragma: no cover - botocore is a dependency
        raise CredentialsError("botocore is not installed", "pip install botocore") from exc
    try:
        session = botocore.session.Session(profile=profile)
        session.get_scoped_config()  # raises ProfileNotFound early
    except ProfileNotFound as exc:
        raise CredentialsError(
            f"AWS profile {profile!r} not found",
            "List profiles with `aws configure list-profiles`, or run `aws configure --profile NAME`.",
        ) from exc
    return session


def store_kwargs(opts: S3Options) -> dict[str, Any]:
    """Keyword arguments for ``obstore.store.S3Store`` (everything but the bucket)."""
    env = os.environ
    session = None
    static_keys = env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY")
    if opts.profile or not static_keys:
        session = _botocore_session(opts.profile or env.get("AWS_PROFILE"))

    endpoint = opts.endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint is None and session is not None:
        cfg = session.get_scoped_config()
        s3_cfg = cfg.get("s3")
        endpoint = (s3_cfg.get("endpoint_url") if isinstance(s3_cfg, dict) else None) or cfg.get(
            "endpoint_url"
        )
    region = opts.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region is None and session is not None:
        region = session.get_config_variable("region")
    region = region or "us-east-1"

    kwargs: dict[str, Any] = {
        "region": region,
        # Every PUT and part carries x-amz-checksum-sha256: the server refuses a body that
        # arrived damaged (BadDigest) instead of storing it. SigV4's payload hash is no such
        # check on every server (SeaweedFS stores a body that does not match it).
        "checksum_algorithm": "sha256",
        "client_options": {
            "connect_timeout": timedelta(seconds=opts.connect_timeout),
            "read_timeout": timedelta(seconds=opts.idle_timeout),
            # A whole request (one part or range, <= a few tens of MiB) may take this long:
            # generous, so slow links still work; the idle timeout catches stalls early.
            "timeout": timedelta(minutes=10),
            "allow_http": bool(endpoint and endpoint.startswith("http://")),
            "pool_max_idle_per_host": "128",
        },
        "retry_config": {
            "max_retries": opts.retries,
            "backoff": {
                "init_backoff": timedelta(milliseconds=100),
                "max_backoff": timedelta(seconds=10),
                "base": 2,
            },
            "retry_timeout": timedelta(seconds=opts.retry_budget),
        },
    }
    if endpoint:
        if "://" not in endpoint:
            raise UsageError(
                f"invalid endpoint URL {endpoint!r}",
                "Give a full URL, e.g. --endpoint-url http://127.0.0.1:8333",
            )
        kwargs["endpoint"] = endpoint.rstrip("/")
        # S3-compatible servers (MinIO, SeaweedFS, Ceph) expect path-style addressing.
        kwargs["virtual_hosted_style_request"] = False
    else:
        kwargs["virtual_hosted_style_request"] = True

    if session is None:
        kwargs["access_key_id"] = env["AWS_ACCESS_KEY_ID"]
        kwargs["secret_access_key"] = env["AWS_SECRET_ACCESS_KEY"]
        if env.get("AWS_SESSION_TOKEN"):
            kwargs["token"] = env["AWS_SESSION_TOKEN"]
    else:
        kwargs["credential_provider"] = _credential_provider(session, opts.profile)
    return kwargs


def _credential_provider(session: Any, profile: str | None) -> S3CredentialProvider:
    try:
        creds = session.get_credentials()
    except Exception as exc:  # botocore raises many kinds (SSO expired, bad config...)
        raise CredentialsError(f"could not load AWS credentials: {exc}") from exc
    if creds is None:
        where = f" for profile {profile!r}" if profile else ""
        empty = [v for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if os.environ.get(v, None) == ""]
        if empty:
            verb = "is" if len(empty) == 1 else "are"
            raise CredentialsError(
                f"no AWS credentials found{where}: {' and '.join(empty)} {verb} set but empty",
                f"Set {empty[0]} to your key (it is empty now), or unset it so the profile's credentials "
                "(~/.aws/credentials, --profile) are used.",
            )
        raise CredentialsError(f"no AWS credentials found{where}")
    return _BotocoreCredentials(creds)
