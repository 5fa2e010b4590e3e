"""The Docker Engine API (docker SDK): checks before a build, the build itself, inspection."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, BuildError, DockerException, ImageNotFound

from mlreg.errors import DockerError, InvalidInput

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


def check_base_image(client: docker.DockerClient, image: str, want_python: str | None) -> str:
    """Make sure ``image`` runs ``python3`` with venv; return its Python major.minor."""
    try:
        client.images.get(image)
    except ImageNotFound:
        try:
            client.images.pull(image)
        except (APIError, DockerException) as e:
            raise DockerError(
                f"base image {image!r} is not available locally and cannot be pulled: {e}"
            ) from None
    probe = "import sys, venv; print('%d.%d' % sys.version_info[:2])"
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
    version = out.decode().strip()
    if want_python and not want_python.startswith(version + ".") and want_python != version:
        raise InvalidInput(
            f"the model was saved with Python {want_python} but base image {image!r} has Python "
            f"{version}; use --base-image python:{'.'.join(want_python.split('.')[:2])}-slim"
        )
    return version


@dataclass(frozen=True)
class BuiltImage:
    id: str
    tags: list[str]
    size: int
    labels: dict[str, str]
    cached_steps: int
    steps: int


def build(
    client: docker.DockerClient,
    context: Path,
    tag: str,
    *,
    no_cache: bool = False,
    platform: str | None = None,
    build_args: dict[str, str] | None = None,
    progress: Callable[[str], None] = print,
) -> BuiltImage:
    """Build ``context`` as ``tag``, reporting each step on one line instead of raw JSON."""
    steps = cached = 0
    try:
        stream = client.api.build(
            path=str(context),
            tag=tag,
            rm=True,
            forcerm=True,
            decode=True,
            nocache=no_cache,
            platform=platform,
            buildargs=build_args or {},
            network_mode="host",
        )
        for chunk in stream:
            if "error" in chunk:
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                raise DockerError(f"image build failed: {detail.strip()}")
            line = str(chunk.get("stream", "")).strip()
            step = _STEP.match(line)
            if step:
                steps = int(step.group(2))
                progress(f"[{step.group(1)}/{step.group(2)}] {step.group(3)[:110]}")
            elif line == "---> Using cache":
                cached += 1
    except (APIError, BuildError) as e:
        raise DockerError(f"image build failed: {e}") from None
    image = client.images.get(tag)
    return BuiltImage(image.id, image.tags, image.attrs["Size"], image.labels, cached, steps)


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
