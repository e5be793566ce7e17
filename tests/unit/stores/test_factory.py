"""The URL-to-store factory (no requests are made: opening a store is offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runctl.errors import UsageError
from runctl.settings import Settings
from runctl.stores.factory import LOCAL, open_store, scheme_of
from runctl.stores.local import LocalStore
from runctl.stores.s3 import S3Store


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    return Settings(region="us-east-1", part_size=6 * 1024 * 1024, parts_in_flight=3)


def test_scheme_of() -> None:
    assert scheme_of("s3://b/k") == "s3"
    assert scheme_of("data/s3://odd") == LOCAL
    assert scheme_of(Path("/tmp/x")) == LOCAL
    assert scheme_of("gs://b/k") == LOCAL  # no opener for it: a (strange) local path, as before


def test_s3_directory_and_single_key(settings: Settings) -> None:
    store, key = open_store("s3://some-bucket/run/ckpts", settings, directory=True)
    assert isinstance(store, S3Store) and (store.prefix, key) == ("run/ckpts/", "")
    assert store.part_size == settings.part_size and store.parts_in_flight == 3
    assert (store.item_field, store.display_prefix) == ("key", "run/ckpts/")
    store, key = open_store("s3://some-bucket/run/ckpts/last.pt", settings, directory=False)
    assert isinstance(store, S3Store) and (store.prefix, key) == ("", "run/ckpts/last.pt")


def test_local_directory_and_single_file(tmp_path: Path, settings: Settings) -> None:
    store, key = open_store(tmp_path, settings, directory=True)
    assert isinstance(store, LocalStore) and (store.root, key) == (tmp_path, "")
    assert (store.item_field, store.display_prefix) == ("path", f"{tmp_path}/")
    assert store.part_size == settings.download_range
    store, key = open_store(str(tmp_path / "a.pt"), settings, directory=False)
    assert isinstance(store, LocalStore) and (store.root, key) == (tmp_path, "a.pt")


def test_a_required_scheme_refuses_other_locations(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(UsageError, match="not an S3 URL"):
        open_store(tmp_path, settings, directory=True, scheme="s3")
    with pytest.raises(UsageError, match="invalid bucket name"):
        open_store("s3://Bad_Bucket/x", settings, directory=True)
    store, _ = open_store("s3://b/x", settings, directory=True, scheme=LOCAL)
    assert isinstance(store, LocalStore)  # `checkpoint list s3://...` is a local path, as before
