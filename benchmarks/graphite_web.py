"""graphite-web 1.1.10 (the test extra) for the benchmarks, set up by the tests' oracle.

tests/render/oracle.py is the one place that makes graphite-web importable and
configures Django (it must work when a test file runs as a script, where this
package is not importable); the benchmarks borrow it.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ORACLE_FOLDER = str(Path(__file__).resolve().parents[1] / "tests" / "render")
if _ORACLE_FOLDER not in sys.path:
    sys.path.append(_ORACLE_FOLDER)

from oracle import ensure_graphite as setup_graphite_web  # noqa: E402

__all__ = ["setup_graphite_web"]
