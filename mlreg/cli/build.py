"""Image commands: generate-dockerfile, build-docker, inspect-image."""

from __future__ import annotations

import json
import re
import shlex
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mlreg.builder import context as ctx
from mlreg.builder import engine
from mlreg.cli.options import json_option, key_values
from mlreg.models.env import read_python_version


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
            help="Wheels prepared on the host (pip download / pip wheel).",
        ),
        click.option("--offline", is_flag=True, help="Install only from --wheelhouse: no network."),
        click.option("--pip-index-url", default=None),
        click.option("--pip-extra-index-url", "pip_extra_index_urls", multiple=True),
        click.option("--pip-cert", type=click.Path(path_type=Path, dir_okay=False), default=None),
        click.option("--gpu", is_flag=True, help="Keep the GPU build of TensorFlow."),
        click.option(
            "--without-tensorflow",
            is_flag=True,
            help="Leave TensorFlow's runtime out: the image forwards to TF Serving "
            "(MLREG_BACKEND=tfserving) and is far smaller.",
        ),
        click.option("--label", "labels", multiple=True, metavar="KEY=VALUE"),
        click.option(
            "--no-require-signature", is_flag=True, help="Allow a model without a signature."
        ),
        click.option("--model-uri", "-m", required=True, help="Path, runs:/ or models:/ URI."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _options(kw: dict[str, Any]) -> ctx.BuildOptions:
    return ctx.BuildOptions(
        base_image=kw["base_image"],
        build_image=kw["build_image"],
        wheelhouse=kw["wheelhouse"],
        offline=kw["offline"],
        pip_index_url=kw["pip_index_url"],
        pip_extra_index_urls=tuple(kw["pip_extra_index_urls"]),
        pip_cert=kw["pip_cert"],
        gpu=kw["gpu"],
        without_tensorflow=kw["without_tensorflow"],
        require_signature=not kw["no_require_signature"],
        labels=key_values(kw["labels"]),
    )


@click.command("generate-dockerfile")
@build_options
@click.option("--directory", "-d", required=True, type=click.Path(path_type=Path, file_okay=False))
def generate_dockerfile(model_uri: str, directory: Path, **kw: Any) -> None:
    """Write a complete build context for MODEL into DIRECTORY (then: docker build DIRECTORY)."""
    built = ctx.write_context(model_uri, directory, _options(kw))
    click.echo(f"Wrote build context to {directory} (base image {built.base_image})")
    click.echo(f"Build it with: docker build -t {built.model.name or 'model'} {directory}")


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


@click.command("build-docker")
@build_options
@click.option("--name", "-n", required=True, help="Image reference NAME[:TAG].")
@click.option("--platform", default=None, help="e.g. linux/amd64.")
@click.option("--no-cache", is_flag=True)
@click.option("--build-arg", "build_args", multiple=True, metavar="KEY=VALUE")
def build_docker(
    model_uri: str,
    name: str,
    platform: str | None,
    no_cache: bool,
    build_args: tuple[str, ...],
    **kw: Any,
) -> None:
    """Build a serving image for MODEL with the local Docker engine."""
    repository, tag = engine.parse_reference(name)
    options = _options(kw)
    client = engine.connect()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlreg-build-") as tmp:
        built_ctx = ctx.write_context(model_uri, Path(tmp) / "context", options)
        python = read_python_version(built_ctx.model.path)
        for image_ref in dict.fromkeys([built_ctx.build_image, built_ctx.base_image]):
            engine.check_base_image(client, image_ref, python)
        image = engine.build(
            client,
            built_ctx.path,
            f"{repository}:{tag}",
            no_cache=no_cache,
            platform=platform,
            build_args=key_values(build_args),
            progress=click.echo,
        )
    click.echo(f"Built {repository}:{tag}")
    click.echo(f"  image id: {image.id}")
    click.echo(f"  size:     {_size(image.size)}")
    elapsed = time.monotonic() - started
    click.echo(f"  time:     {elapsed:.1f} s ({image.cached_steps}/{image.steps} steps cached)")
    for step in next_steps(f"{repository}:{tag}", image):
        click.echo(f"  next:     {step}")


@click.command("inspect-image")
@click.argument("name")
@json_option
def inspect_image(name: str, as_json: bool) -> None:
    """Print the labels mlreg put on an image: model name, version, stage, digest, signature."""
    info = engine.inspect(engine.connect(), name)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{name}  {info['id']}  {_size(info['size'])}")
    for key, value in sorted(info["labels"].items()):
        click.echo(f"  {key} = {value}")
