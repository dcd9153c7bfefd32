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


def make_app(data_dir: Path, **config: Any) -> Any:
    """Carbyne's app over ``data_dir`` (test client)."""
    return create_app(RenderConfig(data_dir=data_dir, **config)).test_client()
