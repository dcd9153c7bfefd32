"""graphite-web 1.1.10 (the test extra) made importable and Django configured, for benchmarks."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import sys
import tempfile


def setup_graphite_web() -> None:
    """Put graphite-web's webapp on ``sys.path`` and set Django up once, storage in a temp folder."""
    webapp = str(importlib.metadata.distribution("graphite-web").locate_file("opt/graphite/webapp"))
    if webapp not in sys.path:
        sys.path.append(webapp)
    from django.conf import settings

    if settings.configured:
        return
    if "GRAPHITE_STORAGE_DIR" not in os.environ:
        storage = tempfile.mkdtemp(prefix="carbyne-bench-graphite-")
        os.makedirs(os.path.join(storage, "log", "webapp"))
        os.environ["GRAPHITE_STORAGE_DIR"] = storage
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "graphite.settings")
    import django

    with contextlib.redirect_stdout(None), contextlib.redirect_stderr(None):
        django.setup()
