from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from runctl.config_file import default_config_path
from runctl.errors import UsageError
from runctl.settings import MIN_PART, Settings, load_settings

MiB = 1024**2


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No RUNCTL_* variables and an empty XDG config home; returns that home."""
    for key in [k for k in os.environ if k.startswith("RUNCTL_")]:
        monkeypatch.delenv(key)
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_without_config_env_or_flags() -> None:
    s = load_settings()
    assert s == Settings()
    assert (s.concurrency, s.part_size, s.parts_in_flight, s.retries) == (None, 8 * MiB, 4, 3)
    assert s.endpoint_url is None and s.profile is None and s.region is None


def test_default_config_path_follows_xdg(clean_env: Path) -> None:
    assert default_config_path() == clean_env / "runctl" / "config.toml"


def test_default_config_path_without_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_config_path() == tmp_path / ".config" / "runctl" / "config.toml"


def test_config_file_runctl_table_overrides_defaults(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "c.toml",
        '[runctl]\nconcurrency = 4\npart_size = "16MiB"\nendpoint_url = "http://cfg:1"\n'
        'region = "eu-west-1"\nretries = 0\nparts_in_flight = 2\n',
    )
    s = load_settings(cfg)
    assert s.concurrency == 4
    assert s.part_size == 16 * MiB
    assert s.endpoint_url == "http://cfg:1"
    assert s.region == "eu-west-1"
    assert s.retries == 0
    assert s.parts_in_flight == 2
    assert s.profile is None  # untouched keys keep their defaults


def test_config_file_at_default_path_is_read(clean_env: Path) -> None:
    write_config(clean_env / "runctl" / "config.toml", "[runctl]\nconcurrency = 7\n")
    assert load_settings().concurrency == 7


def test_config_part_size_may_be_a_plain_integer(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", f"[runctl]\npart_size = {6 * MiB}\n")
    assert load_settings(cfg).part_size == 6 * MiB


def test_other_tables_in_the_config_are_ignored(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", '[other]\nconcurrency = "nonsense"\n[runctl]\nretries = 5\n')
    s = load_settings(cfg)
    assert s.retries == 5
    assert s.concurrency is None


def test_environment_overrides_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(tmp_path / "c.toml", '[runctl]\nconcurrency = 4\nendpoint_url = "http://cfg:1"\n')
    monkeypatch.setenv("RUNCTL_CONCURRENCY", "6")
    monkeypatch.setenv("RUNCTL_PART_SIZE", "12MiB")
    s = load_settings(cfg)
    assert s.concurrency == 6
    assert s.part_size == 12 * MiB
    assert s.endpoint_url == "http://cfg:1"  # not set in the environment: config value stays


def test_flags_override_environment_and_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(
        tmp_path / "c.toml", '[runctl]\nconcurrency = 4\nendpoint_url = "http://cfg:1"\nregion = "r-cfg"\n'
    )
    monkeypatch.setenv("RUNCTL_CONCURRENCY", "6")
    monkeypatch.setenv("RUNCTL_ENDPOINT_URL", "http://env:2")
    s = load_settings(cfg, {"concurrency": 9, "endpoint_url": "http://flag:3", "part_size": "20MiB"})
    assert s.concurrency == 9
    assert s.endpoint_url == "http://flag:3"
    assert s.part_size == 20 * MiB
    assert s.region == "r-cfg"


def test_each_layer_wins_over_the_one_below(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One field per layer, so every step of the precedence chain is visible at once."""
    cfg = write_config(tmp_path / "c.toml", '[runctl]\nretries = 1\nregion = "cfg"\nprofile = "cfg"\n')
    monkeypatch.setenv("RUNCTL_REGION", "env")
    monkeypatch.setenv("RUNCTL_PROFILE", "env")
    s = load_settings(cfg, {"profile": "flag"})
    assert s.concurrency is None  # default: the stores'
    assert s.retries == 1  # config file
    assert s.region == "env"  # environment over config
    assert s.profile == "flag"  # flag over environment


def test_flags_given_as_none_do_not_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNCTL_CONCURRENCY", "6")
    s = load_settings(None, {"concurrency": None, "endpoint_url": None, "part_size": None})
    assert s.concurrency == 6
    assert s.part_size == 8 * MiB


def test_unknown_flag_names_are_ignored() -> None:
    assert load_settings(None, {"no_such_setting": 3}) == Settings()


def test_explicit_config_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="config file not found"):
        load_settings(tmp_path / "missing.toml")


def test_unknown_config_keys_are_named(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", "[runctl]\nconcurency = 4\nzzz = 1\n")
    with pytest.raises(UsageError) as info:
        load_settings(cfg)
    assert "concurency" in info.value.message and "zzz" in info.value.message
    assert info.value.exit_code == 2


def test_invalid_toml_is_a_usage_error(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", "[runctl\nconcurrency = \n")
    with pytest.raises(UsageError, match="cannot read config file"):
        load_settings(cfg)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("RUNCTL_CONCURRENCY", "lots"),
        ("RUNCTL_CONCURRENCY", "0"),
        ("RUNCTL_RETRIES", "-1"),
        ("RUNCTL_PARTS_IN_FLIGHT", "0"),
        ("RUNCTL_PART_SIZE", "huge"),
        ("RUNCTL_PART_SIZE", "1MiB"),
    ],
)
def test_invalid_environment_values_are_usage_errors(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(UsageError):
        load_settings()


@pytest.mark.parametrize(
    "flags",
    [{"concurrency": 0}, {"concurrency": "x"}, {"part_size": "4MiB"}, {"part_size": "abc"}],
)
def test_invalid_flags_are_usage_errors(flags: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        load_settings(None, flags)


def test_part_size_floor_is_five_mib() -> None:
    assert Settings(part_size=MIN_PART).part_size == 5 * MiB
    with pytest.raises(UsageError, match="at least 5MiB"):
        Settings(part_size=MIN_PART - 1)


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.concurrency = 3  # type: ignore[misc]


def test_s3_options_carry_the_connection_settings() -> None:
    s = Settings(endpoint_url="http://e:1", profile="p", region="r", retries=2)
    opts = s.s3_options()
    assert (opts.endpoint_url, opts.profile, opts.region, opts.retries) == ("http://e:1", "p", "r", 2)
