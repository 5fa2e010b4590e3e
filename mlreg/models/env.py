"""Environment files saved with a model: requirements.txt, python_env.yaml, conda.yaml."""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement

from mlreg.credentials import has_credentials, redact
from mlreg.errors import InvalidInput
from mlreg.version import __version__

REQUIREMENTS_FILE = "requirements.txt"
PYTHON_ENV_FILE = "python_env.yaml"
CONDA_ENV_FILE = "conda.yaml"

RequirementsArg = list[str] | str | os.PathLike[str] | None


def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def infer_pip_requirements(packages: list[str]) -> list[str]:
    """Pin each distribution to the version installed here: ``numpy==2.4.6``."""
    pinned = []
    for name in packages:
        version = installed_version(name)
        if version is None:
            raise InvalidInput(f"cannot pin requirement {name!r}: it is not installed")
        pinned.append(f"{name}=={version}")
    return pinned


def default_tensorflow_requirements() -> list[str]:
    """What a TensorFlow model needs: mlreg, TensorFlow (CPU build preferred) and numpy."""
    tf_dist = next(
        (d for d in ("tensorflow-cpu", "tensorflow") if installed_version(d) is not None), None
    )
    if tf_dist is None:
        raise InvalidInput("TensorFlow is not installed (pip install tensorflow-cpu)")
    return [f"mlreg=={__version__}", *infer_pip_requirements([tf_dist, "numpy"])]


def _parse(lines: list[str], origin: str) -> list[str]:
    reqs = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if has_credentials(line):
            raise InvalidInput(
                f"{origin} line {number}: {redact(line)!r} carries credentials, which would be "
                "written into requirements.txt, conda.yaml and images; give them to pip on the "
                "machine that installs (pip.conf, PIP_INDEX_URL, a netrc file) instead"
            )
        try:
            Requirement(line)
        except InvalidRequirement as e:
            raise InvalidInput(
                f"{origin} line {number}: {line!r} is not a valid requirement ({e})"
            ) from None
        reqs.append(line)
    return reqs


def _requirement_list(arg: RequirementsArg, what: str) -> list[str]:
    if arg is None:
        return []
    if isinstance(arg, str | os.PathLike):
        path = Path(arg)
        if not path.is_file():
            raise InvalidInput(f"{what}: {str(arg)!r} is not a file; pass a list of requirements")
        return _parse(path.read_text().splitlines(), str(path))
    return _parse(list(arg), what)


def resolve_requirements(
    default: list[str],
    pip_requirements: RequirementsArg = None,
    extra_pip_requirements: RequirementsArg = None,
) -> list[str]:
    """Return the model's requirements: the defaults, replaced or extended by the user's."""
    if pip_requirements is not None and extra_pip_requirements is not None:
        raise InvalidInput("pass pip_requirements or extra_pip_requirements, not both")
    if pip_requirements is not None:
        return _requirement_list(pip_requirements, "pip_requirements")
    extra = _requirement_list(extra_pip_requirements, "extra_pip_requirements")
    return [*default, *(r for r in extra if r not in default)]


def write_env_files(
    model_dir: str | os.PathLike[str], requirements: list[str], python_version: str | None = None
) -> None:
    """Write requirements.txt, python_env.yaml and conda.yaml as MLflow lays them out."""
    root = Path(model_dir)
    python_version = python_version or ".".join(map(str, sys.version_info[:3]))
    (root / REQUIREMENTS_FILE).write_text("".join(f"{r}\n" for r in requirements))
    build = [f"{d}=={v}" for d in ("pip", "setuptools", "wheel") if (v := installed_version(d))]
    python_env = {
        "python": python_version,
        "build_dependencies": build,
        "dependencies": [f"-r {REQUIREMENTS_FILE}"],
    }
    (root / PYTHON_ENV_FILE).write_text(yaml.safe_dump(python_env, sort_keys=False))
    pip_version = installed_version("pip")
    conda = {
        "channels": ["conda-forge"],
        "dependencies": [
            f"python={python_version}",
            f"pip<={pip_version}" if pip_version else "pip",
            {"pip": list(requirements)},
        ],
        "name": "mlreg-env",
    }
    (root / CONDA_ENV_FILE).write_text(yaml.safe_dump(conda, sort_keys=False))


def read_requirements(model_dir: str | os.PathLike[str]) -> list[str]:
    path = Path(model_dir) / REQUIREMENTS_FILE
    if not path.is_file():
        return []
    return _parse(path.read_text().splitlines(), str(path))


def read_python_version(model_dir: str | os.PathLike[str]) -> str | None:
    path = Path(model_dir) / PYTHON_ENV_FILE
    if not path.is_file():
        return None
    doc = yaml.safe_load(path.read_text())
    return str(doc.get("python")) if isinstance(doc, dict) and doc.get("python") else None
