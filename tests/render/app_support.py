"""Helpers for the render API tests: real whisper data, graphite-web over the same files.

``graphite_http(data_dir)`` points graphite-web 1.1.10 (its real Django views,
through Django's test client) at the same folder of ``.wsp`` files Carbyne's
app serves, so both engines answer the same request from the same bytes.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from render.app import create_app
from render.config import RenderConfig
from render.series import Series
from storage import whisper
from storage.paths import metric_path

#: A fixed "now" for both engines: whisper's fetch depends on it.
NOW = 1_700_000_040


def write_metric(
    data_dir: Path,
    name: str,
    start: int,
    step: int,
    values: Sequence[float | None],
    *,
    points: int = 2000,
    now: int = NOW,
) -> Path:
    """A whisper file for ``name`` holding ``values`` at ``start + i * step`` (None = no point)."""
    path = metric_path(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    whisper.create(str(path), [(step, points)], xFilesFactor=0.0, aggregationMethod="average")
    updates = [(start + i * step, v) for i, v in enumerate(values) if v is not None]
    if updates:
        whisper.update_many(str(path), updates, now=now)
    return path


@functools.cache
def _graphite_tables() -> None:
    """graphite-web's sqlite tables (treejson reads the user profile), created once."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


@contextlib.contextmanager
def graphite_http(data_dir: Path) -> Iterator[Any]:
    """A Django test client of graphite-web reading ``data_dir`` (and no carbon cache)."""
    from django.conf import settings

    _graphite_tables()
    from django.test import Client
    from graphite.finders.standard import StandardFinder
    from graphite.storage import STORE

    saved = (STORE.finders, settings.WHISPER_DIR, settings.CARBONLINK_HOSTS)
    STORE.finders = [StandardFinder([str(data_dir)])]
    settings.WHISPER_DIR = str(data_dir).rstrip("/") + "/"
    settings.CARBONLINK_HOSTS = []
    try:
        yield Client(raise_request_exception=False)
    finally:
        STORE.finders, settings.WHISPER_DIR, settings.CARBONLINK_HOSTS = saved


def graphite_get(client: Any, path: str, params: Mapping[str, Any] | None = None, **headers: str) -> tuple[int, str, bytes]:
    response = client.get(path, params or {}, **headers)
    return response.status_code, response["Content-Type"], response.content


def carbyne_get(client: Any, path: str, params: Mapping[str, Any] | None = None, **headers: str) -> tuple[int, str, bytes]:
    response = client.get(path, query_string=params or {}, headers=headers)
    return response.status_code, response.content_type, response.data


class PathEvaluator:
    """A stand-in for render.evaluator.Evaluator until it lands: plain path targets
    and registry calls over them, fetched from whisper files through DataSource."""

    def __init__(self, data_dir: Path) -> None:
        from render.datasource import DataSource

        self.source = DataSource(data_dir)

    def evaluate(self, targets: Sequence[str], ctx: Any, template: Mapping[str, str] | None = None) -> list[Series]:
        from render.grammar import apply_template, parse

        result: list[Series] = []
        for target in targets:
            result.extend(self._node(apply_template(parse(target), template), ctx))
        return result

    def _node(self, node: Any, ctx: Any) -> Any:
        from render import ast
        from render.functions import default_registry

        if isinstance(node, ast.PathExpr):
            fetched = self.source.fetch([node.text], ctx.start, ctx.end, ctx.now, x_files_factor=ctx.x_files_factor)
            return fetched[node.text]
        if isinstance(node, ast.Call):
            args = [self._node(a, ctx) for a in node.args]
            kwargs = {k: self._node(v, ctx) for k, v in node.kwargs}
            return default_registry().call(node.name, ctx, args, kwargs)
        if isinstance(node, ast.NoneLit):
            return None
        return node.value


def make_app(data_dir: Path, **config: Any) -> Any:
    """Carbyne's app over ``data_dir`` (test client)."""
    app = create_app(RenderConfig(data_dir=data_dir, **config), evaluator=PathEvaluator(data_dir))
    return app.test_client()
