"""S3Store rules that need no server: ETags as digests, the part size rule.
(Against a real server: tests/integration/test_s3_*.py.)"""

from __future__ import annotations

import pytest

from runctl.digests import MD5, S3_ETAG, DigestSpec
from runctl.settings import Settings
from runctl.stores.base import Entry
from runctl.stores.factory import open_s3
from runctl.stores.s3 import S3Store, part_size_for

MIB = 1024 * 1024


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> S3Store:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    return open_s3("s3://bucket/p/", Settings(region="us-east-1", part_size=8 * MIB), directory=True)[0]


def test_single_part_etag_is_an_md5(store: S3Store) -> None:
    assert store.listed_digest(Entry("a", 3, 1.0, '"900150983cd24fb0d6963f7d28e17f72"')) == (
        DigestSpec(MD5),
        "900150983cd24fb0d6963f7d28e17f72",
    )


def test_multipart_etag_names_the_part_size_runctl_would_upload_with(store: S3Store) -> None:
    etag = "0123456789abcdef0123456789abcdef-3"
    assert store.listed_digest(Entry("a", 20 * MIB, 1.0, etag)) == (DigestSpec(S3_ETAG, 8 * MIB), etag)
    huge = 200 * 1024**3  # 200 GiB: parts grow past 8 MiB to stay within 10,000
    spec, _ = store.listed_digest(Entry("a", huge, 1.0, etag))  # type: ignore[misc]
    assert spec == DigestSpec(S3_ETAG, part_size_for(huge, 8 * MIB)) and spec.part_size > 8 * MIB


def test_no_etag_no_digest_and_nothing_computed_on_request(store: S3Store) -> None:
    assert store.listed_digest(Entry("a", 1, 1.0)) is None
    assert store.listed_digest(Entry("a", 1, 1.0, '""')) is None
    assert store.digests == frozenset()


def test_part_size_grows_so_no_upload_needs_more_than_10000_parts() -> None:
    eight = 8 * MIB
    assert part_size_for(1024, eight) == eight
    six_tib = 6 * 1024**4
    part = part_size_for(six_tib, eight)
    assert part > eight and -(-six_tib // part) <= 10_000
    seven_gib = 7 * 1024**3  # > 5 GiB: still 8 MiB parts, 896 of them
    assert part_size_for(seven_gib, eight) == eight
