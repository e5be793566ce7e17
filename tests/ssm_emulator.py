"""A loopback emulator of AWS Systems Manager Run Command that really runs what it is sent.

botocore talks to it exactly as to a region (awsJson1_1: ``POST /`` with ``X-Amz-Target:
AmazonSSM.<Operation>``; point a client at it with ``AWS_ENDPOINT_URL_SSM``, see ``env()``).
Each fake managed instance is a sandbox directory on this machine; ``SendCommand`` with
``AWS-RunShellScript`` writes the script where the SSM Agent would and runs it the way the
agent does, so a client under test sees real exit codes, real output and real timing.

What the emulator copies from the real service and agent (amazon-ssm-agent source and the
Run Command user guide), so a client written against it handles AWS:

* ``GetCommandInvocation`` answers ``InvocationDoesNotExist`` for the first
  ``not_found_polls`` calls per (command, instance), and ``ListCommandInvocations`` lists
  nothing for the first ``list_not_found_polls`` calls per command (eventual consistency).
* Statuses: Pending -> InProgress -> Success | Failed | TimedOut | Cancelled (Cancelling
  in between). ``StatusDetails`` is ``DeliveryTimedOut`` or ``ExecutionTimedOut`` for the
  two kinds of ``TimedOut``. ``ResponseCode`` is -1 until the agent reports; the script's
  exit status then (-1 when the shell itself died of a signal); 137 when the agent killed
  the script for the execution timeout or a cancel (the agent's "stopped preemptively").
* Delivery: an offline agent leaves the invocation Pending. It is delivered only before
  ``TimeoutSeconds`` has passed; an undelivered invocation turns TimedOut/DeliveryTimedOut
  at the command's ``ExpiresAfter`` = RequestedDateTime + TimeoutSeconds + executionTimeout
  (the "total timeout" of the user guide; AWS's own example shows 3600 + 3600 s). An agent
  that goes offline mid-run keeps running the script but cannot report: the invocation
  stays InProgress and ends DeliveryTimedOut at ``ExpiresAfter`` unless the agent is back.
* The script: ``commands`` joined with "\\n" plus a final "\\n" in ``_script.sh`` under
  ``<root>/.ssm/orchestration/<command-id>/awsrunShellScript/0.awsrunShellScript/``, run as
  ``sh -c <script path>`` (so a ``#!`` line picks the interpreter, else /bin/sh runs it), in
  its own process group, stdin /dev/null. The agent's execution-timeout rule applies:
  ``executionTimeout`` must match the document's pattern (else ``InvalidParameters``), and
  the agent replaces values under 5 s by 3600. On timeout or cancel the whole process group
  gets SIGKILL. Like the agent (Go's ``cmd.Wait``), an invocation ends only when the shell
  has exited *and* its stdout/stderr are closed: a background child that keeps them open
  keeps the invocation InProgress.
* ``workingDirectory``: an absolute path is used as it is; a missing one fails the
  invocation (exit 1, stderr ``failed to run commands: chdir <dir>: no such file or
  directory``); a relative one is looked up under the command's ``downloads`` directory and
  otherwise ignored, as the agent does. Without it the script runs in the orchestration
  directory (a real agent runs it in its own working directory, ``/usr/bin`` under systemd:
  clients must ``cd`` themselves).
* Environment: a minimal base (PATH, LANG=C.UTF-8, HOME=<root> unless ``set_home=False``:
  a real agent under systemd has no HOME at all), the instance's ``env``, then the agent's
  own ``SSM_COMMAND_ID``, ``AWS_SSM_INSTANCE_ID``, ``AWS_SSM_REGION_NAME``,
  ``AWS_SSM_PLATFORM_NAME``, ``AWS_SSM_PLATFORM_VERSION``. Nothing of this process leaks in.
* Output: ``StandardOutputContent`` is the first 24,000 bytes, cut as the agent cuts
  (first 23,980 bytes + ``--output truncated--``), ``StandardErrorContent`` the same at
  8,000; both empty until the invocation ends. ``ListCommandInvocations`` ``Details`` gives
  the plugin ``Output``: stdout, ``\\n----------ERROR-------\\n``, stderr, cut to 2,500 with
  the agent's ``---Output truncated---`` / ``---Error truncated----`` markers.
* S3 output: with ``OutputS3BucketName`` the full streams go to
  ``{prefix}/{command-id}/{instance-id}/awsrunShellScript/0.awsrunShellScript/stdout|stderr``
  before the status turns terminal. Like the agent, an empty stream is not uploaded (its URL
  is still reported) and a failed upload does not change the status (see
  ``s3_upload_errors``).

Operations: SendCommand, GetCommandInvocation, ListCommandInvocations, ListCommands,
CancelCommand, DescribeInstanceInformation; anything else is UnknownOperationException.

Test-only knobs (not AWS): ``timeout_scale`` multiplies TimeoutSeconds and executionTimeout
(``timeout_scale=0.05`` makes AWS's minimum TimeoutSeconds of 30 last 1.5 s), a
TimeoutSeconds under 30 is accepted (AWS answers ValidationException; botocore refuses it
client-side unless ``parameter_validation=False``), ``delivery_delay``, ``cancel_delay``,
``report_delay``, ``inject_error``, an instance's ``online``/``ping_status`` and
``reject_sends_for``.

Usage::

    emulator = SSMEmulator(s3_client_factory=make_s3_client).start()
    box = emulator.add_instance(path="/opt/tools/bin", env={"AWS_ENDPOINT_URL": ...})
    env = {**os.environ, **emulator.env()}   # AWS_ENDPOINT_URL_SSM and the region
    ...
    emulator.stop()
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import posixpath
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import traceback
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

Json = dict[str, Any]

DOCUMENT_NAME = "AWS-RunShellScript"
_SPAWN_LOCK = threading.Lock()
"""Held while a script file is written and while a script is spawned: invocations run in
threads, and a child forked by one thread holds, until it execs, every descriptor open
at that moment, a script another thread is writing included; exec'ing that script then
fails with ETXTBSY ("Text file busy", about 1 run in 6 with 55 instances at once)."""
PLUGIN_NAME = "aws:runShellScript"
PLUGIN_DIR = "awsrunShellScript"
STEP_DIR = "0.awsrunShellScript"

STDOUT_LIMIT = 24_000
STDERR_LIMIT = 8_000
PLUGIN_OUTPUT_LIMIT = 2_500
TRUNCATED_SUFFIX = b"--output truncated--"
ERROR_TITLE = b"\n----------ERROR-------\n"
OUTPUT_TRUNCATED = b"\n---Output truncated---"
ERROR_TRUNCATED = b"\n---Error truncated----"

STOPPED_PREEMPTIVELY_EXIT_CODE = 137  # the agent's code for a script it killed (128 + SIGKILL)
DEFAULT_EXECUTION_TIMEOUT = 3600
AGENT_MIN_EXECUTION_TIMEOUT = 5
MAX_EXECUTION_TIMEOUT = 172_800
DEFAULT_DELIVERY_TIMEOUT = 3600
MAX_DELIVERY_TIMEOUT = 2_592_000
MAX_INSTANCE_IDS = 50
# AWS-RunShellScript's own allowedPattern for executionTimeout (matched against the whole value).
EXECUTION_TIMEOUT_PATTERN = re.compile(
    r"([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|(172[0-7][0-9]{2})|(172800)"
)
MAX_CONCURRENCY_PATTERN = re.compile(r"([1-9][0-9]*)|([1-9][0-9]%)|([1-9]%)|(100%)")
MAX_ERRORS_PATTERN = re.compile(r"([1-9][0-9]*)|(0)|([1-9][0-9]%)|([0-9]%)|(100%)")
INSTANCE_ID_PATTERN = re.compile(r"(i-(\w{8}|\w{17}))|(mi-\w{17})")
COMMAND_ID_PATTERN = re.compile(r"[0-9a-fA-F-]{36}")
# The PATH systemd gives a service such as amazon-ssm-agent.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ACCOUNT_ID = "123456789012"

TERMINAL = frozenset({"Success", "Failed", "TimedOut", "Cancelled"})
PING_STATUSES = ("Online", "ConnectionLost", "Inactive")


class SSMError(Exception):
    """An AWS error answer: HTTP ``status`` with ``{"__type": code, "message": message}``."""

    def __init__(self, code: str, message: str = "", status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def _validation(message: str) -> SSMError:
    return SSMError("ValidationException", f"1 validation error detected: {message}")


def _iso(epoch: float | None) -> str:
    """GetCommandInvocation's date strings: ``2019-02-14T19:26:26.439Z``, empty when unset."""
    if epoch is None:
        return ""
    stamp = datetime.fromtimestamp(epoch, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _iso_duration(seconds: float) -> str:
    """ISO 8601 duration as AWS prints ExecutionElapsedTime: ``PT0.541S``, ``PT1H0.271S``."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, frac = divmod(rest, 1000)
    out = "PT"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if secs or frac or not (hours or minutes):
        out += f"{secs}.{f'{frac:03d}'.rstrip('0')}S" if frac else f"{secs}S"
    return out


def _text(data: bytes) -> str:
    # The agent slices Go strings by byte; JSON encoding then shows a split character as U+FFFD.
    return data.decode("utf-8", errors="replace")


def _string_prefix(data: bytes, limit: int) -> bytes:
    """The agent's StringPrefix: at ``limit`` bytes or more, keep the head plus a marker."""
    if len(data) < limit:
        return data
    return data[: limit - len(TRUNCATED_SUFFIX)] + TRUNCATED_SUFFIX


def _plugin_output(stdout: bytes, stdout_size: int, stderr: bytes, stderr_size: int) -> bytes:
    """The agent's TruncateOutput: stdout and stderr in one 2,500-byte field.

    ``stdout``/``stderr`` are prefixes (at least 2,500 bytes when the stream is longer);
    the sizes are the streams' full lengths."""
    title = ERROR_TITLE if stderr_size > 0 else b""
    space = PLUGIN_OUTPUT_LIMIT - len(title)
    if stdout_size + stderr_size < space:
        return stdout + title + stderr
    if stdout_size > space // 2 and stderr_size > space // 2:
        cut = (space - len(ERROR_TRUNCATED) - len(OUTPUT_TRUNCATED)) // 2
        return stdout[:cut] + OUTPUT_TRUNCATED + title + stderr[:cut] + ERROR_TRUNCATED
    if stdout_size <= space // 2:
        cut = space - len(ERROR_TRUNCATED)
        return stdout + title + stderr[: cut - stdout_size] + ERROR_TRUNCATED
    cut = space - len(OUTPUT_TRUNCATED)
    return stdout[: cut - stderr_size] + OUTPUT_TRUNCATED + title + stderr


def _s3_join(*parts: str) -> str:
    """Go's path.Join, as the agent builds S3 keys (empty parts vanish, slashes collapse)."""
    joined = "/".join(p for p in parts if p)
    return posixpath.normpath(joined) if joined else ""


def _read_head(path: Path, limit: int) -> tuple[bytes, int]:
    """The first ``limit`` bytes of a file and its full size (0, b"" when it is missing)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(limit)
            fh.seek(0, os.SEEK_END)
            return head, fh.tell()
    except FileNotFoundError:
        return b"", 0


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process, zombies excluded (tests use it to check kills)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rpartition(b")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in (b"Z", b"X")


class FakeInstance:
    """A managed instance: a sandbox directory whose "agent" runs the commands sent to it."""

    def __init__(
        self,
        emulator: SSMEmulator,
        instance_id: str,
        root: Path,
        *,
        online: bool,
        path: str | None,
        env: Mapping[str, str] | None,
        set_home: bool,
        platform_name: str,
        platform_version: str,
        agent_version: str,
        reject_sends_for: float,
    ) -> None:
        self._emulator = emulator
        self.instance_id = instance_id
        self.root = root
        self.path = path if path is not None else SYSTEMD_PATH
        self.env: dict[str, str] = dict(env or {})
        self.set_home = set_home
        self.platform_name = platform_name
        self.platform_version = platform_version
        self.agent_version = agent_version
        self.registered = time.time()
        self._ping_status = "Online" if online else "ConnectionLost"
        self.last_ping = self.registered
        self._rejects_until = time.monotonic() + reject_sends_for
        number = zlib.crc32(instance_id.encode()) & 0xFFFF
        self.ip_address = f"10.0.{number >> 8 & 0xFF}.{number & 0xFF}"

    # -- agent connectivity -----------------------------------------------------------------

    @property
    def ping_status(self) -> str:
        return self._ping_status

    @ping_status.setter
    def ping_status(self, value: str) -> None:
        if value not in PING_STATUSES:
            raise ValueError(f"ping status must be one of {PING_STATUSES}, not {value!r}")
        with self._emulator._cond:
            if self._ping_status == "Online" and value != "Online":
                self.last_ping = time.time()
            self._ping_status = value
            self._emulator._cond.notify_all()

    @property
    def online(self) -> bool:
        """Whether the agent is connected. Set it to False to take the agent offline
        (PingStatus ConnectionLost; nothing new is delivered, nothing is reported)."""
        return self._ping_status == "Online"

    @online.setter
    def online(self, value: bool) -> None:
        self.ping_status = "Online" if value else "ConnectionLost"

    def _accepts_sends(self) -> bool:
        return self._ping_status != "Inactive" and time.monotonic() >= self._rejects_until

    # -- where things land ------------------------------------------------------------------

    def orchestration_dir(self, command_id: str) -> Path:
        """Where the agent writes ``_script.sh``, ``stdout`` and ``stderr`` for a command."""
        return self.root / ".ssm" / "orchestration" / command_id / PLUGIN_DIR / STEP_DIR

    @property
    def computer_name(self) -> str:
        domain = "ec2.internal" if self._emulator.region == "us-east-1" else "compute.internal"
        return f"ip-{self.ip_address.replace('.', '-')}.{domain}"

    def __repr__(self) -> str:
        return f"FakeInstance({self.instance_id!r}, {self._ping_status}, root={str(self.root)!r})"


@dataclass(eq=False)
class _Invocation:
    command: _Command
    instance: FakeInstance
    status: str = "Pending"
    details: str = "Pending"
    response_code: int = -1
    started: float | None = None  # epoch seconds
    ended: float | None = None
    delivered: bool = False
    cancel_requested: bool = False
    cancel_due: float | None = None  # monotonic
    get_polls: int = 0
    stdout_content: str = ""
    stderr_content: str = ""
    plugin_output: str = ""
    output_closed: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(eq=False)
class _Command:
    command_id: str
    commands: list[str]
    working_directory: str
    execution_timeout: int  # what the agent applies, in (unscaled) seconds
    timeout_seconds: int
    requested: float  # epoch
    requested_mono: float
    delivery_deadline: float  # monotonic: not delivered by then, never runs
    expires_mono: float
    expires_epoch: float
    request: Json
    parameters: Json
    document_version: str
    comment: str
    bucket: str
    key_prefix: str
    s3_region: str
    max_concurrency: str
    max_errors: str
    concurrency_limit: int
    error_limit: int
    instance_ids: list[str]
    invocations: list[_Invocation] = field(default_factory=list)
    cancel_requested: bool = False
    stopped_by_errors: bool = False
    list_polls: int = 0


@dataclass
class _InjectedError:
    operation: str
    code: str
    message: str
    status: int
    remaining: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, emulator: SSMEmulator) -> None:
        self.emulator = emulator
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, payload = self.server.emulator._handle(self.headers.get("X-Amz-Target", ""), raw)
        self._reply(status, payload)

    def do_GET(self) -> None:
        self._reply(404, {"__type": "UnknownOperationException", "message": "POST / only"})

    def _reply(self, status: int, payload: Json) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class SSMEmulator:
    """A loopback SSM endpoint with fake managed instances that really run their scripts.

    Use ``start()``/``stop()`` or ``with SSMEmulator(...) as emulator:``. Attributes:
    ``endpoint``, ``region``, ``instances`` (id -> FakeInstance), ``calls`` (every request
    as (operation, body)), ``s3_upload_errors``; knobs ``not_found_polls``,
    ``list_not_found_polls``, ``delivery_delay``, ``cancel_delay``, ``report_delay`` and
    ``timeout_scale`` may be changed at any time.
    """

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        work_dir: Path | str | None = None,
        s3_endpoint: str | None = None,
        s3_access_key: str | None = None,
        s3_secret_key: str | None = None,
        s3_client: Any = None,
        s3_client_factory: Callable[[], Any] | None = None,
        not_found_polls: int = 2,
        list_not_found_polls: int = 1,
        delivery_delay: float = 0.2,
        cancel_delay: float = 0.2,
        report_delay: float = 0.0,
        timeout_scale: float = 1.0,
    ) -> None:
        self.region = region
        self.not_found_polls = not_found_polls
        self.list_not_found_polls = list_not_found_polls
        self.delivery_delay = delivery_delay
        self.cancel_delay = cancel_delay
        self.report_delay = report_delay
        self.timeout_scale = timeout_scale
        self.instances: dict[str, FakeInstance] = {}
        self.calls: list[tuple[str, Json]] = []
        self.s3_upload_errors: list[str] = []
        self._s3_client = s3_client
        self._s3_client_factory = s3_client_factory
        self._s3_lock = threading.Lock()
        self._s3_settings = (s3_endpoint, s3_access_key, s3_secret_key)
        self._own_work_dir = work_dir is None
        self._work_dir = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="ssm-emu-"))
        self._work_dir.mkdir(parents=True, exist_ok=True)
        self._cond = threading.Condition(threading.RLock())
        self._commands: dict[str, _Command] = {}
        self._threads: list[threading.Thread] = []
        self._injected: list[_InjectedError] = []
        self._stopping = False
        self._server: _Server | None = None
        self._server_thread: threading.Thread | None = None
        self._ops: dict[str, Callable[[Json], Json]] = {
            "SendCommand": self._send_command,
            "GetCommandInvocation": self._get_command_invocation,
            "ListCommandInvocations": self._list_command_invocations,
            "ListCommands": self._list_commands,
            "CancelCommand": self._cancel_command,
            "DescribeInstanceInformation": self._describe_instance_information,
        }

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> SSMEmulator:
        if self._server is not None:
            return self
        self._server = _Server(self)
        self._server_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="ssm-emulator",
            daemon=True,
        )
        self._server_thread.start()
        return self

    def stop(self) -> None:
        """Kill every script still running, stop the server, remove a work dir we created."""
        with self._cond:
            self._stopping = True
            procs = [
                inv.proc for cmd in self._commands.values() for inv in cmd.invocations if inv.proc is not None
            ]
            self._cond.notify_all()
        for proc in procs:
            self._kill_group(proc)
        for thread in list(self._threads):
            thread.join(timeout=5)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._server_thread is not None:
            self._server_thread.join(timeout=5)
        if self._own_work_dir:
            shutil.rmtree(self._work_dir, ignore_errors=True)

    def __enter__(self) -> SSMEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the SSM emulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def env(self) -> dict[str, str]:
        """Environment variables that point botocore (and runctl, and the AWS CLI) at us."""
        return {
            "AWS_ENDPOINT_URL_SSM": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def client(self, **config: Any) -> Any:
        """A plain botocore ``ssm`` client for this emulator (dummy credentials)."""
        import botocore.session
        from botocore.config import Config

        return botocore.session.Session().create_client(
            "ssm",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id="emulator",
            aws_secret_access_key="emulator",
            config=Config(**config) if config else None,
        )

    # -- test controls ----------------------------------------------------------------------

    def add_instance(
        self,
        instance_id: str | None = None,
        *,
        online: bool = True,
        path: str | None = None,
        env: Mapping[str, str] | None = None,
        set_home: bool = True,
        platform_name: str = "Ubuntu",
        platform_version: str = "22.04",
        agent_version: str = "3.3.1142.0",
        reject_sends_for: float = 0.0,
    ) -> FakeInstance:
        """Register a managed instance. ``path`` is its PATH (default systemd's), ``env`` adds
        variables (its "instance profile": AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, ...).
        ``reject_sends_for`` seconds after registration SendCommand answers InvalidInstanceId,
        as a freshly started agent does for a while."""
        if instance_id is None:
            instance_id = "i-0" + uuid.uuid4().hex[:16]
        if not INSTANCE_ID_PATTERN.fullmatch(instance_id):
            raise ValueError(f"not an EC2 or managed instance id: {instance_id!r}")
        with self._cond:
            if instance_id in self.instances:
                raise ValueError(f"instance {instance_id} already exists")
            root = self._work_dir / instance_id
            root.mkdir(parents=True, exist_ok=True)
            instance = FakeInstance(
                self,
                instance_id,
                root,
                online=online,
                path=path,
                env=env,
                set_home=set_home,
                platform_name=platform_name,
                platform_version=platform_version,
                agent_version=agent_version,
                reject_sends_for=reject_sends_for,
            )
            self.instances[instance_id] = instance
            return instance

    def remove_instance(self, instance_id: str) -> None:
        """Deregister an instance: it is no longer listed and sends to it are refused."""
        with self._cond:
            self.instances.pop(instance_id)

    def count(self, operation: str) -> int:
        with self._cond:
            return sum(1 for op, _ in self.calls if op == operation)

    def requests(self, operation: str) -> list[Json]:
        with self._cond:
            return [body for op, body in self.calls if op == operation]

    def inject_error(
        self,
        operation: str,
        code: str = "ThrottlingException",
        message: str = "Rate exceeded",
        *,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``operation`` with an error (500 for
        InternalServerError, else 400), before any other processing."""
        with self._cond:
            status = 500 if code in ("InternalServerError", "ServiceUnavailable") else 400
            self._injected.append(_InjectedError(operation, code, message, status, times))

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until every invocation has reached a terminal status."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while any(not inv.terminal for cmd in self._commands.values() for inv in cmd.invocations):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("SSM emulator invocations still running")
                self._cond.wait(timeout=min(left, 0.1))

    # -- HTTP dispatch ----------------------------------------------------------------------

    def _handle(self, target: str, raw: bytes) -> tuple[int, Json]:
        op = target[len("AmazonSSM.") :] if target.startswith("AmazonSSM.") else ""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        with self._cond:
            self.calls.append((op or target, body if isinstance(body, dict) else {}))
            for injected in self._injected:
                if injected.operation == op and injected.remaining > 0:
                    injected.remaining -= 1
                    return injected.status, {"__type": injected.code, "message": injected.message}
        if not isinstance(body, dict):
            return 400, {"__type": "SerializationException", "message": "request body is not a JSON object"}
        handler = self._ops.get(op)
        if handler is None:
            return 400, {
                "__type": "UnknownOperationException",
                "message": f"The emulator does not implement {target!r}",
            }
        try:
            return 200, handler(body)
        except SSMError as exc:
            return exc.status, {"__type": exc.code, "message": exc.message}
        except Exception:
            return 500, {"__type": "InternalServerError", "message": traceback.format_exc()}

    # -- SendCommand ------------------------------------------------------------------------

    def _send_command(self, body: Json) -> Json:
        document = str(body.get("DocumentName", ""))
        if document != DOCUMENT_NAME and not document.endswith(":document/" + DOCUMENT_NAME):
            raise SSMError("InvalidDocument", f"Document {document} does not exist in your account")
        version = str(body.get("DocumentVersion", ""))
        if version not in ("", "$DEFAULT", "$LATEST", "1"):
            raise SSMError("InvalidDocumentVersion", f"Document version {version} is not valid")
        commands, working_directory, execution_timeout = self._document_parameters(body.get("Parameters"))
        timeout_seconds = int(body.get("TimeoutSeconds", DEFAULT_DELIVERY_TIMEOUT))
        # AWS's minimum is 30 (ValidationException below it); the emulator accepts less so tests
        # can be quick. Prefer timeout_scale, which keeps the request valid for AWS.
        if timeout_seconds < 1 or timeout_seconds > MAX_DELIVERY_TIMEOUT:
            raise _validation(
                f"Value '{timeout_seconds}' at 'timeoutSeconds' failed to satisfy constraint: "
                f"Member must have value between 30 and {MAX_DELIVERY_TIMEOUT}"
            )
        comment = str(body.get("Comment", ""))
        if len(comment) > 100:
            raise _validation(
                "Value at 'comment' failed to satisfy constraint: Member must have length <= 100"
            )
        max_concurrency = str(body.get("MaxConcurrency", "50"))
        max_errors = str(body.get("MaxErrors", "0"))
        if not MAX_CONCURRENCY_PATTERN.fullmatch(max_concurrency):
            raise _validation(f"Value '{max_concurrency}' at 'maxConcurrency' failed to satisfy constraint")
        if not MAX_ERRORS_PATTERN.fullmatch(max_errors):
            raise _validation(f"Value '{max_errors}' at 'maxErrors' failed to satisfy constraint")
        bucket = str(body.get("OutputS3BucketName", ""))
        if bucket and not 3 <= len(bucket) <= 63:
            raise _validation(f"Value '{bucket}' at 'outputS3BucketName' failed to satisfy constraint")
        instance_ids = self._target_instance_ids(body)

        with self._cond:
            for instance_id in instance_ids:
                instance = self.instances.get(instance_id)
                if instance is None or not instance._accepts_sends():
                    raise SSMError(
                        "InvalidInstanceId",
                        f"Instances [[{instance_id}]] not in a valid state for account {ACCOUNT_ID}",
                    )
            now, mono = time.time(), time.monotonic()
            scale = self.timeout_scale
            total = (timeout_seconds + execution_timeout) * scale
            count = len(instance_ids)
            cmd = _Command(
                command_id=str(uuid.uuid4()),
                commands=commands,
                working_directory=working_directory,
                execution_timeout=execution_timeout,
                timeout_seconds=timeout_seconds,
                requested=now,
                requested_mono=mono,
                delivery_deadline=mono + timeout_seconds * scale,
                expires_mono=mono + total,
                expires_epoch=now + total,
                request=body,
                parameters=dict(body.get("Parameters") or {}),
                document_version=version,
                comment=comment,
                bucket=bucket,
                key_prefix=str(body.get("OutputS3KeyPrefix", "")),
                s3_region=str(body.get("OutputS3Region") or self.region),
                max_concurrency=max_concurrency,
                max_errors=max_errors,
                concurrency_limit=self._limit(max_concurrency, count, at_least_one=True),
                error_limit=self._limit(max_errors, count, at_least_one=False),
                instance_ids=instance_ids,
            )
            cmd.invocations = [_Invocation(cmd, self.instances[i]) for i in instance_ids]
            self._commands[cmd.command_id] = cmd
            self._spawn(self._dispatch, cmd, name=f"ssm-dispatch-{cmd.command_id[:8]}")
            return {"Command": self._command_json(cmd)}

    def _document_parameters(self, raw: object) -> tuple[list[str], str, int]:
        """Validate AWS-RunShellScript's parameters as the service does; return the agent's
        view: the command lines, the working directory and the execution timeout it applies."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise SSMError("InvalidParameters", "Parameters must be a map of parameter name to values")
        known = ("commands", "workingDirectory", "executionTimeout")
        for name, values in raw.items():
            if name not in known:
                raise SSMError(
                    "InvalidParameters", f"Parameter {name!r} is not defined in document {DOCUMENT_NAME}"
                )
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise SSMError("InvalidParameters", f"Parameter {name!r} must be a list of strings")
        commands = list(raw.get("commands") or [])
        if not commands:
            raise SSMError("InvalidParameters", "Parameter 'commands' requires at least 1 item(s)")
        for name in ("workingDirectory", "executionTimeout"):
            if len(raw.get(name) or []) > 1:
                raise SSMError("InvalidParameters", f"Parameter {name!r} is a String and takes one value")
        working_directory = (raw.get("workingDirectory") or [""])[0]
        if len(working_directory) > 4096:
            raise SSMError("InvalidParameters", "Parameter 'workingDirectory' exceeds 4096 characters")
        timeout_value = (raw.get("executionTimeout") or [str(DEFAULT_EXECUTION_TIMEOUT)])[0]
        if not EXECUTION_TIMEOUT_PATTERN.fullmatch(timeout_value):
            raise SSMError(
                "InvalidParameters",
                f"Parameter value {timeout_value!r} for 'executionTimeout' does not match the pattern",
            )
        execution_timeout = int(timeout_value)
        if not AGENT_MIN_EXECUTION_TIMEOUT <= execution_timeout <= MAX_EXECUTION_TIMEOUT:
            execution_timeout = DEFAULT_EXECUTION_TIMEOUT  # what amazon-ssm-agent does with it
        return commands, working_directory, execution_timeout

    def _target_instance_ids(self, body: Json) -> list[str]:
        ids = body.get("InstanceIds")
        targets = body.get("Targets")
        if ids is not None and targets:
            raise _validation("Specify either InstanceIds or Targets, not both")
        if targets:
            ids = []
            for target in targets:
                if str(target.get("Key", "")).lower() != "instanceids":
                    raise SSMError(
                        "InvalidParameters", "The emulator supports only Targets with Key InstanceIds"
                    )
                ids.extend(target.get("Values") or [])
        if not ids:
            raise _validation("Value null at 'instanceIds' failed to satisfy constraint: specify instances")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise SSMError("SerializationException", "InstanceIds must be a list of strings")
        if len(ids) > MAX_INSTANCE_IDS:
            raise _validation(
                f"Value '{ids}' at 'instanceIds' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_INSTANCE_IDS}"
            )
        if len(set(ids)) != len(ids):
            raise SSMError("DuplicateInstanceId", "Instance IDs must be unique")
        for instance_id in ids:
            if not INSTANCE_ID_PATTERN.fullmatch(instance_id):
                raise SSMError(
                    "InvalidInstanceId",
                    f"Instances [[{instance_id}]] not in a valid state for account {ACCOUNT_ID}",
                )
        return list(ids)

    @staticmethod
    def _limit(value: str, count: int, *, at_least_one: bool) -> int:
        if value.endswith("%"):
            limit = math.floor(count * int(value[:-1]) / 100)
            return max(1, limit) if at_least_one else limit
        return int(value)

    # -- delivery, execution, reporting -----------------------------------------------------

    def _spawn(self, target: Callable[..., None], *args: Any, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _dispatch(self, cmd: _Command) -> None:
        """The service side of one command: deliver invocations when their agent is online and
        a concurrency slot is free, cancel undelivered ones, expire what never got reported."""
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                wake = now + 0.5
                running = sum(1 for inv in cmd.invocations if inv.delivered and not inv.terminal)
                for inv in cmd.invocations:
                    if inv.terminal:
                        continue
                    if inv.delivered:
                        if not inv.instance.online and now >= cmd.expires_mono:
                            self._finish(inv, "TimedOut", "DeliveryTimedOut", -1)
                        elif not inv.instance.online:
                            wake = min(wake, cmd.expires_mono)
                        continue
                    if inv.cancel_requested:
                        self._finish(inv, "Cancelled", "Cancelled", -1)
                    elif cmd.stopped_by_errors:
                        self._finish(inv, "Cancelled", "Terminated", -1)
                    elif now >= cmd.expires_mono:
                        self._finish(inv, "TimedOut", "DeliveryTimedOut", -1)
                    elif now >= cmd.delivery_deadline:
                        wake = min(wake, cmd.expires_mono)
                    elif now < cmd.requested_mono + self.delivery_delay:
                        wake = min(wake, cmd.requested_mono + self.delivery_delay)
                    elif inv.instance.online and running < cmd.concurrency_limit:
                        running += 1
                        inv.delivered = True
                        inv.status = inv.details = "InProgress"
                        inv.started = time.time()
                        self._spawn(self._execute, inv, name=f"ssm-run-{inv.instance.instance_id}")
                    else:
                        wake = min(wake, cmd.delivery_deadline)
                if all(inv.terminal for inv in cmd.invocations):
                    return
                self._cond.wait(timeout=max(0.005, wake - time.monotonic()))

    def _finish(self, inv: _Invocation, status: str, details: str, code: int) -> None:
        """Record a terminal status (call with the lock held)."""
        inv.status, inv.details, inv.response_code = status, details, code
        inv.ended = time.time()
        cmd = inv.command
        if sum(1 for i in cmd.invocations if self._is_error(i)) > cmd.error_limit:
            cmd.stopped_by_errors = True
        self._cond.notify_all()

    @staticmethod
    def _is_error(inv: _Invocation) -> bool:
        """What counts against MaxErrors: Failed and ExecutionTimedOut invocations."""
        return inv.status == "Failed" or inv.details == "ExecutionTimedOut"

    def _execute(self, inv: _Invocation) -> None:
        try:
            self._run_invocation(inv)
        except Exception:
            with self._cond:
                if not inv.terminal:
                    inv.stderr_content = f"ssm emulator failure:\n{traceback.format_exc()}"[:STDERR_LIMIT]
                    self._finish(inv, "Failed", "Failed", 1)
            raise

    def _run_invocation(self, inv: _Invocation) -> None:
        """The agent side of one invocation: write the script, run it, collect, upload, report."""
        cmd, instance = inv.command, inv.instance
        orchestration = instance.orchestration_dir(cmd.command_id)
        orchestration.mkdir(parents=True, exist_ok=True)
        script = orchestration / "_script.sh"
        with _SPAWN_LOCK:  # see _SPAWN_LOCK
            script.write_text("\n".join(cmd.commands) + "\n")
        script.chmod(0o700)
        stdout_path, stderr_path = orchestration / "stdout", orchestration / "stderr"
        stdout_path.write_bytes(b"")
        stderr_path.write_bytes(b"")
        cwd = self._working_directory(cmd, orchestration)
        try:
            with _SPAWN_LOCK:
                proc = subprocess.Popen(
                    ["/bin/sh", "-c", shlex.quote(str(script))],
                    cwd=cwd,
                    env=self._script_env(instance, cmd),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    process_group=0,
                )
        except OSError as exc:
            # Go's exec reports a bad working directory as "chdir <dir>: <errno text>"; the
            # agent writes "failed to run commands: <that>" to stderr and fails with exit 1.
            reason = exc.strerror.lower() if exc.strerror else str(exc)
            what = f"chdir {cwd}: {reason}" if exc.filename in (cwd, str(cwd)) else str(exc)
            with open(stderr_path, "ab") as fh:
                fh.write(f"failed to run commands: {what}".encode())
            outcome = ("Failed", "Failed", 1)
        else:
            outcome = self._supervise(inv, proc, stdout_path, stderr_path)
        self._collect(inv, stdout_path, stderr_path)
        self._upload(inv, stdout_path, stderr_path)
        if self.report_delay:
            time.sleep(self.report_delay)
        with self._cond:
            while not inv.terminal and not instance.online and not self._stopping:
                self._cond.wait(timeout=0.5)  # the agent cannot report while it is offline
            if not inv.terminal and not self._stopping:
                self._finish(inv, *outcome)
            inv.proc = None

    def _working_directory(self, cmd: _Command, orchestration: Path) -> str:
        wanted = cmd.working_directory
        if not wanted:
            return str(orchestration)
        if os.path.isabs(wanted):
            return wanted
        downloads = orchestration.parent / "downloads" / wanted
        return str(downloads) if downloads.exists() else str(orchestration)

    def _script_env(self, instance: FakeInstance, cmd: _Command) -> dict[str, str]:
        env = {"PATH": instance.path, "LANG": "C.UTF-8"}
        if instance.set_home:
            env["HOME"] = str(instance.root)
        env.update(instance.env)
        env.update(
            {
                "SSM_COMMAND_ID": cmd.command_id,
                "AWS_SSM_INSTANCE_ID": instance.instance_id,
                "AWS_SSM_REGION_NAME": self.region,
                "AWS_SSM_PLATFORM_NAME": instance.platform_name,
                "AWS_SSM_PLATFORM_VERSION": instance.platform_version,
            }
        )
        return env

    def _supervise(
        self, inv: _Invocation, proc: subprocess.Popen[bytes], stdout_path: Path, stderr_path: Path
    ) -> tuple[str, str, int]:
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            threading.Thread(target=self._pump, args=(inv, proc.stdout, stdout_path), daemon=True),
            threading.Thread(target=self._pump, args=(inv, proc.stderr, stderr_path), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        deadline = time.monotonic() + inv.command.execution_timeout * self.timeout_scale
        killed = False
        with self._cond:
            inv.proc = proc
            while True:
                if proc.poll() is not None and not any(p.is_alive() for p in pumps):
                    code = proc.returncode
                    outcome = ("Success", "Success", 0) if code == 0 else ("Failed", "Failed", max(code, -1))
                    break
                now = time.monotonic()
                if self._stopping:
                    killed, outcome = True, ("Failed", "Failed", 1)
                    break
                if now >= deadline:
                    killed, outcome = True, ("TimedOut", "ExecutionTimedOut", STOPPED_PREEMPTIVELY_EXIT_CODE)
                    break
                cancel_due = inv.cancel_due if inv.cancel_requested and inv.instance.online else None
                if cancel_due is not None and now >= cancel_due:
                    killed, outcome = True, ("Cancelled", "Cancelled", STOPPED_PREEMPTIVELY_EXIT_CODE)
                    break
                self._cond.wait(timeout=0.02)
            if killed:
                inv.output_closed = True  # the agent stops reading the streams when it kills
        if killed:
            self._kill_group(proc)
            proc.wait()
        for pump in pumps:
            pump.join(timeout=1.0 if killed else None)
        proc.stdout.close()
        proc.stderr.close()
        return outcome

    @staticmethod
    def _pump(inv: _Invocation, source: IO[bytes], path: Path) -> None:
        with open(path, "ab", buffering=0) as sink:
            read = getattr(source, "read1", source.read)
            while chunk := read(65536):
                if not inv.output_closed:
                    sink.write(chunk)

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def _collect(self, inv: _Invocation, stdout_path: Path, stderr_path: Path) -> None:
        stdout, stdout_size = _read_head(stdout_path, STDOUT_LIMIT)
        stderr, stderr_size = _read_head(stderr_path, STDOUT_LIMIT)
        with self._cond:
            inv.stdout_content = _text(_string_prefix(stdout, STDOUT_LIMIT))
            inv.stderr_content = _text(_string_prefix(stderr, STDERR_LIMIT))
            inv.plugin_output = _text(_plugin_output(stdout, stdout_size, stderr, stderr_size))

    def _upload(self, inv: _Invocation, stdout_path: Path, stderr_path: Path) -> None:
        cmd = inv.command
        if not cmd.bucket or self._stopping:
            return
        for path in (stdout_path, stderr_path):
            if path.stat().st_size == 0:
                continue  # the agent uploads only non-empty streams
            key = self._s3_key(cmd, inv.instance.instance_id, path.name)
            try:
                with open(path, "rb") as fh:
                    self._s3().put_object(Bucket=cmd.bucket, Key=key, Body=fh)
            except Exception as exc:
                with self._cond:
                    self.s3_upload_errors.append(f"s3://{cmd.bucket}/{key}: {exc}")

    def _s3(self) -> Any:
        with self._s3_lock:
            return self._make_s3_client()

    def _make_s3_client(self) -> Any:
        if self._s3_client is None and self._s3_client_factory is not None:
            self._s3_client = self._s3_client_factory()
        if self._s3_client is None:
            endpoint, access_key, secret_key = self._s3_settings
            if endpoint is None:
                raise RuntimeError("the SSM emulator was given no S3 endpoint or client")
            import botocore.session
            from botocore.config import Config
            from botocore.handlers import add_expect_header

            client = botocore.session.Session().create_client(
                "s3",
                endpoint_url=endpoint,
                region_name=self.region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                config=Config(s3={"addressing_style": "path"}),
            )
            client.meta.events.unregister("before-call.s3", add_expect_header)
            self._s3_client = client
        return self._s3_client

    @staticmethod
    def _s3_key(cmd: _Command, instance_id: str, stream: str) -> str:
        return _s3_join(cmd.key_prefix, cmd.command_id, instance_id, PLUGIN_DIR, STEP_DIR, stream)

    def _s3_url(self, cmd: _Command, instance_id: str, stream: str) -> str:
        if not cmd.bucket:
            return ""
        return (
            f"https://s3.{cmd.s3_region}.amazonaws.com/{cmd.bucket}/{self._s3_key(cmd, instance_id, stream)}"
        )

    # -- GetCommandInvocation ---------------------------------------------------------------

    def _get_command_invocation(self, body: Json) -> Json:
        command_id = str(body.get("CommandId", ""))
        instance_id = str(body.get("InstanceId", ""))
        if not COMMAND_ID_PATTERN.fullmatch(command_id):
            raise _validation(f"Value '{command_id}' at 'commandId' failed to satisfy constraint: length 36")
        if not INSTANCE_ID_PATTERN.fullmatch(instance_id):
            raise SSMError("InvalidInstanceId", f"Instance {instance_id} is not valid")
        plugin = body.get("PluginName")
        if plugin is not None and plugin != PLUGIN_NAME:
            raise SSMError("InvalidPluginName", f"Plugin {plugin} is not part of the document")
        with self._cond:
            inv = self._invocation(command_id, instance_id)
            if inv is None:
                raise SSMError("InvocationDoesNotExist")
            inv.get_polls += 1
            if inv.get_polls <= self.not_found_polls:
                raise SSMError("InvocationDoesNotExist")
            cmd = inv.command
            elapsed = ""
            if inv.started is not None and inv.ended is not None and inv.delivered:
                elapsed = _iso_duration(inv.ended - inv.started)
            return {
                "CommandId": cmd.command_id,
                "InstanceId": instance_id,
                "Comment": cmd.comment,
                "DocumentName": DOCUMENT_NAME,
                "DocumentVersion": cmd.document_version or "$DEFAULT",
                "PluginName": PLUGIN_NAME,
                "ResponseCode": inv.response_code,
                "ExecutionStartDateTime": _iso(inv.started if inv.delivered else None),
                "ExecutionElapsedTime": elapsed,
                "ExecutionEndDateTime": _iso(inv.ended if inv.delivered and inv.terminal else None),
                "Status": inv.status,
                "StatusDetails": inv.details,
                "StandardOutputContent": inv.stdout_content if inv.terminal else "",
                "StandardOutputUrl": self._s3_url(cmd, instance_id, "stdout"),
                "StandardErrorContent": inv.stderr_content if inv.terminal else "",
                "StandardErrorUrl": self._s3_url(cmd, instance_id, "stderr"),
                "CloudWatchOutputConfig": self._cloudwatch(cmd),
            }

    def _invocation(self, command_id: str, instance_id: str) -> _Invocation | None:
        cmd = self._commands.get(command_id)
        if cmd is None:
            return None
        return next((i for i in cmd.invocations if i.instance.instance_id == instance_id), None)

    # -- ListCommandInvocations / ListCommands ----------------------------------------------

    def _list_command_invocations(self, body: Json) -> Json:
        command_id = body.get("CommandId")
        instance_id = body.get("InstanceId")
        limit = self._max_results(body, 1, 50)
        details = bool(body.get("Details", False))
        with self._cond:
            if command_id is not None:
                cmd = self._commands.get(str(command_id))
                commands = [cmd] if cmd is not None else []
                if cmd is not None:
                    cmd.list_polls += 1
                    if cmd.list_polls <= self.list_not_found_polls:
                        commands = []
            else:
                commands = sorted(self._commands.values(), key=lambda c: c.requested, reverse=True)
            invocations = [
                inv
                for cmd in commands
                for inv in cmd.invocations
                if instance_id is None or inv.instance.instance_id == instance_id
            ]
            invocations = [inv for inv in invocations if self._matches(inv, body.get("Filters") or [])]
            page, token = self._page(invocations, body.get("NextToken"), limit)
            result: Json = {"CommandInvocations": [self._invocation_json(inv, details) for inv in page]}
            if token:
                result["NextToken"] = token
            return result

    def _matches(self, inv: _Invocation, filters: Sequence[Json]) -> bool:
        for flt in filters:
            key, value = flt.get("key"), str(flt.get("value", ""))
            if key == "Status":
                if inv.status != value:
                    return False
            elif key == "DocumentName":
                if value != DOCUMENT_NAME:
                    return False
            elif key in ("InvokedAfter", "InvokedBefore"):
                when = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
                if (key == "InvokedAfter") != (inv.command.requested >= when):
                    return False
            elif key == "ExecutionStage":
                if value not in ("Executing", "Complete"):
                    raise SSMError("InvalidFilterValue", f"ExecutionStage {value} is not valid")
                if (value == "Complete") != inv.terminal:
                    return False
            else:
                raise SSMError("InvalidFilterKey", f"Filter key {key} is not valid")
        return True

    def _list_commands(self, body: Json) -> Json:
        command_id = body.get("CommandId")
        instance_id = body.get("InstanceId")
        limit = self._max_results(body, 1, 50)
        with self._cond:
            if command_id is not None:
                cmd = self._commands.get(str(command_id))
                if cmd is None:
                    raise SSMError("InvalidCommandId")
                commands = [cmd]
            else:
                commands = sorted(self._commands.values(), key=lambda c: c.requested, reverse=True)
            if instance_id is not None:
                commands = [c for c in commands if instance_id in c.instance_ids]
            page, token = self._page(commands, body.get("NextToken"), limit)
            result: Json = {"Commands": [self._command_json(c) for c in page]}
            if token:
                result["NextToken"] = token
            return result

    @staticmethod
    def _max_results(body: Json, low: int, high: int) -> int:
        value = int(body.get("MaxResults", high))
        if not low <= value <= high:
            raise _validation(
                f"Value '{value}' at 'maxResults' failed to satisfy constraint: "
                f"Member must have value between {low} and {high}"
            )
        return value

    @staticmethod
    def _page(items: Sequence[Any], token: object, limit: int) -> tuple[Sequence[Any], str | None]:
        start = 0
        if token is not None:
            try:
                start = int(json.loads(base64.b64decode(str(token), validate=True))["offset"])
            except (ValueError, KeyError, TypeError) as exc:
                raise SSMError("InvalidNextToken", "The specified token isn't valid") from exc
        end = start + limit
        next_token = (
            base64.b64encode(json.dumps({"offset": end}).encode()).decode() if end < len(items) else None
        )
        return items[start:end], next_token

    # -- CancelCommand ----------------------------------------------------------------------

    def _cancel_command(self, body: Json) -> Json:
        command_id = str(body.get("CommandId", ""))
        with self._cond:
            cmd = self._commands.get(command_id)
            if cmd is None:
                raise SSMError("InvalidCommandId")
            wanted = body.get("InstanceIds")
            chosen = cmd.invocations
            if wanted:
                if len(set(wanted)) != len(wanted):
                    raise SSMError("DuplicateInstanceId")
                chosen = []
                for instance_id in wanted:
                    inv = self._invocation(command_id, instance_id)
                    if inv is None:
                        raise SSMError(
                            "InvalidInstanceId", f"Instance {instance_id} is not part of the command"
                        )
                    chosen.append(inv)
            else:
                cmd.cancel_requested = True
            due = time.monotonic() + self.cancel_delay
            for inv in chosen:
                if inv.terminal or inv.cancel_requested:
                    continue
                inv.cancel_requested = True
                if inv.delivered:
                    inv.status = inv.details = "Cancelling"
                    inv.cancel_due = due
            self._cond.notify_all()
            return {}

    # -- DescribeInstanceInformation --------------------------------------------------------

    def _describe_instance_information(self, body: Json) -> Json:
        limit = self._max_results(body, 5, 50)
        criteria: list[tuple[str, list[str]]] = []
        for flt in body.get("InstanceInformationFilterList") or []:
            criteria.append((str(flt.get("key")), [str(v) for v in flt.get("valueSet") or []]))
        for flt in body.get("Filters") or []:
            criteria.append((str(flt.get("Key")), [str(v) for v in flt.get("Values") or []]))
        for key, values in criteria:
            if key not in ("InstanceIds", "PingStatus", "PlatformTypes", "ResourceType", "AgentVersion"):
                raise SSMError("InvalidFilterKey", f"The emulator does not support the filter key {key}")
            if not values:
                raise SSMError("InvalidInstanceInformationFilterValue", f"Filter {key} needs values")
            if key == "InstanceIds":
                for value in values:
                    if not INSTANCE_ID_PATTERN.fullmatch(value):
                        raise SSMError(
                            "InvalidInstanceInformationFilterValue", f"{value} is not an instance id"
                        )
        with self._cond:
            listed = [
                inst
                for inst in self.instances.values()
                if all(self._instance_field(inst, key) in values for key, values in criteria)
            ]
            page, token = self._page(listed, body.get("NextToken"), limit)
            result: Json = {"InstanceInformationList": [self._instance_json(inst) for inst in page]}
            if token:
                result["NextToken"] = token
            return result

    @staticmethod
    def _instance_field(inst: FakeInstance, key: str) -> str:
        return {
            "InstanceIds": inst.instance_id,
            "PingStatus": inst.ping_status,
            "PlatformTypes": "Linux",
            "ResourceType": "ManagedInstance" if inst.instance_id.startswith("mi-") else "EC2Instance",
            "AgentVersion": inst.agent_version,
        }[key]

    def _instance_json(self, inst: FakeInstance) -> Json:
        managed = inst.instance_id.startswith("mi-")
        return {
            "InstanceId": inst.instance_id,
            "PingStatus": inst.ping_status,
            "LastPingDateTime": time.time() if inst.online else inst.last_ping,
            "AgentVersion": inst.agent_version,
            "IsLatestVersion": False,
            "PlatformType": "Linux",
            "PlatformName": inst.platform_name,
            "PlatformVersion": inst.platform_version,
            "ResourceType": "ManagedInstance" if managed else "EC2Instance",
            "IPAddress": inst.ip_address,
            "ComputerName": inst.computer_name,
            "SourceId": inst.instance_id,
            "SourceType": "AWS::SSM::ManagedInstance" if managed else "AWS::EC2::Instance",
        }

    # -- response shapes --------------------------------------------------------------------

    @staticmethod
    def _cloudwatch(cmd: _Command) -> Json:
        config = cmd.request.get("CloudWatchOutputConfig") or {}
        return {
            "CloudWatchLogGroupName": str(config.get("CloudWatchLogGroupName", "")),
            "CloudWatchOutputEnabled": bool(config.get("CloudWatchOutputEnabled", False)),
        }

    @staticmethod
    def _notification(cmd: _Command) -> Json:
        config = cmd.request.get("NotificationConfig") or {}
        return {
            "NotificationArn": str(config.get("NotificationArn", "")),
            "NotificationEvents": list(config.get("NotificationEvents") or []),
            "NotificationType": str(config.get("NotificationType", "")),
        }

    def _command_status(self, cmd: _Command) -> tuple[str, str]:
        invs = cmd.invocations
        if not all(inv.terminal for inv in invs):
            if cmd.cancel_requested:
                return "Cancelling", "Cancelling"
            if all(inv.status == "Pending" for inv in invs):
                return "Pending", "Pending"
            return "InProgress", "InProgress"
        if cmd.cancel_requested and any(inv.status == "Cancelled" for inv in invs):
            return "Cancelled", "Cancelled"
        if all(inv.status == "Success" for inv in invs):
            return "Success", "Success"
        failed = [inv for inv in invs if self._is_error(inv)]
        if len(failed) > cmd.error_limit:
            if all(inv.details == "ExecutionTimedOut" for inv in failed):
                return "TimedOut", "ExecutionTimedOut"
            return "Failed", "Failed"
        if all(inv.details == "DeliveryTimedOut" for inv in invs):
            return "TimedOut", "DeliveryTimedOut"
        return "Success", "Incomplete"

    def _command_json(self, cmd: _Command) -> Json:
        status, details = self._command_status(cmd)
        invs = cmd.invocations
        return {
            "CommandId": cmd.command_id,
            "DocumentName": DOCUMENT_NAME,
            "DocumentVersion": cmd.document_version,
            "Comment": cmd.comment,
            "ExpiresAfter": cmd.expires_epoch,
            "Parameters": cmd.parameters,
            "InstanceIds": list(cmd.instance_ids),
            "Targets": [],
            "RequestedDateTime": cmd.requested,
            "Status": status,
            "StatusDetails": details,
            "OutputS3Region": cmd.s3_region,
            "OutputS3BucketName": cmd.bucket,
            "OutputS3KeyPrefix": cmd.key_prefix,
            "MaxConcurrency": cmd.max_concurrency,
            "MaxErrors": cmd.max_errors,
            "TargetCount": len(invs),
            "CompletedCount": sum(1 for inv in invs if inv.terminal),
            "ErrorCount": sum(1 for inv in invs if self._is_error(inv)),
            "DeliveryTimedOutCount": sum(1 for inv in invs if inv.details == "DeliveryTimedOut"),
            "ServiceRole": str(cmd.request.get("ServiceRoleArn", "")),
            "NotificationConfig": self._notification(cmd),
            "CloudWatchOutputConfig": self._cloudwatch(cmd),
            "TimeoutSeconds": cmd.timeout_seconds,
        }

    def _invocation_json(self, inv: _Invocation, details: bool) -> Json:
        cmd = inv.command
        instance_id = inv.instance.instance_id
        result: Json = {
            "CommandId": cmd.command_id,
            "InstanceId": instance_id,
            "InstanceName": "",
            "Comment": cmd.comment,
            "DocumentName": DOCUMENT_NAME,
            "DocumentVersion": cmd.document_version,
            "RequestedDateTime": cmd.requested,
            "Status": inv.status,
            "StatusDetails": inv.details,
            "StandardOutputUrl": self._s3_url(cmd, instance_id, "stdout"),
            "StandardErrorUrl": self._s3_url(cmd, instance_id, "stderr"),
            "CommandPlugins": [self._plugin_json(inv)] if details else [],
            "ServiceRole": str(cmd.request.get("ServiceRoleArn", "")),
            "NotificationConfig": self._notification(cmd),
            "CloudWatchOutputConfig": self._cloudwatch(cmd),
        }
        return result

    def _plugin_json(self, inv: _Invocation) -> Json:
        cmd = inv.command
        instance_id = inv.instance.instance_id
        # A plugin has no Cancelling (nor Delayed): it is InProgress until the agent reports.
        status = "InProgress" if inv.status == "Cancelling" else inv.status
        plugin: Json = {
            "Name": PLUGIN_NAME,
            "Status": status,
            "StatusDetails": "InProgress" if inv.status == "Cancelling" else inv.details,
            "ResponseCode": inv.response_code,
            "Output": inv.plugin_output if inv.terminal else "",
            "StandardOutputUrl": self._s3_url(cmd, instance_id, "stdout"),
            "StandardErrorUrl": self._s3_url(cmd, instance_id, "stderr"),
            "OutputS3Region": cmd.s3_region,
            "OutputS3BucketName": cmd.bucket,
            "OutputS3KeyPrefix": _s3_join(cmd.key_prefix, cmd.command_id, instance_id, PLUGIN_DIR)
            if cmd.bucket
            else "",
        }
        if inv.delivered and inv.started is not None:
            plugin["ResponseStartDateTime"] = inv.started
        if inv.delivered and inv.terminal and inv.ended is not None:
            plugin["ResponseFinishDateTime"] = inv.ended
        return plugin
