"""This machine's pip index settings, to pass into an image build.

``pip config list`` prints the configuration pip itself uses here: every pip.conf in pip's
order, then the ``PIP_*`` variables (as ``:env:.name``). An install inherits ``global``, then
``install``, then the environment, each overriding the one before. Only settings a build can
use are passed on: http(s) indexes, trusted hosts and the CA bundle. Paths on this machine
(``file://`` indexes, local ``find-links``) mean nothing inside the build; they are listed in
``skipped`` so the user hears why they do not apply.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from mlreg.errors import BuildError

# Later sections override earlier ones, as in pip's own option parser.
_SECTIONS = ("global", "install", ":env:")


@dataclass(frozen=True)
class IndexSettings:
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    cert: Path | None = None
    #: Settings not passed on, as "name value (why)" for a note.
    skipped: tuple[str, ...] = ()


def host_settings() -> IndexSettings:
    """The index settings pip uses on this machine (pip.conf files and PIP_* variables)."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(
            "cannot read this machine's pip configuration (`pip config list`): "
            + (result.stderr.strip().splitlines() or ["no output"])[-1]
        )
    return from_config(parse(result.stdout))


def parse(text: str) -> dict[str, str]:
    """``pip config list`` output -> the effective value of each setting."""
    found: dict[tuple[str, str], str] = {}
    for line in text.splitlines():
        key, sep, raw = line.partition("=")
        section, _, name = key.rpartition(".")
        if not sep or section not in _SECTIONS:
            continue
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            continue
        found[(section, name)] = str(value)
    effective: dict[str, str] = {}
    for section in _SECTIONS:
        for (where, name), value in found.items():
            if where == section:
                effective[name] = value
    return effective


def _is_remote(url: str) -> bool:
    return urlparse(url).scheme in ("http", "https")


def from_config(config: dict[str, str]) -> IndexSettings:
    skipped: list[str] = []
    local = "a path on this machine"
    index_url = config.get("index-url")
    if index_url and not _is_remote(index_url):
        skipped.append(f"index-url {index_url} ({local})")
        index_url = None
    extras = []
    for url in config.get("extra-index-url", "").split():
        if _is_remote(url):
            extras.append(url)
        else:
            skipped.append(f"extra-index-url {url} ({local})")
    for link in config.get("find-links", "").split():
        skipped.append(f"find-links {link} (use --wheelhouse for wheels of your own)")
    cert = None
    if config.get("cert"):
        cert = Path(config["cert"])
        if not cert.is_file():
            skipped.append(f"cert {cert} (not a file)")
            cert = None
    return IndexSettings(
        index_url=index_url,
        extra_index_urls=tuple(extras),
        trusted_hosts=tuple(config.get("trusted-host", "").split()),
        cert=cert,
        skipped=tuple(skipped),
    )
