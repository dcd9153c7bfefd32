"""Fuzzed targets through both HTTP apps: whole ``/render`` bodies, byte for byte.

The targets come from test_fuzz_graphite's generator; the data is one of its
random stores written to whisper files, which Carbyne's app and graphite-web's
views (tests/render/app_support.py) both read. ``format=json`` and ``raw``
bodies, with and without ``maxDataPoints``, must be identical whenever both
answer 200, except for the shapes listed as known differences. graphite-web
failing (500) leaves nothing to compare; Carbyne must never answer 500.

Run as a script for a bigger sample::

    python tests/render/test_fuzz_http.py --count 400 --seed 3
"""

from __future__ import annotations

import argparse
import collections
import logging
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app_support import NOW, carbyne_get, graphite_get, graphite_http, make_app, write_metric
from test_fuzz_graphite import KNOWN, TargetMaker, random_data, random_window

pytestmark = pytest.mark.filterwarnings("ignore")

#: Where the generated data starts: a multiple of every step, two hours before NOW.
BASE = (NOW - 7200) - (NOW - 7200) % 120

VARIANTS = (
    {"format": "json"},
    {"format": "raw"},
    {"format": "json", "maxDataPoints": "7"},
    {"format": "raw", "maxDataPoints": "3"},
)


def write_store(data_dir: Path, seed: int) -> None:
    """One random store of the fuzzer (paths a.*.c, a.y.d, b.*.e) as whisper files from BASE."""
    for path, (start, step, values) in random_data(random.Random(seed)).items():
        write_metric(data_dir, path, BASE + start, step, values)


def requests(seed: int, count: int) -> list[tuple[dict[str, Any], frozenset[str]]]:
    """``count`` render requests (parameters, known-difference shapes) over the written store."""
    rng = random.Random(seed)
    maker = TargetMaker(rng)
    out = []
    for _ in range(count):
        maker.known = set()
        target = maker.target()
        start, end = random_window(rng)
        params = {"target": target, "from": str(BASE + start), "until": str(BASE + end), "now": str(NOW),
                  **rng.choice(VARIANTS)}
        out.append((params, frozenset(maker.known)))
    return out


def compare(client: Any, graphite: Any, params: dict[str, Any], known: frozenset[str]) -> str:
    """agree, known, refused, graphite-failed, or a description of the difference."""
    ours = carbyne_get(client, "/render", params)
    theirs = graphite_get(graphite, "/render", params)
    if ours[0] >= 500:
        return f"carbyne {ours[0]}: {ours[2][:300]!r}"
    if theirs[0] != 200:
        return "graphite-failed"
    if ours[0] == 400:
        return "refused"
    if ours == theirs:
        return "agree"
    if known:
        return "known"
    return f"bodies differ:\n  ours:     {ours[2][:700]!r}\n  graphite: {theirs[2][:700]!r}"


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory, graphite_web: None) -> Iterator[tuple[Any, Any]]:
    data_dir = tmp_path_factory.mktemp("fuzz-http")
    write_store(data_dir, SEED)
    with graphite_http(data_dir) as graphite:
        yield make_app(data_dir), graphite


SEED = 7
COUNT = 300


def test_fuzzed_bodies_match_graphite(apps) -> None:
    logging.disable(logging.CRITICAL)
    client, graphite = apps
    outcomes = [(params, compare(client, graphite, params, known)) for params, known in requests(SEED, COUNT)]
    kinds = collections.Counter(o if o in ("agree", "known", "refused", "graphite-failed") else "bad"
                                for _, o in outcomes)
    bad = [f"{p}: {o}" for p, o in outcomes if o not in ("agree", "known", "refused", "graphite-failed")]
    assert not bad, f"{kinds}\n" + "\n".join(bad[:5])
    assert kinds["agree"] >= COUNT // 2, kinds


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    from oracle import ensure_graphite

    ensure_graphite()
    logging.disable(logging.CRITICAL)
    kinds: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        write_store(data_dir, args.seed)
        with graphite_http(data_dir) as graphite:
            client = make_app(data_dir)
            for params, known in requests(args.seed, args.count):
                outcome = compare(client, graphite, params, known)
                kinds[outcome.split(":")[0]] += 1
                if outcome not in ("agree", "known", "refused", "graphite-failed"):
                    print(params, sorted(known))
                    print("  " + outcome)
    print(dict(kinds))
    print("known shapes:", ", ".join(KNOWN))


if __name__ == "__main__":
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    main(sys.argv[1:])
