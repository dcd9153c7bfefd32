"""``/version``: the graphite-web version Carbyne answers like, as graphite-web sends it.

Grafana's Graphite data source reads this body as a semver to decide which
APIs (``/functions``, tags) it may use.
"""

from __future__ import annotations

from flask import Blueprint, Response

GRAPHITE_WEB_VERSION = "1.1.10"

blueprint = Blueprint("version", __name__)


@blueprint.route("/version", methods=["GET", "POST"])
@blueprint.route("/version/", methods=["GET", "POST"])
def version_view() -> Response:
    return Response(GRAPHITE_WEB_VERSION + "\n", content_type="text/html; charset=utf-8")
