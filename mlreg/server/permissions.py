"""What each route needs: a permission level on a resource, declared next to the route.

Levels are ordered: READ < EDIT (log, register versions) < PROMOTE (stages, aliases) <
MANAGE (grants, delete, rename) < ADMIN (users, everything). A route on a resource says where
the request names it (:class:`Ref`): a view argument (``/models/<name>``), a field of the JSON
body (``POST /runs`` names its experiment there) or a query parameter — so one check before
every handler (:mod:`mlreg.server.access.guard`) enforces every route, and the permission-matrix
tests are generated from these declarations.

Server-wide levels below ADMIN mean "any signed-in user": searches then show only what the
caller may read, and what they create they MANAGE.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from mlreg.errors import InvalidInput


class Level(enum.IntEnum):
    NONE = 0  # open to anyone (health probes, the API document)
    READ = 1
    EDIT = 2
    PROMOTE = 3
    MANAGE = 4
    ADMIN = 5

    @classmethod
    def parse(cls, text: str, *, grantable: bool = False) -> Level:
        """``read`` -> READ; InvalidInput naming the choices (only READ..MANAGE when
        ``grantable``: admin is a property of a user, not a grant)."""
        choices = [lv for lv in cls if not grantable or Level.READ <= lv <= Level.MANAGE]
        for level in choices:
            if text.strip().upper() == level.name:
                return level
        names = ", ".join(lv.name for lv in choices)
        raise InvalidInput(f"permission: expected one of {names}, got {text!r}")


class Resource(str, enum.Enum):
    SERVER = "server"  # no particular resource: the level applies server-wide
    MODEL = "model"  # named by its name
    EXPERIMENT = "experiment"  # named by its id
    EXPERIMENT_NAME = "experiment_name"  # an experiment named by its name
    RUN = "run"  # checked on the run's experiment
    LOGGED_MODEL = "logged_model"  # checked on the logged model's experiment
    #: A path of MLflow's artifact proxy: checked on the experiment its first segment names
    #: (``<experiment id>/<run id>/artifacts/...``), or the registered model of a
    #: ``registry/<name>/<version>/...`` path.
    ARTIFACT_PATH = "artifact_path"
    USER = "user"  # a user's own things (tokens, password): the user themself, or an admin
    WEBHOOK = "webhook"  # checked as MANAGE on its model (admin for server-wide webhooks)


PLACES = ("path", "body", "query", "message")


@dataclass(frozen=True)
class Ref:
    """Where a request names its resource.

    ``place`` is ``path`` (a view argument), ``body`` (a JSON body field: a value or a list of
    values, each checked), ``query`` (a query parameter) or ``message`` (a field of MLflow's
    request message: the query string of a GET, the JSON body otherwise). ``parse`` turns the
    raw value into the resource's key (e.g. a ``models:/`` URI into the model's name).
    ``absent`` is the key to check when the field is missing (the Default experiment for
    ``POST /runs``);
    None: then the route needs only a signed-in caller (what it touches it creates, or it
    answers 404) — or an admin, with ``admin_when_absent`` (``/audit?model=`` is the model's
    managers', the whole trail the admins').
    """

    place: str
    field: str
    parse: Callable[[str], str] | None = None
    absent: str | None = None
    #: The resource ``absent`` names, when it is not the route's (an experiment by name).
    absent_resource: Resource | None = None
    admin_when_absent: bool = False
    #: An older name of the field, read when the field is missing (MLflow's ``run_uuid``).
    alias: str | None = None

    def __post_init__(self) -> None:
        if self.place not in PLACES:
            raise ValueError(f"Ref.place: expected one of {PLACES}, got {self.place!r}")


@dataclass(frozen=True)
class Permission:
    """``level`` on the resource a request names where ``ref`` says (``arg`` is short for a
    view argument)."""

    level: Level
    resource: Resource = Resource.SERVER
    arg: str | None = None
    ref: Ref | None = None

    def __post_init__(self) -> None:
        if self.ref is None and self.arg is not None:
            object.__setattr__(self, "ref", Ref("path", self.arg))
        if self.resource is not Resource.SERVER and self.ref is None:
            raise ValueError(f"a permission on a {self.resource.value} needs a ref or an arg")

    def describe(self) -> str:
        """For the OpenAPI document: e.g. ``PROMOTE on the model (path 'name')``."""
        if self.level is Level.NONE:
            return "none (public)"
        if self.level is Level.ADMIN:
            return "ADMIN"
        if self.resource is Resource.SERVER:
            return "a signed-in user"
        assert self.ref is not None
        described = (
            f"{self.level.name} on the {self.resource.value} ({self.ref.place} '{self.ref.field}')"
        )
        return described + (", ADMIN without it" if self.ref.admin_when_absent else "")


PUBLIC = Permission(Level.NONE)
ADMIN = Permission(Level.ADMIN)


def path(field: str) -> Ref:
    return Ref("path", field)


def body(
    field: str,
    *,
    absent: str | None = None,
    absent_resource: Resource | None = None,
    parse: Callable[[str], str] | None = None,
) -> Ref:
    return Ref("body", field, parse, absent, absent_resource)


def query(
    field: str, *, parse: Callable[[str], str] | None = None, admin_when_absent: bool = False
) -> Ref:
    return Ref("query", field, parse, admin_when_absent=admin_when_absent)


def message(
    field: str,
    *,
    absent: str | None = None,
    alias: str | None = None,
    admin_when_absent: bool = False,
) -> Ref:
    """A field of MLflow's request message (the query string of a GET, the JSON body else)."""
    return Ref("message", field, None, absent, admin_when_absent=admin_when_absent, alias=alias)


def model(level: Level, arg: str = "name", *, ref: Ref | None = None) -> Permission:
    return Permission(level, Resource.MODEL, None if ref else arg, ref)


def experiment(level: Level, arg: str = "experiment_id", *, ref: Ref | None = None) -> Permission:
    return Permission(level, Resource.EXPERIMENT, None if ref else arg, ref)


def experiment_named(level: Level, ref: Ref) -> Permission:
    return Permission(level, Resource.EXPERIMENT_NAME, None, ref)


def run(level: Level, arg: str = "run_id", *, ref: Ref | None = None) -> Permission:
    return Permission(level, Resource.RUN, None if ref else arg, ref)


def own(arg: str = "user") -> Permission:
    """The user named by ``arg`` themself, or an admin (their tokens, their password)."""
    return Permission(Level.MANAGE, Resource.USER, arg)


def webhook(arg: str = "webhook_id") -> Permission:
    return Permission(Level.MANAGE, Resource.WEBHOOK, arg)


def logged_model(level: Level, arg: str = "model_id", *, ref: Ref | None = None) -> Permission:
    return Permission(level, Resource.LOGGED_MODEL, None if ref else arg, ref)


def artifact_path(
    level: Level, arg: str = "artifact_path", *, ref: Ref | None = None
) -> Permission:
    return Permission(level, Resource.ARTIFACT_PATH, None if ref else arg, ref)


def server(level: Level) -> Permission:
    """Any signed-in user (below ADMIN there are no server-wide grants): searches show what
    they may read; what they create they MANAGE."""
    return Permission(level)
