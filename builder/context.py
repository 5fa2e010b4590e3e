"""Build contexts: the model, the rendered Dockerfile and what the image installs.

A context is a plain directory anyone can ``docker build``::

    Dockerfile          rendered from Dockerfile.template
    .dockerignore       everything not listed here stays out of the build
    requirements.txt    the model's requirements (tensorflow -> tensorflow-cpu for CPU images)
    wheels/             mlreg's own wheel, plus the whole wheelhouse for offline builds
    model/              the model directory, as registered
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

from packaging.requirements import InvalidRequirement, Requirement

from mlreg.builder.pipconfig import IndexSettings
from mlreg.credentials import has_credentials, redact
from mlreg.errors import BuildError, InvalidInput
from mlreg.models.env import read_python_version, read_requirements
from mlreg.models.files import copy_model_files
from mlreg.models.model import Model
from mlreg.uris import ResolvedModel, resolve_model_uri
from mlreg.version import __version__

IMAGE_UID = 10001
MODEL_PATH = "/opt/mlreg/model"
WHEELS_PATH = "/opt/mlreg-build/wheels"
CERT_NAME = "pip-cert.pem"
LABEL_PREFIX = "io.mlreg"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class BuildOptions:
    """Everything `generate-dockerfile` and `build-docker` take besides the model URI."""

    base_image: str | None = None
    build_image: str | None = None
    wheelhouse: Path | None = None
    offline: bool = False
    pip_index_url: str | None = None
    pip_extra_index_urls: tuple[str, ...] = ()
    pip_cert: Path | None = None
    #: This machine's pip index settings (pipconfig.host_settings()); the explicit pip_*
    #: options above win over them. Ignored with offline.
    host_pip: IndexSettings | None = None
    gpu: bool = False
    without_tensorflow: bool = False
    require_signature: bool = True
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildContext:
    path: Path
    model: ResolvedModel
    base_image: str
    build_image: str
    labels: dict[str, str]
    requirements: list[str]
    offline: bool


def default_base_image(python_version: str | None) -> str:
    """The official slim image for the model's Python (major.minor)."""
    parts = (python_version or "").split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        major_minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    else:
        major_minor = ".".join(parts[:2])
    return f"python:{major_minor}-slim"


def image_requirements(requirements: list[str], gpu: bool) -> list[str]:
    """The model's requirements as the image installs them.

    A CPU image installs ``tensorflow-cpu`` at the same version when the model asks for
    ``tensorflow`` (the GPU build adds about a gigabyte that a CPU host never uses);
    ``gpu=True`` keeps ``tensorflow``, and turns ``tensorflow-cpu`` into it.
    """
    out = []
    for line in requirements:
        try:
            req = Requirement(line)
        except InvalidRequirement as e:
            raise InvalidInput(
                f"requirements.txt: {line!r} is not a valid requirement ({e})"
            ) from None
        name = req.name.lower().replace("_", "-")
        if name == "tensorflow" and not gpu:
            line = line.replace(req.name, "tensorflow-cpu", 1)
        elif name == "tensorflow-cpu" and gpu:
            line = line.replace(req.name, "tensorflow", 1)
        if line not in out:
            out.append(line)
    if not any(Requirement(r).name.lower() == "mlreg" for r in out):
        out.insert(0, f"mlreg=={__version__}")
    return out


def pip_options(options: BuildOptions) -> str:
    """The pip flags the image's install runs with; the index comes from pip_settings()."""
    if options.offline and options.wheelhouse is None:
        raise InvalidInput("--offline needs --wheelhouse DIR: the wheels the image installs from")
    flags = ["--find-links", WHEELS_PATH]
    if options.offline:
        flags.insert(0, "--no-index")
    return " ".join(flags)


def index_settings(options: BuildOptions) -> IndexSettings:
    """The index settings the build's pip uses: the explicit options over the host's."""
    if options.offline:
        return IndexSettings()
    host = options.host_pip or IndexSettings()
    settings = IndexSettings(
        index_url=options.pip_index_url or host.index_url,
        extra_index_urls=options.pip_extra_index_urls or host.extra_index_urls,
        trusted_hosts=host.trusted_hosts,
        cert=options.pip_cert or host.cert,
        skipped=host.skipped,
    )
    explicit = {options.pip_index_url, *options.pip_extra_index_urls}
    for url in (settings.index_url, *settings.extra_index_urls):
        if not url:
            continue
        parsed = urlparse(url)
        where = "" if url in explicit else " (from this machine's pip configuration)"
        if has_credentials(url):
            raise InvalidInput(
                f"pip index URL {redact(url)}{where} has credentials; they would be stored in "
                "the build's history. Make a wheelhouse on the host with `mlreg wheelhouse` and "
                "build with --wheelhouse DIR --offline"
            )
        if parsed.scheme not in ("http", "https") or not _SAFE_ARG.match(url):
            raise InvalidInput(
                f"pip index URL {redact(url)!r}{where} is not an http(s) URL the build can use"
            )
    for host in settings.trusted_hosts:
        if not _SAFE_ARG.match(host):
            raise InvalidInput(f"pip trusted-host {host!r} is not a host name")
    return settings


# What a double-quoted Dockerfile ARG value holds verbatim: no quotes, spaces, `$` or `\`.
_SAFE_ARG = re.compile(r"^[A-Za-z0-9._~:/?#\[\]@!&'()*+,;=%-]+$")


def pip_settings(settings: IndexSettings, offline: bool) -> str:
    """ARG lines for the install stage: pip reads PIP_* from the environment, and ARGs of a
    stage that never ships stay out of the image's layers and history."""
    args = {
        "PIP_INDEX_URL": settings.index_url,
        "PIP_EXTRA_INDEX_URL": " ".join(settings.extra_index_urls),
        "PIP_TRUSTED_HOST": " ".join(settings.trusted_hosts),
        "PIP_CERT": f"{WHEELS_PATH}/{CERT_NAME}" if settings.cert else None,
    }
    lines = [f'ARG {name}="{value}"' for name, value in args.items() if value]
    if lines:
        return "\n".join(lines)
    return "# pip: the wheelhouse only" if offline else "# pip: its default index"


#: What mlreg's wheel is built from (package_dir in setup.cfg maps the top-level folders).
SOURCE_PARTS = (
    "setup.cfg",
    "pyproject.toml",
    "README.md",
    "Dockerfile.template",
    "mlreg",
    "registry",
    "serving",
    "builder",
    "schemas",
)


def mlreg_wheel(dest: Path) -> Path:
    """Put mlreg's own wheel into ``dest`` (the image installs the exact mlreg that built it).

    The wheel is built once per state of the sources and kept in ``$XDG_CACHE_HOME/mlreg``
    (``~/.cache/mlreg``): building it takes seconds. It is built from a clean copy of the
    sources, because setuptools reuses a ``build/`` folder in the source tree, which can hold
    modules that no longer exist.
    """
    source = Path(__file__).resolve().parents[1]
    if not (source / "setup.cfg").is_file():
        raise InvalidInput(
            "cannot find mlreg's source to build its wheel; put an mlreg wheel in --wheelhouse"
        )
    cache = _wheel_cache() / _source_digest(source)
    wheels = sorted(cache.glob(f"mlreg-{__version__}-*.whl"))
    if not wheels:
        _build_wheel(source, cache)
        wheels = sorted(cache.glob(f"mlreg-{__version__}-*.whl"))
    target = dest / wheels[-1].name
    _link_or_copy(wheels[-1], target)
    return target


def _wheel_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlreg" / "wheels"


def _source_digest(source: Path) -> str:
    """SHA-256 over the files the wheel is built from (their paths and contents)."""
    h = hashlib.sha256()
    for part in SOURCE_PARTS:
        path = source / part
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts:
                h.update(f.relative_to(source).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def _build_wheel(source: Path, cache: Path) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlreg-source-", dir=cache.parent) as tmp:
        clean = Path(tmp) / "mlreg"
        clean.mkdir()
        for part in SOURCE_PARTS:
            if (source / part).is_dir():
                shutil.copytree(
                    source / part, clean / part, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy2(source / part, clean / part)
        out = Path(tmp) / "wheel"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--quiet",
                "-w",
                str(out),
                str(clean),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        built = sorted(out.glob(f"mlreg-{__version__}-*.whl"))
        if result.returncode != 0 or not built:
            raise BuildError(f"building mlreg's wheel failed: {result.stderr.strip()[-500:]}")
        try:
            out.rename(cache)  # whole or not at all; another process may have won
        except OSError:
            if not any(cache.glob(f"mlreg-{__version__}-*.whl")):
                raise


def model_labels(model: ResolvedModel, mlmodel: Model, extra: dict[str, str]) -> dict[str, str]:
    labels = {
        "org.opencontainers.image.created": datetime.now(timezone.utc).isoformat(
            timespec="seconds"
        ),
        "org.opencontainers.image.version": str(model.version) if model.version else __version__,
        "org.opencontainers.image.source": model.uri,
        "org.opencontainers.image.title": model.name or Path(model.path).name,
        f"{LABEL_PREFIX}.model.name": model.name or "",
        f"{LABEL_PREFIX}.model.version": str(model.version or ""),
        f"{LABEL_PREFIX}.model.stage": model.stage or "",
        f"{LABEL_PREFIX}.model.digest": f"sha256:{model.digest}" if model.digest else "",
        f"{LABEL_PREFIX}.model.uri": model.uri,
        f"{LABEL_PREFIX}.model.signature": json.dumps(
            mlmodel.signature.to_json_dict() if mlmodel.signature else None
        ),
        f"{LABEL_PREFIX}.version": __version__,
    }
    labels.update(extra)
    return labels


def template_text() -> str:
    return resources.files("mlreg.builder").joinpath("Dockerfile.template").read_text()


#: Placeholders whose values are whole instructions or shell lines mlreg writes itself; every
#: other value is words of safe characters that cannot break out of their line or word.
MULTILINE = frozenset(["labels", "pip_settings", "trim_tensorflow"])
_TOKEN = re.compile(r"[A-Za-z0-9._:/@+=,-]+")

#: --without-tensorflow: the gRPC client only imports TensorFlow's protocol buffer modules
#: (about 1 MB); the runtime, Keras and TensorBoard go. Rendered only for such images.
TRIM_TENSORFLOW = """\
    # --without-tensorflow: only TensorFlow's protocol buffer modules stay.
    find "$site/tensorflow" -type f ! -name '*_pb2.py' -delete; \\
    find "$site/tensorflow" -depth -type d -empty -delete; \\
    find "$site/tensorflow" -type d -exec sh -c ': > "$1/__init__.py"' _ {} \\; ; \\
    rm -rf "$site/keras" "$site"/tensorboard "$site"/tensorboard_data_server "$site/h5py"; \\
"""


def render(values: dict[str, str]) -> str:
    """Fill ``{{name}}`` placeholders; a placeholder without a value is an error, and a value
    that could add a line or a shell word to the Dockerfile (an injection) is refused."""
    missing = sorted(set(_PLACEHOLDER.findall(template_text())) - set(values))
    if missing:
        raise BuildError(f"Dockerfile.template needs values for: {', '.join(missing)}")
    for name, value in values.items():
        if name in MULTILINE:
            continue
        if not all(_TOKEN.fullmatch(word) for word in value.split(" ")):
            raise InvalidInput(
                f"{name.replace('_', ' ')} {value!r} cannot go into a Dockerfile: expected "
                "letters, digits and . _ : / @ + = , - only"
            )
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template_text())


def _label_instruction(labels: dict[str, str]) -> str:
    lines = [f"    {json.dumps(k)}={json.dumps(v)}" for k, v in sorted(labels.items())]
    return "LABEL \\\n" + " \\\n".join(lines)


def write_context(uri: str, dest: Path, options: BuildOptions) -> BuildContext:
    """Write a complete build context for the model ``uri`` into ``dest`` (new or empty)."""
    if dest.exists() and any(dest.iterdir()):
        raise InvalidInput(f"build directory {dest} exists and is not empty")
    model = resolve_model_uri(uri)
    mlmodel = Model.load(model.path)
    if options.require_signature and mlmodel.signature is None:
        raise InvalidInput(
            f"model {uri} has no signature, so the server could not check requests; save it "
            "with a signature or input_example (or pass --no-require-signature)"
        )
    if options.wheelhouse is not None and not options.wheelhouse.is_dir():
        raise InvalidInput(f"wheelhouse {options.wheelhouse} is not a directory")
    if options.pip_cert is not None and not options.pip_cert.is_file():
        raise InvalidInput(f"pip certificate {options.pip_cert} is not a file")
    flags = pip_options(options)
    if options.without_tensorflow and options.gpu:
        raise InvalidInput(
            "--without-tensorflow and --gpu contradict each other: an image without TensorFlow "
            "forwards to TF Serving, which does the GPU work"
        )
    base = options.base_image or default_base_image(read_python_version(model.path))
    labels = model_labels(model, mlmodel, options.labels)

    index = index_settings(options)

    # Written next to ``dest`` and renamed into place: a failure leaves no half context.
    dest.parent.mkdir(parents=True, exist_ok=True)
    final, dest = dest, Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        built = _fill_context(dest, model, mlmodel, options, base, labels, index, flags)
        if final.exists():
            final.rmdir()  # empty: checked above
        dest.rename(final)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dataclasses.replace(built, path=final)


def _fill_context(
    dest: Path,
    model: ResolvedModel,
    mlmodel: Model,
    options: BuildOptions,
    base: str,
    labels: dict[str, str],
    index: IndexSettings,
    flags: str,
) -> BuildContext:
    copy_model_files(model.path, dest / "model")
    wheels = dest / "wheels"
    wheels.mkdir()
    if options.wheelhouse is not None:
        for wheel in options.wheelhouse.iterdir():
            if wheel.is_file() and wheel.suffix in (".whl", ".gz", ".zip"):
                _link_or_copy(wheel, wheels / wheel.name)
    if not any(wheels.glob(f"mlreg-{__version__}-*.whl")):
        mlreg_wheel(wheels)
    if index.cert is not None:
        shutil.copy2(index.cert, wheels / CERT_NAME)
    reqs = image_requirements(read_requirements(model.path), options.gpu)
    (dest / "requirements.txt").write_text("".join(f"{r}\n" for r in reqs))
    (dest / ".dockerignore").write_text("*\n!Dockerfile\n!requirements.txt\n!wheels/\n!model/\n")
    dockerfile = render(
        {
            # A comment only; a directory's name may hold anything, so it is made a token.
            "model_name": re.sub(r"[^A-Za-z0-9._-]", "_", model.name or Path(model.path).name),
            "base_image": base,
            "build_image": options.build_image or base,
            "pip_settings": pip_settings(index, options.offline),
            "pip_options": flags,
            "trim_tensorflow": TRIM_TENSORFLOW if options.without_tensorflow else "",
            "backend": "tfserving" if options.without_tensorflow else "local",
            "uid": str(IMAGE_UID),
            "labels": _label_instruction(labels),
        }
    )
    (dest / "Dockerfile").write_text(dockerfile)
    return BuildContext(
        dest,
        model,
        base,
        options.build_image or base,
        labels,
        requirements=reqs,
        offline=options.offline,
    )


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link where the file system allows (wheels are large and never edited)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
