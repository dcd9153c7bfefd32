"""Shared fixtures for render tests: graphite-web 1.1.10 as an importable oracle."""

import importlib.metadata
import os
import sys

import pytest


@pytest.fixture(scope="session")
def graphite_web(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Make `import graphite...` work: graphite-web's webapp folder on sys.path,
    its settings pointed at a scratch storage dir, Django set up once."""
    webapp = importlib.metadata.distribution("graphite-web").locate_file("opt/graphite/webapp")
    if str(webapp) not in sys.path:
        sys.path.insert(0, str(webapp))
    storage = tmp_path_factory.mktemp("graphite-storage")
    (storage / "log" / "webapp").mkdir(parents=True)
    os.environ.setdefault("GRAPHITE_STORAGE_DIR", str(storage))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "graphite.settings")
    import django

    django.setup()
