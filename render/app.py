"""The render API as a Flask application: ``create_app(config)``.

Everything a request needs (configuration, evaluator, function registry,
CarbonLink client, events store, tag index) is built here once per
application and kept in ``app.extensions["carbyne"]``; there is no
module-level state, so several apps (tests, workers) never share anything.

Blueprints: ``/render``, ``/metrics/*``, ``/functions``, ``/version`` always;
``/events`` and ``/tags`` when the configuration names their databases.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from flask import Flask

from render.carbonlink import CarbonLinkClient
from render.config import RenderConfig
from render.datasource import DataSource
from render.evaluator import Evaluator
from render.events.api import events_blueprint
from render.events.store import EventStore
from render.functions import RequestContext, default_registry
from render.functions.registry import Registry
from render.series import Series
from render.tags_api import tags_blueprint
from render.views import functions, metrics, render, version
from render.views.errors import register_error_handlers
from storage.tagindex import TagIndex

#: Largest request body accepted (Grafana POSTs all targets of a panel at once).
MAX_BODY_BYTES = 8 << 20


class TargetEvaluator(Protocol):
    """What the views need from ``render.evaluator.Evaluator``."""

    def evaluate(
        self, targets: Sequence[str], ctx: RequestContext, template: Mapping[str, str] | None = None
    ) -> list[Series]: ...


@dataclass(frozen=True)
class RenderServices:
    """Per-application objects the views share."""

    config: RenderConfig
    evaluator: TargetEvaluator
    registry: Registry
    carbonlink: CarbonLinkClient | None
    events: EventStore | None
    tags: TagIndex | None


def create_app(config: RenderConfig, *, evaluator: TargetEvaluator | None = None) -> Flask:
    """A Flask app serving graphite-web's HTTP API for ``config``.

    ``evaluator`` replaces the real one (tests).
    """
    app = Flask("carbyne.render")
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, MAX_FORM_MEMORY_SIZE=MAX_BODY_BYTES)
    registry = default_registry()
    events = EventStore(config.events_db) if config.events_db is not None else None
    tags = TagIndex(config.tags_db) if config.tags_db is not None else None
    carbonlink = None
    if evaluator is None:
        if config.carbonlink_hosts:
            carbonlink = CarbonLinkClient(config.carbonlink, timeout=config.carbonlink_timeout)
        source = DataSource(config.data_dir, carbonlink, tag_index=tags)
        evaluator = Evaluator(source, registry=registry, limits=config.limits, events=events)
    app.extensions["carbyne"] = RenderServices(config, evaluator, registry, carbonlink, events, tags)
    for module in (render, metrics, functions, version):
        app.register_blueprint(module.blueprint)
    if events is not None:
        tz = zoneinfo.ZoneInfo(config.time_zone)
        app.register_blueprint(events_blueprint(events, token=config.events_token, tz=tz))
    if tags is not None:
        app.register_blueprint(tags_blueprint(tags))
    register_error_handlers(app)
    return app
