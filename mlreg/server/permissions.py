"""What each route needs: a permission level on a resource, declared next to the route.

Levels are ordered: READ < EDIT (log, register versions) < PROMOTE (stages, aliases) <
MANAGE (grants, delete, rename) < ADMIN (users, everything). A route on a registered model
names the view argument that holds the model's name; one on an experiment or a run, the
argument that identifies it. The permission-matrix tests are generated from these
declarations, so a route cannot be added without one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Level(enum.IntEnum):
    NONE = 0  # open to anyone (health probes, the API document)
    READ = 1
    EDIT = 2
    PROMOTE = 3
    MANAGE = 4
    ADMIN = 5


class Resource(str, enum.Enum):
    SERVER = "server"  # no particular resource: the level applies server-wide
    MODEL = "model"
    EXPERIMENT = "experiment"
    RUN = "run"  # checked on the run's experiment
    LOGGED_MODEL = "logged_model"  # checked on the logged model's experiment
    #: A path of MLflow's artifact proxy: checked on the experiment its first segment names
    #: (``<experiment id>/<run id>/artifacts/...``), or the registered model of a
    #: ``registry/<name>/<version>/...`` path.
    ARTIFACT_PATH = "artifact_path"


@dataclass(frozen=True)
class Permission:
    """``level`` on the resource named by the view argument ``arg`` (or by the JSON body)."""

    level: Level
    resource: Resource = Resource.SERVER
    arg: str | None = None


PUBLIC = Permission(Level.NONE)
ADMIN = Permission(Level.ADMIN)


def model(level: Level, arg: str = "name") -> Permission:
    return Permission(level, Resource.MODEL, arg)


def experiment(level: Level, arg: str = "experiment_id") -> Permission:
    return Permission(level, Resource.EXPERIMENT, arg)


def run(level: Level, arg: str = "run_id") -> Permission:
    return Permission(level, Resource.RUN, arg)


def logged_model(level: Level, arg: str = "model_id") -> Permission:
    return Permission(level, Resource.LOGGED_MODEL, arg)


def artifact_path(level: Level, arg: str = "artifact_path") -> Permission:
    return Permission(level, Resource.ARTIFACT_PATH, arg)


def server(level: Level) -> Permission:
    """A level needed server-wide (e.g. READ to search every model)."""
    return Permission(level)
