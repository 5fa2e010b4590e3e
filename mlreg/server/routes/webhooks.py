"""``/api/v1/webhooks``: URLs that receive the registry's events, signed, from the outbox.

A model's managers register webhooks for that model; admins register webhooks for every model.
The secret is shown once, at creation.
"""

from __future__ import annotations

from typing import Any

from flask import Response

from mlreg.server import permissions as perm
from mlreg.server.api import ok, query_int
from mlreg.server.permissions import Level
from mlreg.server.routes import acting, api, services
from mlreg.server.routes.registry import TEXT, _obj, _wrap
from mlreg.store.journal import EVENTS

TAG = "webhooks"
WEBHOOK = {"$ref": "#/components/schemas/Webhook"}
DELIVERY = {"$ref": "#/components/schemas/Delivery"}
CREATE = _obj(
    {
        "url": {"type": "string", "maxLength": 2048},
        "events": {"type": "array", "items": {"enum": [*EVENTS, "*"]}},
        "description": TEXT,
        "secret": {"type": ["string", "null"], "minLength": 16, "maxLength": 128},
    },
    ["url"],
)
CREATED = _obj({"webhook": WEBHOOK, "secret": {"type": "string"}})


def _created(body: dict[str, Any], model: str | None) -> Response:
    hook, secret = services().webhooks.create(
        acting(),
        body["url"],
        body.get("events"),
        model,
        body.get("description"),
        body.get("secret"),
    )
    return ok({"webhook": hook.to_dict(), "secret": secret}, 201)


@api.route(
    "GET",
    "/webhooks",
    permission=perm.server(Level.READ),
    summary="The webhooks of the models you manage (every webhook for an admin).",
    tag=TAG,
    response=_obj({"webhooks": {"type": "array", "items": WEBHOOK}}),
)
def list_webhooks() -> Response:
    hooks = services().webhooks.list_webhooks(acting().readers)
    return ok({"webhooks": [h.to_dict() for h in hooks]})


@api.route(
    "POST",
    "/webhooks",
    permission=perm.ADMIN,
    summary="Register a webhook for every model's events; the answer holds its signing "
    "secret, shown this once.",
    tag=TAG,
    body=CREATE,
    response=CREATED,
    status=201,
)
def create_webhook(body: dict[str, Any]) -> Response:
    return _created(body, None)


@api.route(
    "POST",
    "/models/<name>/webhooks",
    permission=perm.model(Level.MANAGE),
    summary="Register a webhook for one model's events; the answer holds its signing secret, "
    "shown this once.",
    tag=TAG,
    body=CREATE,
    response=CREATED,
    status=201,
)
def create_model_webhook(name: str, body: dict[str, Any]) -> Response:
    return _created(body, name)


@api.route(
    "GET",
    "/webhooks/<int:webhook_id>",
    permission=perm.webhook(),
    summary="One webhook.",
    tag=TAG,
    response=_wrap("webhook", WEBHOOK),
)
def get_webhook(webhook_id: int) -> Response:
    return ok({"webhook": services().webhooks.get(webhook_id).to_dict()})


@api.route(
    "DELETE",
    "/webhooks/<int:webhook_id>",
    permission=perm.webhook(),
    summary="Delete a webhook (its undelivered events are dropped).",
    tag=TAG,
    response=_obj({}),
)
def delete_webhook(webhook_id: int) -> Response:
    services().webhooks.delete(acting(), webhook_id)
    return ok({})


@api.route(
    "POST",
    "/webhooks/<int:webhook_id>/test",
    permission=perm.webhook(),
    summary="Send the webhook a 'ping' event (delivered, signed and recorded like any other).",
    tag=TAG,
    response=_wrap("delivery", DELIVERY),
    status=202,
)
def test_webhook(webhook_id: int) -> Response:
    return ok({"delivery": services().webhooks.ping(acting(), webhook_id).to_dict()}, 202)


@api.route(
    "GET",
    "/webhooks/<int:webhook_id>/deliveries",
    permission=perm.webhook(),
    summary="The webhook's latest deliveries, newest first: state, attempts, each answer.",
    tag=TAG,
    query={"max_results": {"type": "integer", "minimum": 1, "maximum": 500}},
    response=_obj({"deliveries": {"type": "array", "items": DELIVERY}}),
)
def webhook_deliveries(webhook_id: int) -> Response:
    items = services().webhooks.deliveries(webhook_id, query_int("max_results", 50, 1, 500))
    return ok({"deliveries": [d.to_dict() for d in items]})
