"""The report line: one format, one parser, whoever prints it."""

from __future__ import annotations

import pytest

from runctl.dataload import exit_codes, instance_helper
from runctl.dataload.report import TAG, LoadReport, find_report, format_report, parse_report
from runctl.errors import MissingToolError, NotFoundError, RemoteError, RunctlError, UsageError


def test_round_trip_with_and_without_shard() -> None:
    for report in (LoadReport(3, 1234, 0.5, "runctl"), LoadReport(0, 0, 12.0, "aws", "2/8")):
        line = format_report(report)
        assert line.startswith(TAG + " ") and "\n" not in line
        assert parse_report(line + "\n") == report


def test_the_last_line_counts_and_tool_chatter_before_it_does_not() -> None:
    out = "download: s3://b/x to d/x\nfiles=9 nonsense\n\n"
    out += "runctl-load files=2 bytes=10 seconds=1 tool=s5cmd\n\n"
    assert parse_report(out) == LoadReport(2, 10, 1.0, "s5cmd")


def test_unknown_fields_are_ignored_and_order_is_free() -> None:
    line = "runctl-load tool=aws future=x bytes=5 files=1 seconds=0.250 shard=0/2"
    assert parse_report(line) == LoadReport(1, 5, 0.25, "aws", "0/2")


@pytest.mark.parametrize(
    "out",
    [
        "",
        "runctl-load files=1 bytes=2 tool=x\n",  # no seconds
        "runctl-load files=a bytes=2 seconds=1 tool=x\n",
        "runctl-load files=1 bytes=2 seconds=1 tool=x\nsomething after\n",
        "xruntl-load files=1 bytes=2 seconds=1 tool=x\n",
    ],
)
def test_no_report_is_a_typed_error(out: str) -> None:
    assert find_report(out) is None
    with pytest.raises(RemoteError) as info:
        parse_report(out)
    assert "report line" in info.value.message


def test_the_sh_printf_and_the_helper_print_the_same_format() -> None:
    from runctl.dataload import script

    common = script._COMMON
    assert f"printf '{TAG} files=%s bytes=%s seconds=%s tool=%s\\n'" in common
    assert instance_helper.TAG == TAG


def test_exit_statuses_agree_with_the_helper_and_map_to_typed_errors() -> None:
    assert instance_helper.NO_OBJECTS == exit_codes.NO_OBJECTS
    assert instance_helper.FAILED == exit_codes.FAILED
    assert isinstance(exit_codes.error_for(exit_codes.NO_TOOL, ""), MissingToolError)
    assert isinstance(exit_codes.error_for(exit_codes.NO_PYTHON, "x"), MissingToolError)
    assert isinstance(exit_codes.error_for(exit_codes.NO_OBJECTS, ""), NotFoundError)
    assert isinstance(exit_codes.error_for(exit_codes.NO_SHARD, ""), UsageError)
    assert exit_codes.error_for(4, "error: no objects under s3://b/p/").exit_code == 4  # runctl's own
    err = exit_codes.error_for(1, "x\nAn error occurred (NoSuchBucket) when calling ListObjectsV2\n", "i-1")
    assert err.code == "bucket_not_found" and err.message.startswith("i-1: ")
    said = exit_codes.error_for(1, "runctl-load: error: s5cmd sync failed (status 1)\n")
    assert type(said) is RunctlError and said.message == "s5cmd sync failed (status 1)"
