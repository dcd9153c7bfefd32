"""The render API as a Flask application: ``create_app(config)``.

Everything a request needs (configuration, evaluator, function registry,
CarbonLink client) is built here once per application and kept in
``app.extensions["carbyne"]``; there is no module-level state, so several
apps (tests, workers) never share anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from flask import Flask

from render.carbonlink import CarbonLinkClient
from render.config import RenderConfig
from render.datasource import DataSource
from render.evaluator import Evaluator
from render.functions import RequestContext, default_registry
from render.functions.registry import Registry
from render.series import Series
from render.views import functions, metrics, render, version
from render.views.errors import register_error_handlers

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


def build_evaluator(config: RenderConfig, registry: Registry) -> tuple[TargetEvaluator, CarbonLinkClient | None]:
    """The real evaluator over the data folder and the configured carbon caches."""
    carbonlink = (
        CarbonLinkClient(config.carbonlink, timeout=config.carbonlink_timeout)
        if config.carbonlink_hosts
        else None
    )
    source = DataSource(config.data_dir, carbonlink)
    return Evaluator(source, registry=registry, limits=config.limits), carbonlink


def create_app(config: RenderConfig, *, evaluator: TargetEvaluator | None = None) -> Flask:
    """A Flask app serving graphite-web's render API for ``config``.

    ``evaluator`` replaces the real one (tests).
    """
    app = Flask("carbyne.render")
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, MAX_FORM_MEMORY_SIZE=MAX_BODY_BYTES)
    registry = default_registry()
    carbonlink = None
    if evaluator is None:
        evaluator, carbonlink = build_evaluator(config, registry)
    app.extensions["carbyne"] = RenderServices(config, evaluator, registry, carbonlink)
    for module in (render, metrics, functions, version):
        app.register_blueprint(module.blueprint)
    register_error_handlers(app)
    return app
