"""The Docker Engine API (docker SDK): checks before a build, the build itself, inspection."""

from __future__ import annotations

import io
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import docker
import docker.utils
from docker.errors import APIError, DockerException, ImageNotFound

from mlreg.builder import failure
from mlreg.errors import BuildError, DockerError, InvalidInput

# Docker's reference grammar: [host[:port]/]path[:tag][@digest], lower-case path components.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?/)?"
_REFERENCE = re.compile(
    rf"^(?P<name>{_HOST}{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>[\w][\w.-]{{0,127}}))?$"
)
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


def parse_reference(reference: str) -> tuple[str, str]:
    """Split ``name[:tag]`` (tag defaults to ``latest``), refusing invalid references."""
    match = _REFERENCE.match(reference or "")
    if match is None or len(match["name"]) > 255:
        raise InvalidInput(
            f"invalid image name {reference!r}: expected [registry/]name[:tag] with a lower-case "
            "name, e.g. mnist:prod or registry.example.com/team/mnist:3"
        )
    return match["name"], match["tag"] or "latest"


def connect() -> docker.DockerClient:
    """A client for the local engine, or a DockerError that says how to start one."""
    client = None
    try:
        client = docker.from_env(timeout=600)
        client.ping()
        return client
    except DockerException as e:
        if client is not None:
            client.close()
        raise DockerError(
            f"cannot reach a Docker engine ({e.__class__.__name__}: {str(e)[:200]}). Start one "
            "(`sudo systemctl start docker`, or `dockerd &`), or point DOCKER_HOST at a running "
            "engine"
        ) from None


@dataclass(frozen=True)
class BaseImage:
    """What a base image's pip accepts: its Python (major.minor), glibc and machine."""

    python: str
    glibc: str | None
    machine: str


def check_base_image(client: docker.DockerClient, image: str, want_python: str | None) -> BaseImage:
    """Make sure ``image`` runs ``python3`` with venv; return its Python, glibc and machine."""
    try:
        client.images.get(image)
    except ImageNotFound:
        try:
            client.images.pull(image)
        except (APIError, DockerException) as e:
            raise DockerError(
                f"base image {image!r} is not available locally and cannot be pulled: {e}"
            ) from None
    probe = (
        "import platform, sys, venv; "
        "print('%d.%d' % sys.version_info[:2], platform.libc_ver()[1] or '-', platform.machine())"
    )
    container = None
    try:
        # create/start/remove by hand: run(remove=True) leaves the container behind when it
        # cannot even start (no python3 in the image)
        container = client.containers.create(
            image, ["python3", "-c", probe], entrypoint=[], network_mode="none"
        )
        container.start()
        code = container.wait(timeout=120).get("StatusCode")
        out = container.logs(stdout=True, stderr=False)
        problem = "" if code == 0 else container.logs(stdout=False, stderr=True).decode()
    except (APIError, DockerException, ConnectionError) as e:
        problem = str(e)
    finally:
        if container is not None:
            container.remove(force=True)
    if problem:
        raise DockerError(
            f"base image {image!r} has no usable python3 with the venv module "
            f"({problem.strip()[-200:]}); use a Python image such as python:3.11-slim"
        )
    try:
        version, glibc, machine = out.decode().split()
    except ValueError:
        raise DockerError(
            f"base image {image!r}: cannot read its Python version from {out.decode()[:200]!r}"
        ) from None
    if want_python and not want_python.startswith(version + ".") and want_python != version:
        raise InvalidInput(
            f"the model was saved with Python {want_python} but base image {image!r} has Python "
            f"{version}; use --base-image python:{'.'.join(want_python.split('.')[:2])}-slim"
        )
    return BaseImage(version, None if glibc == "-" else glibc, machine)


@dataclass(frozen=True)
class BuiltImage:
    id: str
    tags: list[str]
    size: int
    labels: dict[str, str]
    cached_steps: int
    steps: int
    context_bytes: int = 0


@dataclass(frozen=True)
class BuildEvent:
    """One thing a build did, for a progress view (``to_dict`` for JSON lines).

    ``start`` (the tag, the build's ``network``, the context's ``total`` bytes), ``context``
    (bytes ``sent`` to the engine so far, of ``total``), ``step`` (a step starts),
    ``cached`` (that step came from the cache), ``output`` (a line the step printed),
    ``failed`` (the step, its last lines, the advice and the log's path).
    """

    event: str
    elapsed: float
    tag: str | None = None
    network: str | None = None
    step: int | None = None
    steps: int | None = None
    instruction: str | None = None
    sent: int | None = None
    total: int | None = None
    line: str | None = None
    error: str | None = None
    tail: list[str] | None = None
    advice: str | None = None
    log: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class _Upload:
    """The context tarball as a request body that reports how much the engine has read."""

    def __init__(self, file: BinaryIO, total: int, report: Callable[[int], None]) -> None:
        self._file = file
        self.total = total
        self.sent = 0
        self._report = report
        self._reported = 0.0

    def __len__(self) -> int:  # requests sends a Content-Length instead of chunks
        return self.total

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        if not data:
            return data
        self.sent += len(data)
        now = time.monotonic()
        if now - self._reported >= 0.25 or self.sent == self.total:
            self._reported = now
            self._report(self.sent)
        return data


# The classic builder colours a step's stderr red.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The classic builder's own bookkeeping between a step's lines.
_BOOKKEEPING = re.compile(
    r"^\s*(?:---> )?(?:(?:Running in|Removed intermediate container|Removing intermediate "
    r"container) )?[0-9a-f]{12,}$"
)
_NONZERO = re.compile(r"^The command '.*' returned a non-zero code: (\d+)$", re.DOTALL)


class _Transcript:
    """Follows the engine's output: the log file, the current step and its lines, events."""

    def __init__(self, log: TextIO, emit: Callable[..., None]) -> None:
        self.log = log
        self.emit = emit
        self.step = self.steps = self.cached = 0
        self.instruction = ""
        self.lines: list[str] = []
        self._pending = ""

    def feed(self, text: str) -> None:
        text = _ANSI.sub("", text)
        self.log.write(text)
        *complete, self._pending = (self._pending + text).split("\n")
        for line in complete:
            self._line(line.rstrip())

    def _line(self, line: str) -> None:
        if match := _STEP.match(line):
            self.step, self.steps = int(match[1]), int(match[2])
            self.instruction = " ".join(match[3].split())
            self.lines = []
            self.emit("step", step=self.step, steps=self.steps, instruction=self.instruction)
        elif line.strip() == "---> Using cache":
            self.cached += 1
            self.emit("cached", step=self.step, steps=self.steps)
        elif line.strip() and not _BOOKKEEPING.match(line):
            self.lines.append(line)
            self.emit("output", step=self.step, steps=self.steps, line=line)

    def failed(
        self, detail: str, advise: Callable[[list[str]], str | None], log: Path
    ) -> BuildError:
        """The error for the failed step (and its ``failed`` event)."""
        self.feed("\n")  # the step's last, unterminated line
        lines = list(self.lines)
        self.log.write(f"ERROR: {detail}\n")
        self.log.flush()
        nonzero = _NONZERO.match(detail.strip())
        error = f"exit code {nonzero[1]}" if nonzero else detail.strip()
        advice = advise(lines)
        self.emit(
            "failed",
            step=self.step or None,
            steps=self.steps or None,
            instruction=self.instruction or None,
            error=error,
            tail=failure.tail(lines),
            advice=advice,
            log=str(log),
        )
        name = self.instruction
        name = name if len(name) <= 70 else name[:69] + "…"
        where = f" at step {self.step}/{self.steps} ({name})" if self.step else ""
        headline = f"image build failed{where}: {error}"
        return BuildError(failure.explain(headline, lines, advice, log))


def build(
    client: docker.DockerClient,
    context: Path,
    tag: str,
    *,
    no_cache: bool = False,
    platform: str | None = None,
    build_args: dict[str, str] | None = None,
    network: str = "host",
    log: Path,
    advise: Callable[[list[str]], str | None] = lambda _: None,
    on_event: Callable[[BuildEvent], None] = lambda _: None,
) -> BuiltImage:
    """Build ``context`` as ``tag``, reporting progress as events, the engine's output to ``log``.

    ``network="none"`` builds with no network at all (an offline install). A failed step
    raises a BuildError naming the step, with its last lines of output, ``advise``'s line
    for them and the log's path (and sends the same as a ``failed`` event).
    """
    started = time.monotonic()

    def emit(event: str, **fields: Any) -> None:
        on_event(BuildEvent(event, round(time.monotonic() - started, 2), **fields))

    with tempfile.TemporaryFile() as tar, log.open("w") as out:
        docker.utils.tar(str(context), exclude=_dockerignore(context), fileobj=tar)
        total = tar.seek(0, io.SEEK_END)
        tar.seek(0)
        emit("start", tag=tag, network=network, total=total)
        upload = _Upload(tar, total, lambda sent: emit("context", sent=sent, total=total))
        transcript = _Transcript(out, emit)
        try:
            stream = client.api.build(
                fileobj=upload,
                custom_context=True,
                tag=tag,
                rm=True,
                forcerm=True,
                decode=True,
                nocache=no_cache,
                platform=platform,
                buildargs=build_args or {},
                network_mode=network,
            )
            for chunk in stream:
                if "error" in chunk:
                    detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                    raise transcript.failed(detail, advise, log)
                if "stream" in chunk:
                    transcript.feed(str(chunk["stream"]))
                elif "status" in chunk:  # pulling a base image
                    transcript.feed(f"{chunk['status']}\n")
        except APIError as e:
            raise DockerError(f"image build failed: {e}") from None
    image = client.images.get(tag)
    return BuiltImage(
        image.id,
        image.tags,
        image.attrs["Size"],
        image.labels,
        transcript.cached,
        transcript.steps,
        upload.sent,
    )


def _dockerignore(context: Path) -> list[str]:
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def inspect(client: docker.DockerClient, reference: str) -> dict[str, Any]:
    try:
        image = client.images.get(reference)
    except ImageNotFound:
        raise DockerError(f"no image {reference!r} in the local engine") from None
    return {
        "id": image.id,
        "tags": image.tags,
        "size": image.attrs["Size"],
        "labels": image.labels or {},
    }
