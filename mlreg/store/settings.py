"""Where mlreg keeps its data, read once from ``MLREG_*`` variables.

The registry and tracking both stand on these settings: one database (any SQLAlchemy URI;
SQLite under ``MLREG_HOME`` by default) and one artifact root.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlreg.errors import StoreError

HOME_VAR = "MLREG_HOME"
URI_VARS = ("MLREG_TRACKING_URI", "MLREG_REGISTRY_URI")
ARTIFACT_ROOT_VAR = "MLREG_ARTIFACT_ROOT"
USER_VAR = "MLREG_USER"
DEFAULT_HOME = ".mlreg"


@dataclass(frozen=True)
class StoreSettings:
    """The database URI, the artifact root, and who is acting."""

    uri: str
    artifact_root: Path
    user: str
    home: Path = Path(DEFAULT_HOME)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StoreSettings:
        """Read ``MLREG_HOME``, ``MLREG_TRACKING_URI`` (or ``MLREG_REGISTRY_URI``),
        ``MLREG_ARTIFACT_ROOT`` and ``MLREG_USER``; raise StoreError if they disagree."""
        env = os.environ if environ is None else environ
        home = Path(env.get(HOME_VAR) or DEFAULT_HOME).expanduser().absolute()
        given = {var: env[var].strip() for var in URI_VARS if env.get(var, "").strip()}
        if len(set(given.values())) > 1:
            raise StoreError(
                f"{' and '.join(given)} name different stores; set one of them (they mean the same)"
            )
        uri = next(iter(given.values()), None) or f"sqlite:///{home / 'registry.db'}"
        root = env.get(ARTIFACT_ROOT_VAR) or home / "artifacts"
        return cls(
            uri=uri,
            artifact_root=Path(root).expanduser().absolute(),
            user=env.get(USER_VAR) or _os_user(),
            home=home,
        )

    @classmethod
    def for_home(cls, home: str | os.PathLike[str], user: str = "test") -> StoreSettings:
        """The embedded layout under one directory (handy for tests and scripts)."""
        home = Path(home).absolute()
        return cls(f"sqlite:///{home / 'registry.db'}", home / "artifacts", user, home)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
