"""The gzip tar stream: members that gzip -dc joins back, dense chunks stored, and when to compress."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

from runctl.remote import scripts
from runctl.stores import gzip_stream


def test_members_decode_as_one_stream_and_dense_chunks_are_stored() -> None:
    text = b"".join(b"x = %d  # a line of source code\n" % i for i in range(40_000))
    dense = os.urandom(1 << 20)
    members = [gzip_stream.member(c) for c in (text, dense, b"tail", b"")]
    assert len(members[0]) < len(text) // 5  # source code shrinks
    assert len(dense) < len(members[1]) < len(dense) + 1024  # stored: no deflate pass wasted
    out = subprocess.run(["gzip", "-dc"], input=b"".join(members), capture_output=True, check=True).stdout
    assert out == text + dense + b"tail"


def test_writer_wraps_a_channel() -> None:
    class Sink:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, data: bytes) -> None:
            self.data += data

    sink = Sink()
    writer = gzip_stream.GzipWriter(sink)
    writer.write(b"abc")
    writer.write(bytearray(b"def"))
    out = subprocess.run(["gzip", "-dc"], input=bytes(sink.data), capture_output=True, check=True).stdout
    assert out == b"abcdef"


def test_tar_command_decodes_before_unpacking(tmp_path: Path) -> None:
    archive = io.BytesIO()
    blob = os.urandom(100_000)
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("pkg/run.sh")
        info.size, info.mode = 3, 0o755
        tar.addfile(info, io.BytesIO(b"hi\n"))
        info = tarfile.TarInfo("pkg/blob.bin")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    raw = archive.getvalue()
    stream = gzip_stream.member(raw[:5000]) + gzip_stream.member(raw[5000:])
    script = scripts.tar_command(str(tmp_path / "dest"), gzip_stream.DECODE)
    subprocess.run(["sh", "-c", script], input=stream, check=True)
    run = tmp_path / "dest" / "pkg" / "run.sh"
    assert run.read_bytes() == b"hi\n" and run.stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "dest" / "pkg" / "blob.bin").read_bytes() == blob
    again = scripts.tar_command(str(tmp_path / "again"), gzip_stream.DECODE)
    cut = subprocess.run(["sh", "-c", again], input=stream[: len(stream) // 2], capture_output=True)
    assert cut.returncode != 0 and (tmp_path / "again").is_dir()  # unpacking began, then failed


def test_when_to_compress_is_judged_by_the_measured_round_trip() -> None:
    assert not gzip_stream.wanted("auto", 0.0008)  # loopback or LAN: ~1 ms
    assert gzip_stream.wanted("auto", 0.030)  # a WAN, even if it reaches us through a local port
    assert gzip_stream.wanted("auto", None)  # not measured: assume a real link
    assert gzip_stream.wanted("always", 0.0001)
    assert not gzip_stream.wanted("never", 0.5)


def test_level_rises_on_a_slow_link_and_falls_back_on_a_fast_one() -> None:
    """The writer packs harder while the channel keeps it waiting, and never beyond what
    the CPU can keep up with; every member still decodes to the original."""
    import asyncio
    import gzip

    class Channel:
        def __init__(self, wait: float) -> None:
            self.wait, self.data = wait, bytearray()

        def write(self, data: bytes) -> None:
            self.data += data

        async def drain(self) -> None:
            await asyncio.sleep(self.wait)

    text = b"def handler(request):\n    return render(request, 'index.html')\n" * 4000

    async def send(channel: Channel, chunks: int) -> list[int]:
        writer = gzip_stream.GzipWriter(channel)
        levels = []
        for _ in range(chunks):
            writer.write(text)
            await writer.drain()
            levels.append(writer.level)
        return levels

    slow = Channel(0.05)
    assert asyncio.run(send(slow, 8))[-1] == gzip_stream.MAX_LEVEL
    assert gzip.decompress(bytes(slow.data)) == text * 8
    fast = Channel(0.0)
    assert asyncio.run(send(fast, 8)) == [1] * 8
