"""Wheelhouses: every wheel an image installs, downloaded on the host and checked offline.

``pip download`` runs as a subprocess in the host's own environment, so the host's pip
configuration (pip.conf, ``PIP_*``: index, mirrors, certificates, proxies) applies exactly as
it does to any ``pip install`` there, and nothing needs the network inside the build.

The check runs pip the way the image's offline install does: no index and no configuration,
only the wheelhouse, for the image's Python and platform (``pip install --dry-run``). pip
stops at the first requirement it cannot find; a stand-in wheel for it (metadata only, in a
directory of its own) lets the next run find the next one, so one check names them all.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from mlreg.builder import failure
from mlreg.errors import BuildError, InvalidInput

#: Debian bookworm, the base of the official python:3.x-slim images.
DEFAULT_GLIBC = "2.36"
#: Installed --no-deps: it declares the full `tensorflow`, which the image has as tensorflow-cpu.
TF_SERVING_API = "tensorflow-serving-api"
_MISSING = re.compile(
    r"Could not find a version that satisfies the requirement (?P<req>.+?) "
    r"\(from versions: (?P<versions>[^)]*)\)"
)
_ARCH = re.compile(r"^(?:manylinux_\d+_\d+|manylinux\d+|musllinux_\d+_\d+|linux)_(?P<arch>\w+)$")
# More rounds than any real wheelhouse lacks top-level names; each round is well under 1 s.
_MAX_ROUNDS = 30


@dataclass(frozen=True)
class Target:
    """The interpreter and platform tags the image's pip accepts."""

    python_version: str  # major.minor
    platforms: tuple[str, ...]

    @classmethod
    def manylinux(
        cls, python_version: str, glibc: str = DEFAULT_GLIBC, machine: str = "x86_64"
    ) -> Target:
        """Every manylinux tag a glibc accepts, newest first.

        pip widens only the legacy ``manylinux2014`` tag to older ones, so every
        ``manylinux_2_N`` is listed.
        """
        match = re.fullmatch(r"2\.(\d+)(?:\.\d+)?", glibc)
        if match is None:
            raise InvalidInput(f"glibc {glibc!r} is not a glibc 2.N with manylinux tags")
        tags = [f"manylinux_2_{n}_{machine}" for n in range(int(match[1]), 4, -1)]
        return cls(major_minor(python_version), (*tags, f"manylinux2014_{machine}"))

    def describe(self) -> str:
        shown = self.platforms[0] + (" and older" if len(self.platforms) > 1 else "")
        return f"cp{self.python_version.replace('.', '')} on {shown}"

    def pip_args(self, *, local_wheels: bool = False) -> list[str]:
        """``--platform`` and friends; ``local_wheels`` also accepts wheels built on a host
        (``linux_<arch>``), which a wheelhouse may hold but no index serves."""
        platforms = list(self.platforms)
        if local_wheels:
            arches = dict.fromkeys(m["arch"] for p in platforms if (m := _ARCH.match(p)))
            platforms += [f"linux_{arch}" for arch in arches if f"linux_{arch}" not in platforms]
        args = ["--only-binary=:all:", "--implementation", "cp"]
        args += ["--python-version", self.python_version]
        for tag in platforms:
            args += ["--platform", tag]
        return args


def host_machine() -> str:
    """This machine's architecture as platform tags spell it."""
    machine = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine)


def major_minor(version: str) -> str:
    parts = version.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise InvalidInput(f"Python version {version!r} is not MAJOR.MINOR, e.g. 3.11")
    return ".".join(parts[:2])


def download(
    requirements: list[str],
    mlreg_wheel: Path,
    dest: Path,
    target: Target,
    log: Path,
    on_line: Callable[[str], None] = lambda _: None,
) -> None:
    """``pip download`` every wheel the image installs into ``dest``, with the host's pip.

    ``mlreg_wheel`` stands for mlreg itself (no index has the running mlreg); the model's
    own ``mlreg`` pin is left to the check, which says so if the two differ.
    """
    others = [r for r in requirements if _name(r) != "mlreg"]
    base = [sys.executable, "-m", "pip", "download", "--progress-bar", "off", "-d", str(dest)]
    runs = [
        [*base, *target.pip_args(), str(mlreg_wheel), *others],
        [*base, *target.pip_args(), "--no-deps", TF_SERVING_API],
    ]
    with log.open("a") as out:
        for cmd in runs:
            out.write(f"$ {' '.join(cmd)}\n")
            lines = _run(cmd, None, out, on_line)
            if lines is not None:
                raise BuildError(
                    failure.explain(
                        f"pip download for {target.describe()} failed",
                        lines,
                        failure.download_advice(lines, target.describe()),
                        log,
                    )
                )


def _run(
    cmd: list[str],
    env: dict[str, str] | None,
    log: TextIO | None,
    on_line: Callable[[str], None],
) -> list[str] | None:
    """Run pip, copying its output to ``log``; its output lines if it failed, else None."""
    lines: list[str] = []
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            if log is not None:
                log.write(raw)
            on_line(line)
    return lines if proc.returncode else None


def _name(requirement: str) -> str:
    try:
        return canonicalize_name(Requirement(requirement).name)
    except InvalidRequirement:
        return ""


def check(wheels: Path, requirements: list[str], target: Target) -> list[str]:
    """The requirements an offline install from ``wheels`` cannot satisfy (empty: none).

    Mirrors the image: the requirements, then TF Serving's client with --no-deps. A conflict
    between wheels that are present (not a missing one) is a BuildError with pip's words.
    """
    missing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mlreg-wheelhouse-check-") as tmp:
        stubs = Path(tmp) / "stubs"
        stubs.mkdir()
        (Path(tmp) / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
        for reqs, no_deps in ((["-r", str(Path(tmp) / "requirements.txt")], False),
                              ([TF_SERVING_API], True)):  # fmt: skip
            missing += _missing(wheels, stubs, Path(tmp) / "target", reqs, no_deps, target)
    return missing


def _missing(
    wheels: Path, stubs: Path, target_dir: Path, reqs: list[str], no_deps: bool, target: Target
) -> list[str]:
    # The image's pip sees no configuration: neither the host's pip.conf nor its PIP_* vars.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    cmd = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-index",
        "--disable-pip-version-check", "--find-links", str(wheels), "--find-links", str(stubs),
        "--target", str(target_dir), *target.pip_args(local_wheels=True),
        *(["--no-deps"] if no_deps else []), *reqs,
    ]  # fmt: skip
    found: list[str] = []
    for _ in range(_MAX_ROUNDS):
        lines = _run(cmd, env, None, lambda _: None)
        if lines is None:
            return found
        match = next((m for line in lines if (m := _MISSING.search(line))), None)
        if match is None:
            errors = [line for line in lines if line.startswith("ERROR:")] or lines[-5:]
            raise BuildError(
                f"pip cannot resolve the requirements from {wheels} alone: " + " ".join(errors)
            )
        text = match["req"]
        if match["versions"] != "none":
            text += f" (found only {match['versions']})"
        if text in found:  # its stand-in did not satisfy pip: stop here
            break
        found.append(text)
        if not _stub(stubs, match["req"]):
            break
    else:
        found.append("(maybe more)")
    return found


def _stub(stubs: Path, text: str) -> bool:
    """A metadata-only wheel that satisfies ``text`` ("numpy>=1.24 (from mlreg)")."""
    try:
        req = Requirement(text.split(" (from ", 1)[0])
    except InvalidRequirement:
        return False
    version = _satisfying_version(req.specifier)
    if version is None:
        return False
    name = canonicalize_name(req.name)
    dist = f"{name.replace('-', '_')}-{version}"
    with zipfile.ZipFile(stubs / f"{dist}-py3-none-any.whl", "w") as z:
        z.writestr(
            f"{dist}.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        )
        z.writestr(
            f"{dist}.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: mlreg\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr(f"{dist}.dist-info/RECORD", "")
    return True


def _satisfying_version(spec: SpecifierSet) -> str | None:
    """A version inside ``spec``: one it names, just above one, or the far ends."""
    candidates = []
    for s in spec:
        v = s.version.removesuffix(".*")
        candidates += [v, f"{v}.1", f"{v}.0.1"]
    candidates += ["0", "9999"]
    return next((c for c in candidates if spec.contains(c, prereleases=True)), None)


def wheel_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix == ".whl")
