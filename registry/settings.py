"""Registry settings, read once from ``MLREG_*`` environment variables."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RegistrySettings:
    """Where the registry keeps its database and artifacts, and who is acting."""

    registry_uri: str
    artifact_root: Path
    user: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RegistrySettings:
        env = os.environ if environ is None else environ
        home = Path(env.get("MLREG_HOME") or ".mlreg").expanduser().absolute()
        uri = env.get("MLREG_REGISTRY_URI") or f"sqlite:///{home / 'registry.db'}"
        root = Path(env.get("MLREG_ARTIFACT_ROOT") or home / "artifacts").expanduser().absolute()
        return cls(registry_uri=uri, artifact_root=root, user=env.get("MLREG_USER") or _os_user())

    @classmethod
    def for_home(cls, home: str | os.PathLike[str], user: str = "test") -> RegistrySettings:
        """The embedded layout under one directory (handy for tests and scripts)."""
        home = Path(home).absolute()
        return cls(f"sqlite:///{home / 'registry.db'}", home / "artifacts", user)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
