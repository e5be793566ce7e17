"""What a load is asked to do: the source, the options that travel to the instance, and
how a fan-out gives each instance its shard.

Only options that change what happens *on the instance* travel: the endpoint, the region
and the concurrency, and only when they were given (flag, config file or RUNCTL_*
variable): otherwise the instance's own environment decides, as it does for
credentials, which never travel at all (the instance uses its role or environment).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

from ..errors import UsageError
from ..filters import Rule, Shard

if TYPE_CHECKING:
    from ..settings import Settings

Tool = Literal["auto", "runctl", "s5cmd", "aws"]
TOOLS: tuple[str, ...] = get_args(Tool)
FETCH_TOOLS = ("runctl", "s5cmd", "aws")
"""The order ``auto`` tries them in on the instance: runctl's own engine first."""

SSM_INSTANCE_VARIABLE = "AWS_SSM_INSTANCE_ID"
"""Set by the SSM agent in the environment of every Run Command script."""


@dataclass(frozen=True)
class Source:
    bucket: str
    prefix: str
    """The key prefix as a directory: "" (the whole bucket) or ending with "/"."""

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_source(url: str) -> Source:
    """``s3://BUCKET[/PREFIX]`` as a directory prefix (``s3://b/p`` means keys under ``p/``)."""
    from ..stores.factory import as_dir_prefix
    from ..stores.s3 import parse_s3_url

    loc = parse_s3_url(url)
    return Source(loc.bucket, as_dir_prefix(loc.key))


@dataclass(frozen=True)
class LoadOptions:
    tool: Tool = "auto"
    delete: bool = False
    """Remove local files under DEST that are not in the selected source set (files the
    rules exclude are never removed, as with ``s3 sync --delete``)."""
    rules: tuple[Rule, ...] = ()
    """--exclude/--include in command-line order (gitignore patterns, as ``s3 sync``)."""
    endpoint_url: str | None = None
    region: str | None = None
    concurrency: int | None = None

    def __post_init__(self) -> None:
        if self.tool not in TOOLS:
            raise UsageError(f"unknown tool {self.tool!r}", f"Use one of: {', '.join(TOOLS)}.")
        if self.concurrency is not None and self.concurrency < 1:
            raise UsageError(f"concurrency must be at least 1, got {self.concurrency}")

    @classmethod
    def from_settings(
        cls, settings: Settings, *, tool: Tool = "auto", delete: bool = False, rules: tuple[Rule, ...] = ()
    ) -> LoadOptions:
        """The options that travel, from this machine's settings (defaults < config file <
        RUNCTL_* < flags). AWS_* variables of this machine stay here."""
        # No concurrency unless someone set one (flag, config, RUNCTL_*): s5cmd keeps
        # its 256 workers and the instance's runctl its own default.
        concurrency = settings.concurrency
        return cls(
            tool=tool,
            delete=delete,
            rules=tuple(rules),
            endpoint_url=settings.endpoint_url,
            region=settings.region,
            concurrency=concurrency,
        )


@dataclass(frozen=True)
class InstanceShards:
    """One script for a fan-out: each instance takes the shard its id is mapped to.

    The script reads the id from ``variable`` (``$AWS_SSM_INSTANCE_ID`` under SSM Run
    Command); an instance missing from the table exits with status 45 and loads nothing."""

    total: int
    index_of: Mapping[str, int]
    variable: str = SSM_INSTANCE_VARIABLE
    shards: dict[str, Shard] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.variable):
            raise UsageError(f"not a shell variable name: {self.variable!r}")
        if not self.index_of:
            raise UsageError("a shard table needs at least one instance")
        shards: dict[str, Shard] = {}
        for instance, index in self.index_of.items():
            if not instance or "\n" in instance:
                raise UsageError(f"bad instance id {instance!r} in the shard table")
            shards[instance] = Shard(index, self.total)  # UsageError for a bad index
        object.__setattr__(self, "shards", shards)

    @classmethod
    def spread(cls, instances: list[str], variable: str = SSM_INSTANCE_VARIABLE) -> InstanceShards:
        """Shard i of N for the i-th of N instances."""
        return cls(len(instances), {name: i for i, name in enumerate(instances)}, variable)
