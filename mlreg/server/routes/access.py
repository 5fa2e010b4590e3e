"""``/api/v1/users``, ``/groups``, tokens and grants: who may sign in, and who may do what.

Users and groups are the admins' (a user manages their own tokens and password); the grants
on a model or an experiment are its managers' (MANAGE).
"""

from __future__ import annotations

from typing import Any

from flask import Response

from mlreg.server import permissions as perm
from mlreg.server.access.entities import Grant
from mlreg.server.api import ok
from mlreg.server.permissions import Level, Resource
from mlreg.server.routes import acting, acting_user, api, caller, services
from mlreg.server.routes.registry import _obj, _wrap

TAG = "access"
NAME = {"type": "string", "maxLength": 64}
USER = {"$ref": "#/components/schemas/User"}
GROUP = {"$ref": "#/components/schemas/Group"}
TOKEN = {"$ref": "#/components/schemas/Token"}
GRANTS = _obj({"grants": {"type": "array", "items": {"$ref": "#/components/schemas/Grant"}}})
GRANT_BODY = _obj({"permission": {"enum": ["READ", "EDIT", "PROMOTE", "MANAGE"]}}, ["permission"])


# --- who am I -------------------------------------------------------------------------------


@api.route(
    "GET",
    "/whoami",
    permission=perm.server(Level.READ),
    summary="The signed-in user (without authentication: the user the client names).",
    tag=TAG,
    response=_obj({"user": USER, "authenticated": {"type": "boolean"}}),
)
def whoami() -> Response:
    signed_in = caller()
    if signed_in is None:
        doc = {"name": acting_user(), "is_admin": True, "has_password": False, "groups": []}
        return ok({"user": {**doc, "created_at": None}, "authenticated": False})
    user = services().access.get_user(signed_in.name)
    return ok({"user": user.to_dict(), "authenticated": True})


# --- users ----------------------------------------------------------------------------------


@api.route(
    "GET",
    "/users",
    permission=perm.ADMIN,
    summary="Every user, with their groups.",
    tag=TAG,
    response=_obj({"users": {"type": "array", "items": USER}}),
)
def list_users() -> Response:
    return ok({"users": [u.to_dict() for u in services().access.list_users()]})


@api.route(
    "POST",
    "/users",
    permission=perm.ADMIN,
    summary="Create a user (with a password, or none: token-only), optionally an admin.",
    tag=TAG,
    body=_obj(
        {
            "name": NAME,
            "password": {"type": ["string", "null"], "maxLength": 1024},
            "admin": {"type": "boolean"},
        },
        ["name"],
    ),
    response=_wrap("user", USER),
    status=201,
)
def create_user(body: dict[str, Any]) -> Response:
    user = services().access.create_user(
        acting(), body["name"], body.get("password"), bool(body.get("admin", False))
    )
    return ok({"user": user.to_dict()}, 201)


@api.route(
    "GET",
    "/users/<user>",
    permission=perm.own(),
    summary="One user (yourself, or anyone for an admin).",
    tag=TAG,
    response=_wrap("user", USER),
)
def get_user(user: str) -> Response:
    return ok({"user": services().access.get_user(user).to_dict()})


@api.route(
    "PATCH",
    "/users/<user>",
    permission=perm.ADMIN,
    summary="Make a user an admin, or no longer one.",
    tag=TAG,
    body=_obj({"admin": {"type": "boolean"}}, ["admin"]),
    response=_wrap("user", USER),
)
def update_user(user: str, body: dict[str, Any]) -> Response:
    updated = services().access.set_admin(acting(), user, bool(body["admin"]))
    return ok({"user": updated.to_dict()})


@api.route(
    "DELETE",
    "/users/<user>",
    permission=perm.ADMIN,
    summary="Delete a user, their tokens and grants (never the last admin).",
    tag=TAG,
    response=_obj({}),
)
def delete_user(user: str) -> Response:
    services().access.delete_user(acting(), user)
    return ok({})


@api.route(
    "PUT",
    "/users/<user>/password",
    permission=perm.own(),
    summary="Set a user's password (your own, or anyone's for an admin).",
    tag=TAG,
    body=_obj({"password": {"type": "string", "maxLength": 1024}}, ["password"]),
    response=_obj({}),
)
def set_password(user: str, body: dict[str, Any]) -> Response:
    services().access.set_password(acting(), user, body["password"])
    return ok({})


# --- tokens ---------------------------------------------------------------------------------


@api.route(
    "GET",
    "/users/<user>/tokens",
    permission=perm.own(),
    summary="A user's API tokens: name, first characters, state, expiry, last use.",
    tag=TAG,
    response=_obj({"tokens": {"type": "array", "items": TOKEN}}),
)
def list_tokens(user: str) -> Response:
    return ok({"tokens": [t.to_dict() for t in services().access.list_tokens(user)]})


@api.route(
    "POST",
    "/users/<user>/tokens",
    permission=perm.own(),
    summary="Create an API token; the answer holds the token itself, shown this once.",
    tag=TAG,
    body=_obj(
        {
            "name": {"type": "string", "maxLength": 64},
            "days": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 3650},
            "never_expires": {"type": "boolean"},
        },
        ["name"],
    ),
    response=_obj({"token": TOKEN, "secret": {"type": "string"}}),
    status=201,
)
def create_token(user: str, body: dict[str, Any]) -> Response:
    token, secret = services().access.create_token(
        acting(),
        user,
        body["name"],
        body.get("days"),
        never_expires=bool(body.get("never_expires", False)),
    )
    return ok({"token": token.to_dict(), "secret": secret}, 201)


@api.route(
    "DELETE",
    "/users/<user>/tokens/<int:token_id>",
    permission=perm.own(),
    summary="Revoke a token (it stops working at once; it stays listed as revoked).",
    tag=TAG,
    response=_wrap("token", TOKEN),
)
def revoke_token(user: str, token_id: int) -> Response:
    return ok({"token": services().access.revoke_token(acting(), user, token_id).to_dict()})


# --- groups ---------------------------------------------------------------------------------


@api.route(
    "GET",
    "/groups",
    permission=perm.server(Level.READ),
    summary="Every group and its members (the built-in 'everyone' holds every user).",
    tag=TAG,
    response=_obj({"groups": {"type": "array", "items": GROUP}}),
)
def list_groups() -> Response:
    return ok({"groups": [g.to_dict() for g in services().access.list_groups()]})


@api.route(
    "POST",
    "/groups",
    permission=perm.ADMIN,
    summary="Create a group (a team), to grant to all its members at once.",
    tag=TAG,
    body=_obj({"name": NAME}, ["name"]),
    response=_wrap("group", GROUP),
    status=201,
)
def create_group(body: dict[str, Any]) -> Response:
    return ok({"group": services().access.create_group(acting(), body["name"]).to_dict()}, 201)


@api.route(
    "DELETE",
    "/groups/<group>",
    permission=perm.ADMIN,
    summary="Delete a group and its grants (its members stay).",
    tag=TAG,
    response=_obj({}),
)
def delete_group(group: str) -> Response:
    services().access.delete_group(acting(), group)
    return ok({})


@api.route(
    "PUT",
    "/groups/<group>/members/<user>",
    permission=perm.ADMIN,
    summary="Add a user to a group.",
    tag=TAG,
    response=_wrap("group", GROUP),
)
def add_member(group: str, user: str) -> Response:
    return ok({"group": services().access.set_member(acting(), group, user, True).to_dict()})


@api.route(
    "DELETE",
    "/groups/<group>/members/<user>",
    permission=perm.ADMIN,
    summary="Remove a user from a group.",
    tag=TAG,
    response=_wrap("group", GROUP),
)
def remove_member(group: str, user: str) -> Response:
    return ok({"group": services().access.set_member(acting(), group, user, False).to_dict()})


# --- grants ---------------------------------------------------------------------------------


def _grants(items: list[Grant]) -> Response:
    return ok({"grants": [g.to_dict() for g in items]})


@api.route(
    "GET",
    "/models/<name>/grants",
    permission=perm.model(Level.MANAGE),
    summary="Who holds which permission on a model.",
    tag=TAG,
    response=GRANTS,
)
def model_grants(name: str) -> Response:
    return _grants(services().access.grants(Resource.MODEL, name))


@api.route(
    "PUT",
    "/models/<name>/grants/<principal>",
    permission=perm.model(Level.MANAGE),
    summary="Give a user or group READ, EDIT, PROMOTE or MANAGE on a model.",
    tag=TAG,
    body=GRANT_BODY,
    response=GRANTS,
)
def grant_model(name: str, principal: str, body: dict[str, Any]) -> Response:
    level = Level.parse(body["permission"], grantable=True)
    return _grants(services().access.grant(acting(), Resource.MODEL, name, principal, level))


@api.route(
    "DELETE",
    "/models/<name>/grants/<principal>",
    permission=perm.model(Level.MANAGE),
    summary="Take a user's or group's permission on a model away.",
    tag=TAG,
    response=GRANTS,
)
def revoke_model(name: str, principal: str) -> Response:
    return _grants(services().access.revoke(acting(), Resource.MODEL, name, principal))


@api.route(
    "GET",
    "/experiments/<experiment_id>/grants",
    permission=perm.experiment(Level.MANAGE),
    summary="Who holds which permission on an experiment.",
    tag=TAG,
    response=GRANTS,
)
def experiment_grants(experiment_id: str) -> Response:
    return _grants(services().access.grants(Resource.EXPERIMENT, experiment_id))


@api.route(
    "PUT",
    "/experiments/<experiment_id>/grants/<principal>",
    permission=perm.experiment(Level.MANAGE),
    summary="Give a user or group READ, EDIT, PROMOTE or MANAGE on an experiment.",
    tag=TAG,
    body=GRANT_BODY,
    response=GRANTS,
)
def grant_experiment(experiment_id: str, principal: str, body: dict[str, Any]) -> Response:
    level = Level.parse(body["permission"], grantable=True)
    access = services().access
    return _grants(access.grant(acting(), Resource.EXPERIMENT, experiment_id, principal, level))


@api.route(
    "DELETE",
    "/experiments/<experiment_id>/grants/<principal>",
    permission=perm.experiment(Level.MANAGE),
    summary="Take a user's or group's permission on an experiment away.",
    tag=TAG,
    response=GRANTS,
)
def revoke_experiment(experiment_id: str, principal: str) -> Response:
    access = services().access
    return _grants(access.revoke(acting(), Resource.EXPERIMENT, experiment_id, principal))
