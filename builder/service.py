"""The image commands as services: make a wheelhouse, build an image (checks first)."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker

from mlreg.builder import context as ctx
from mlreg.builder import engine, failure, wheelhouse
from mlreg.errors import InvalidInput
from mlreg.models.env import read_python_version, read_requirements
from mlreg.uris import resolve_model_uri


@dataclass(frozen=True)
class Wheelhouse:
    directory: Path
    target: wheelhouse.Target
    requirements: list[str]
    wheels: list[Path]


def make_wheelhouse(
    uri: str,
    dest: Path,
    *,
    python_version: str | None,
    platforms: tuple[str, ...],
    gpu: bool,
    log: Path,
    on_line: Callable[[str], None] = lambda _: None,
) -> Wheelhouse:
    """Download every wheel the image for ``uri`` installs into ``dest``, then check it.

    The target defaults to the model's Python on the python:X.Y-slim images' platform
    (manylinux for glibc 2.36, this machine's architecture).
    """
    model = resolve_model_uri(uri)
    requirements = ctx.image_requirements(read_requirements(model.path), gpu)
    python = python_version or read_python_version(model.path)
    if python is None:
        raise InvalidInput(
            f"model {uri} does not say which Python it was saved with (python_env.yaml); "
            "pass --python-version, e.g. 3.11"
        )
    if platforms:
        target = wheelhouse.Target(wheelhouse.major_minor(python), platforms)
    else:
        target = wheelhouse.Target.manylinux(python, machine=wheelhouse.host_machine())
    if dest.exists() and not dest.is_dir():
        raise InvalidInput(f"wheelhouse {dest} exists and is not a directory")
    dest.mkdir(parents=True, exist_ok=True)
    mlreg_wheel = ctx.mlreg_wheel(dest)
    wheelhouse.download(requirements, mlreg_wheel, dest, target, log, on_line)
    missing = wheelhouse.check(dest, requirements, target)
    if missing:
        raise InvalidInput(
            f"pip downloaded into {dest}, but an offline install for {target.describe()} still "
            f"lacks {', '.join(missing)}: are they pinned to versions without such wheels?"
        )
    return Wheelhouse(dest, target, requirements, wheelhouse.wheel_files(dest))


def check_wheelhouse(
    built: ctx.BuildContext, image: engine.BaseImage, wheelhouse_dir: Path, uri: str
) -> None:
    """Refuse an offline build the wheelhouse cannot satisfy, before the build starts."""
    if image.glibc is None:
        raise InvalidInput(
            f"build image {built.build_image!r} has no glibc, so no manylinux wheel fits it; "
            "use a Debian- or Ubuntu-based Python image for offline builds"
        )
    target = wheelhouse.Target.manylinux(image.python, image.glibc, image.machine)
    missing = wheelhouse.check(built.path / "wheels", built.requirements, target)
    if missing:
        raise InvalidInput(
            f"wheelhouse {wheelhouse_dir} lacks {', '.join(missing)} for "
            f"{target.describe()}: fill it with `mlreg wheelhouse -m {uri} -d {wheelhouse_dir}`"
        )


def build_image(
    client: docker.DockerClient,
    uri: str,
    reference: str,
    options: ctx.BuildOptions,
    *,
    log: Path,
    no_cache: bool = False,
    platform: str | None = None,
    build_args: dict[str, str] | None = None,
    on_event: Callable[[engine.BuildEvent], None] = lambda _: None,
) -> engine.BuiltImage:
    """Write the context, check the base images (and the wheelhouse, offline), build.

    Every check runs before the engine starts building, so a refusal costs seconds; an
    offline build runs with no network at all.
    """
    repository, tag = engine.parse_reference(reference)
    with tempfile.TemporaryDirectory(prefix="mlreg-build-") as tmp:
        built = ctx.write_context(uri, Path(tmp) / "context", options)
        python = read_python_version(built.model.path)
        images = {
            ref: engine.check_base_image(client, ref, python)
            for ref in dict.fromkeys([built.build_image, built.base_image])
        }
        if built.offline and options.wheelhouse is not None:  # offline needs one
            check_wheelhouse(built, images[built.build_image], options.wheelhouse, uri)
        return engine.build(
            client,
            built.path,
            f"{repository}:{tag}",
            no_cache=no_cache,
            platform=platform,
            build_args=build_args,
            network="none" if built.offline else "host",
            log=log,
            advise=functools.partial(failure.build_advice, offline=built.offline, model_uri=uri),
            on_event=on_event,
        )
