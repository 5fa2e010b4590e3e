"""Image commands: wheelhouse, generate-dockerfile, build-docker, inspect-image."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from mlreg.builder import context as ctx
from mlreg.builder import engine, pipconfig, service
from mlreg.cli.options import json_option, key_values


def build_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--base-image", default=None, help="Default: python:<model's major.minor>-slim."
        ),
        click.option(
            "--build-image",
            default=None,
            help="Image of the install stage (default: the base image), e.g. the same Python "
            "with binutils so TensorFlow's libraries get stripped; it never ships.",
        ),
        click.option(
            "--wheelhouse",
            type=click.Path(path_type=Path, file_okay=False),
            default=None,
            help="Wheels prepared on the host (mlreg wheelhouse).",
        ),
        click.option(
            "--offline",
            is_flag=True,
            help="Install only from --wheelhouse (checked before the build), with no network.",
        ),
        click.option(
            "--pip-index-url",
            default=None,
            help="Index for the build's pip (default: this machine's pip configuration).",
        ),
        click.option(
            "--pip-extra-index-url",
            "pip_extra_index_urls",
            multiple=True,
            help="Another index for the build's pip (repeatable; no credentials in it).",
        ),
        click.option(
            "--pip-cert",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="CA bundle for the build's pip (default: this machine's pip cert).",
        ),
        click.option("--gpu", is_flag=True, help="Keep the GPU build of TensorFlow."),
        click.option(
            "--without-tensorflow",
            is_flag=True,
            help="Leave TensorFlow's runtime out: the image forwards to TF Serving "
            "(MLREG_BACKEND=tfserving) and is far smaller.",
        ),
        click.option(
            "--label",
            "labels",
            multiple=True,
            metavar="KEY=VALUE",
            help="Another image label (repeatable), next to mlreg's io.mlreg.* labels.",
        ),
        click.option(
            "--no-require-signature", is_flag=True, help="Allow a model without a signature."
        ),
        click.option("--model-uri", "-m", required=True, help="Path, runs:/ or models:/ URI."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _options(kw: dict[str, Any]) -> ctx.BuildOptions:
    """The options, with this machine's pip index settings unless the build is offline."""
    return ctx.BuildOptions(
        base_image=kw["base_image"],
        build_image=kw["build_image"],
        wheelhouse=kw["wheelhouse"],
        offline=kw["offline"],
        pip_index_url=kw["pip_index_url"],
        pip_extra_index_urls=tuple(kw["pip_extra_index_urls"]),
        pip_cert=kw["pip_cert"],
        host_pip=None if kw["offline"] else pipconfig.host_settings(),
        gpu=kw["gpu"],
        without_tensorflow=kw["without_tensorflow"],
        require_signature=not kw["no_require_signature"],
        labels=key_values(kw["labels"]),
    )


def _skipped_note(options: ctx.BuildOptions) -> str | None:
    if options.host_pip is None or not options.host_pip.skipped:
        return None
    return "Not passed into the build from this machine's pip configuration: " + "; ".join(
        options.host_pip.skipped
    )


def _image_name(model_name: str | None) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", (model_name or "").lower()).strip("-._")
    return name or "model"


@click.command("generate-dockerfile")
@build_options
@click.option(
    "--directory",
    "-d",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the build context goes (created).",
)
def generate_dockerfile(model_uri: str, directory: Path, **kw: Any) -> None:
    """Write a model's image build context into a directory.

    DIRECTORY gets the Dockerfile, the model and the wheels; then `docker build DIRECTORY`
    builds the image mlreg build-docker would (the command printed says how).

    \b
    Examples:
      mlreg generate-dockerfile -m models:/mnist/Production -d ./mnist-image
      docker build -t mnist:prod ./mnist-image
    """
    options = _options(kw)
    if sys.stderr.isatty():  # building mlreg's own wheel takes seconds: say so on a terminal
        click.echo(
            f"Writing the build context into {directory} (building mlreg's wheel)...", err=True
        )
    built = ctx.write_context(model_uri, directory, options)
    if note := _skipped_note(options):
        click.echo(note, err=True)
    log = directory / "build.log"  # .dockerignore keeps it out of the build's context
    network = "--network none " if built.offline else ""
    target = shlex.quote(str(directory))
    command = f"docker build {network}-t {_image_name(built.model.name)} {target}"
    click.echo(f"Wrote build context to {directory} (base image {built.base_image})")
    click.echo(f"Build it with: {command} 2>&1 | tee {shlex.quote(str(log))}")
    click.echo(
        f"If it fails, {log} ends with pip's ERROR lines: a connection error means the build "
        "reaches no index (build offline: --wheelhouse DIR --offline, or pass --pip-index-url); "
        "'No matching distribution' means a missing wheel (fill the wheelhouse: "
        f"mlreg wheelhouse -m {model_uri} -d DIR)."
    )


HELM_CHART = "charts/mlreg-serving"


def helm_release_name(model_name: str, repository: str) -> str:
    """A Helm release name for the model: a DNS label of at most 53 characters (Helm's limit)."""
    raw = model_name or repository.rsplit("/", 1)[-1]
    name = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")[:53].rstrip("-")
    return name or "model"


def next_steps(reference: str, image: engine.BuiltImage) -> list[str]:
    """Commands to run the image: with Docker, and on Kubernetes with the mlreg-serving chart."""

    repository, tag = engine.parse_reference(reference)
    release = helm_release_name(image.labels.get(f"{ctx.LABEL_PREFIX}.model.name", ""), repository)
    return [
        f"docker run -p 8080:8080 {reference}",
        f"helm install {release} {HELM_CHART} --set image.repository={shlex.quote(repository)} "
        f"--set-string image.tag={shlex.quote(tag)}",
    ]


def _size(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


class TextProgress:
    """Build progress for people: a line per step with the time since the build started.

    On a terminal, a status line under it follows the step's output and the upload.
    """

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self._status = False

    def _clear(self) -> None:
        if self._status:
            click.echo("\r\x1b[K", nl=False, color=True)
            self._status = False

    def _show(self, text: str) -> None:
        width = shutil.get_terminal_size().columns - 1
        click.echo(f"\r\x1b[K{text[:width]}", nl=False, color=True)
        self._status = True

    def __call__(self, event: engine.BuildEvent) -> None:
        at = f"[{event.elapsed:6.1f}s]"
        if event.event == "start":
            click.echo(
                f"{at} building {event.tag} (build network: {event.network}); "
                f"{_mb(event.total or 0)} of context to send to the engine"
            )
        elif event.event == "context" and event.sent is not None and event.total is not None:
            if event.sent < event.total:
                if self.tty:
                    self._show(f"{at} sending the build context: {_mb(event.sent)} of "
                               f"{_mb(event.total)}")  # fmt: skip
                return
            self._clear()
            click.echo(f"{at} sent the build context to the engine: {_mb(event.total)}")
        elif event.event == "step":
            self._clear()
            click.echo(f"{at} step {event.step}/{event.steps}: {(event.instruction or '')[:100]}")
        elif event.event == "output" and self.tty:
            self._show(f"{at}   {event.line}")
        elif event.event == "failed":
            self._clear()


def _json_progress(event: engine.BuildEvent) -> None:
    if event.event != "output":  # the log file has every line; CI wants the milestones
        click.echo(json.dumps(event.to_dict()))


@contextmanager
def _log_file(path: Path | None, prefix: str) -> Iterator[Path]:
    """``path``, or a temporary file that is kept only when something wrote to it and failed."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield path
        return
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".log")
    os.close(fd)
    log = Path(name)
    try:
        yield log
    except BaseException:
        if log.stat().st_size == 0:
            log.unlink(missing_ok=True)
        raise
    log.unlink(missing_ok=True)


QUIET = click.option("--quiet", "-q", is_flag=True, help="No progress; print only the result.")
LOG = click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Keep the full output here (default: a temporary file, kept only if it fails).",
)
JSON = click.option(
    "--json", "as_json", is_flag=True, help="Progress and result as JSON lines (CI logs)."
)


@click.command("wheelhouse")
@click.option("--model-uri", "-m", required=True, help="Path, runs:/ or models:/ URI.")
@click.option(
    "--directory",
    "-d",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the wheels go (created; wheels already there are kept and reused).",
)
@click.option(
    "--python-version", default=None, help="The image's Python, MAJOR.MINOR (default: the model's)."
)
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="TAG",
    help="pip platform tag, repeatable (default: manylinux tags for glibc 2.36, the "
    "python:X.Y-slim images, on this machine's architecture).",
)
@click.option("--gpu", is_flag=True, help="For a --gpu image (tensorflow, not tensorflow-cpu).")
@QUIET
@LOG
def wheelhouse_command(
    model_uri: str,
    directory: Path,
    python_version: str | None,
    platforms: tuple[str, ...],
    gpu: bool,
    quiet: bool,
    log_path: Path | None,
) -> None:
    """Download every wheel a model's image installs.

    With this machine's pip settings (index, mirrors, certificates); then `mlreg build-docker
    -m MODEL --wheelhouse DIRECTORY --offline` needs no network.

    \b
    Examples:
      mlreg wheelhouse -m models:/mnist/Production -d wheels
      mlreg wheelhouse -m ./mnist-cnn -d wheels --python-version 3.12
    """

    def on_line(line: str) -> None:
        line = line.strip()
        if not quiet and line.startswith(("Saved ", "File was already downloaded ")):
            verb = "saved" if line.startswith("Saved") else "have"
            click.echo(f"  {verb} {Path(line.rsplit(' ', 1)[1]).name}")

    with _log_file(log_path, "mlreg-wheelhouse-") as log:
        house = service.make_wheelhouse(
            model_uri,
            directory,
            python_version=python_version,
            platforms=platforms,
            gpu=gpu,
            log=log,
            on_line=on_line,
        )
    size = sum(w.stat().st_size for w in house.wheels)
    click.echo(
        f"Wheelhouse {directory}: {len(house.wheels)} wheels ({_size(size)}) for "
        f"{house.target.describe()}; the model's {len(house.requirements)} requirements and "
        "tensorflow-serving-api install from it with no index."
    )
    if not quiet:
        click.echo(
            f"Build with: mlreg build-docker -m {model_uri} -n NAME --wheelhouse "
            f"{shlex.quote(str(directory))} --offline"
        )


@click.command("build-docker")
@build_options
@click.option("--name", "-n", required=True, help="Image reference NAME[:TAG].")
@click.option("--platform", default=None, help="Platform of the image, e.g. linux/amd64.")
@click.option("--no-cache", is_flag=True, help="Build every step again (ignore cached layers).")
@click.option(
    "--build-arg",
    "build_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="A Docker build argument (repeatable).",
)
@QUIET
@JSON
@LOG
def build_docker(
    model_uri: str,
    name: str,
    platform: str | None,
    no_cache: bool,
    build_args: tuple[str, ...],
    quiet: bool,
    as_json: bool,
    log_path: Path | None,
    **kw: Any,
) -> None:
    """Build a serving image for a model with Docker.

    With the local Docker engine. --offline checks the wheelhouse before the build starts,
    and builds with no network.

    \b
    Examples:
      mlreg build-docker -m models:/mnist/Production -n mnist:prod
      mlreg build-docker -m models:/mnist@champion -n mnist:prod --wheelhouse wheels --offline
    """

    repository, tag = engine.parse_reference(name)
    reference = f"{repository}:{tag}"
    options = _options(kw)
    if (note := _skipped_note(options)) and as_json:
        click.echo(json.dumps({"event": "note", "message": note}))
    elif note and not quiet:
        click.echo(note, err=True)
    client = engine.connect()
    started = time.monotonic()
    progress: Callable[[engine.BuildEvent], None] = lambda _: None  # noqa: E731
    if as_json:
        progress = _json_progress
    elif not quiet:
        progress = TextProgress(click.get_text_stream("stdout").isatty())
    with _log_file(log_path, "mlreg-build-") as log:
        image = service.build_image(
            client,
            model_uri,
            reference,
            options,
            log=log,
            no_cache=no_cache,
            platform=platform,
            build_args=key_values(build_args),
            on_event=progress,
        )
    elapsed = time.monotonic() - started
    if as_json:
        result = {
            "event": "built",
            "image": image.id,
            "tag": reference,
            "size": image.size,
            "seconds": round(elapsed, 1),
            "steps": image.steps,
            "cached_steps": image.cached_steps,
            "context_bytes": image.context_bytes,
        }
        click.echo(json.dumps(result))
        return
    if quiet:
        click.echo(image.id)
        return
    click.echo(f"Built {reference}")
    click.echo(f"  image id: {image.id}")
    click.echo(f"  size:     {_size(image.size)}")
    click.echo(f"  time:     {elapsed:.1f} s ({image.cached_steps}/{image.steps} steps cached)")
    for step in next_steps(reference, image):
        click.echo(f"  next:     {step}")


@click.command("inspect-image")
@click.argument("name")
@json_option
def inspect_image(name: str, as_json: bool) -> None:
    """Print the model labels mlreg put on an image.

    The model's name, version, stage, digest and signature, and the image's id and size.

    \b
    Examples:
      mlreg inspect-image mnist:prod
      mlreg inspect-image mnist:prod --json
    """

    info = engine.inspect(engine.connect(), name)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{name}  {info['id']}  {_size(info['size'])}")
    for key, value in sorted(info["labels"].items()):
        click.echo(f"  {key} = {value}")
