"""How the commands reach the registry and tracking, from the ``MLREG_*`` settings.

Commands that only read never create a store: on a home where nothing was stored yet they
get no client, and say which store they looked in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from mlreg.store import StoreSettings
from mlreg.store.database import database_exists

C = TypeVar("C", bound=AbstractContextManager)


@dataclass(frozen=True)
class Opened(Generic[C]):
    """A client on the configured store, or None when a reader found no store there yet."""

    client: C | None
    settings: StoreSettings

    @property
    def where(self) -> str:
        """The store, password masked, for messages ("… (nothing stored there yet)")."""
        suffix = "" if self.client is not None else " (nothing stored there yet)"
        return self.settings.described + suffix


def store_exists(settings: StoreSettings) -> bool:
    """Whether anything was stored where ``settings`` point (a server always exists)."""
    return settings.remote or database_exists(settings.uri)


@contextmanager
def open_store(factory: Callable[[StoreSettings], C], read_only: bool) -> Iterator[Opened[C]]:
    """A client from ``factory`` on the configured store; with ``read_only`` and no store
    there yet, no client (and nothing created)."""
    settings = StoreSettings.from_env()
    if read_only and not store_exists(settings):
        yield Opened(None, settings)
        return
    with factory(settings) as client:
        yield Opened(client, settings)
