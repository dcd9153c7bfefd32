"""``carbyne serve`` against carbon-cache 1.1.10 on the same random input: the files must agree.

Both daemons get the same seeded stream (plaintext over TCP, datagrams over UDP, pickle
frames): valid lines in every spelling carbon's ``float()`` and ``str.split()`` accept
(exponents, underscores, signs, tabs, Unicode spaces and other separators, CRLF and the
line breaks ``str.splitlines()`` knows in datagrams, fractional timestamps), repeated
and out-of-order points, points for the lower archive only, points too old for any
archive, tagged names in any tag order, and lines carbon ignores (wrong field count,
words, NaN). Then every Whisper file in both trees is read slot by slot: the same files,
the same headers, the same ``(interval, value)`` pairs in every archive. Where a ring
slot lands depends on which point a daemon happened to write first, so slot positions are
not compared; nothing else is left out.

What the stream leaves out, and why: ``inf`` values (carbon writes them, Carbyne refuses
them, as its issue asks); timestamp ``-1`` (means "now", which the two daemons read at
different instants); lines carbon answers by dropping the connection (invalid UTF-8,
over-long lines); ages within ten minutes of an archive's edge (which archive a point
lands in depends on the instant it is written); two different timestamps in one
interval of a metric (which one stays depends on how each writer batched them, see
Timestamps); and leading dots before a name a schema pattern anchors at its start (carbon
stores ``.a.b`` in ``a/b.wsp`` but picks its schema by ``.a.b``, so the file's retention
depends on which spelling came first; Carbyne picks it by ``a.b``, the name it is read by).

carbon-cache runs from its own venv (see tests/integration/test_relays.py); without one
the test skips, naming why.
"""
from __future__ import annotations

import pickle
import random
import socket
import struct
import time
from pathlib import Path

import pytest

from benchmarks.ingest_workload import installed_carbon_venv, start_carbon_cache

from .conftest import start_daemon

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(installed_carbon_venv() is None,
                       reason="no carbon 1.1.10 venv (.ci/run builds one: pip install carbon==1.1.10)"),
]

SCHEMAS = """\
[short]
pattern = ^short\\.
retentions = 10s:1h,1m:6h

[default]
pattern = .*
retentions = 60s:1d,5m:7d
"""
AGGREGATION = """\
[min]
pattern = \\.min$
xFilesFactor = 0.1
aggregationMethod = min

[count]
pattern = \\.count$
xFilesFactor = 0
aggregationMethod = sum

[max]
pattern = \\.max$
xFilesFactor = 0.3
aggregationMethod = max

[last]
pattern = \\.last$
xFilesFactor = 0.5
aggregationMethod = last

[default]
pattern = .*
xFilesFactor = 0.5
aggregationMethod = average
"""

CARBON_UDP = "ENABLE_UDP_LISTENER = True\nUDP_RECEIVER_INTERFACE = 127.0.0.1\nUDP_RECEIVER_PORT = {line}\n"

# Ages (seconds before now) that land in the same archive whenever they are written:
# ten minutes of margin on each side of every archive's edge.
SHORT_AGES = [(-300, 3000), (4200, 20900), (22300, 400000)]  # 1 h ring, 6 h ring, dropped
DEFAULT_AGES = [(-300, 85800), (87000, 604000), (605000, 900000)]  # 1 d, 7 d, dropped

SEPARATORS = [" ", "  ", "\t", " \t ", "\x0b", "\x0c", "\x1f", "\xa0", "\u2003"]
SUFFIXES = ["min", "count", "max", "last", "value", "avg"]


def random_name(rng: random.Random) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789_-:@"
    nodes = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(rng.randint(1, 3))]
    name = ".".join([rng.choice(["short", "app", "srv.web"]), *nodes, rng.choice(SUFFIXES)])
    if rng.random() < 0.1:  # carbon writes these into the file of the name without them
        name = name.replace(".", "..", 1)
        if not name.startswith("short"):  # carbon matches ^short\. against '.short...'
            name = rng.choice(["", ".", ".."]) + name
    if rng.random() < 0.2:  # tagged, tags in any order (both daemons sort them)
        tags = {f"t{k}": "".join(rng.choice("xyz019.-") for _ in range(rng.randint(1, 4)))
                for k in rng.sample(range(6), rng.randint(1, 3))}
        name += "".join(f";{k}={v}" for k, v in rng.sample(list(tags.items()), len(tags)))
    return name


def random_value(rng: random.Random) -> str:
    value = rng.choice([rng.randint(-1000, 1000), rng.uniform(-1e6, 1e6), rng.uniform(-1, 1),
                        rng.choice([0, -0.0, 1e-300, 1.7e308, -2.5e-5])])
    spelling = rng.randint(0, 5)
    if spelling == 0:
        return f"{value:e}"
    if spelling == 1 and isinstance(value, int):
        return f"{value:+d}" if abs(value) < 1000 else f"{value:_d}"
    if spelling == 2:
        return f"{float(value):.3E}"
    return repr(value)


class Timestamps:
    """Random timestamps for each metric, at most one per interval of the archive it lands in.

    Two points in one interval are written in whatever order each daemon's writer happens to
    take them (whisper keeps the newest second of a batch, but the last write across
    batches), so only repeats of the very same timestamp, which both settle by arrival, may
    share an interval.
    """

    def __init__(self, rng: random.Random, now: int) -> None:
        self.rng = rng
        self.now = now
        self.taken: dict[tuple[str, int, int], float] = {}

    def pick(self, name: str) -> str:
        short = name.startswith("short.")
        windows = SHORT_AGES if short else DEFAULT_AGES
        while True:
            low, high = windows[0] if self.rng.random() < 0.8 else self.rng.choice(windows[1:])
            stamp = self.now - self.rng.randint(low, high)
            spelling = self.rng.randint(0, 6)
            text = (f"{stamp + self.rng.random():.3f}" if spelling == 0
                    else f"{stamp:.10e}" if spelling == 1 else str(stamp))
            moment = float(text)
            archive = 0 if low == windows[0][0] else 1
            step = (10, 60)[archive] if short else (60, 300)[archive]
            key = (name, archive, int(moment) // step)
            if self.taken.setdefault(key, moment) == moment:
                return text


def plaintext_lines(seed: int, now: int) -> list[str]:
    rng = random.Random(seed)
    names = [random_name(rng) for _ in range(30)]
    stamps = Timestamps(rng, now)
    lines = []
    for _ in range(1500):
        name = rng.choice(names)
        roll = rng.random()
        if roll < 0.04:  # carbon ignores these, and so must Carbyne
            lines.append(rng.choice([
                f"{name} {random_value(rng)}",
                f"{name} {random_value(rng)} {now} extra",
                f"{name} lots {now}",
                f"{name} nan {now}",
                f"{name} NaN {now}",
                f"{name} 1.5 yesterday",
                "",
                "   ",
                name,
            ]))
            continue
        sep = rng.choice(SEPARATORS) if roll < 0.15 else " "
        line = sep.join([name, random_value(rng), stamps.pick(name)])
        if roll < 0.2:
            line = rng.choice([" ", "\t", ""]) + line + rng.choice([" ", "\t", "\r"])
        lines.append(line)
        if rng.random() < 0.05:  # the same point again with another value: the last one wins
            lines.append(f"{name} {random_value(rng)} {line.split()[-1]}")
    return lines


def plaintext_stream(seed: int, now: int) -> bytes:
    rng = random.Random(seed)
    return "".join(line + rng.choice(["\n", "\n", "\r\n"]) for line in plaintext_lines(seed, now)).encode()


def datagrams(seed: int, now: int) -> list[bytes]:
    """The plaintext lines a few to a datagram, ended by any line break str.splitlines() knows."""
    rng = random.Random(seed)
    lines = plaintext_lines(seed, now)[:600]
    grams = []
    while lines:
        count = rng.randint(1, 12)
        grams.append("".join(line.rstrip("\r") + rng.choice(["\n", "\r\n", "\r", "\x0b", "\x1e", "\u2028"])
                             for line in lines[:count]).encode())
        del lines[:count]
    return grams


def pickle_stream(seed: int, now: int) -> list[bytes]:
    """Length-prefixed pickle frames of ``[(name, (timestamp, value)), ...]`` as graphite's
    senders make them, in every protocol, with str, int and float fields."""
    rng = random.Random(seed)
    names = [random_name(rng) for _ in range(30)]
    stamps = Timestamps(rng, now)
    frames = []
    for _ in range(40):
        points = []
        for _ in range(rng.randint(1, 60)):
            name = rng.choice(names)
            stamp = stamps.pick(name)
            value = random_value(rng)
            kind = rng.randint(0, 5)
            if kind == 0:
                point = (stamp, value)
            elif kind == 1:
                point = (int(float(stamp)) if float(stamp).is_integer() else stamp, float(value))
            elif kind == 2:  # bytes, and a str with spaces, as float() takes them
                point = (stamp.encode(), f" {value}\t")
            elif kind == 3:  # float(True) is 1.0 to carbon
                point = [float(stamp), rng.choice([True, False])]
            else:
                point = (float(stamp), float(value) if "." in value or "e" in value.lower() else int(value.replace("_", "")))
            points.append((name, point))
            if rng.random() < 0.03:
                points.append((name, (point[0], rng.choice(["nan", None, "x"]))))  # ignored by both
        # bytes need protocol 3 or later: before it they pickle as a call of _codecs.encode,
        # which both refuse, losing the frame
        protocol = rng.randint(0, 5) if rng.random() < 0.9 else rng.randint(3, 5)
        payload = pickle.dumps(points, protocol=protocol)
        frames.append(struct.pack("!L", len(payload)) + payload)
    return frames


def read_tree(root: Path) -> dict[str, tuple]:
    """Every Whisper file under ``root``: header fields, and each archive's written
    ``(interval, value)`` pairs (slot order left out)."""
    tree = {}
    for path in sorted(root.rglob("*.wsp")):
        data = path.read_bytes()
        aggregation, max_retention, xff, count = struct.unpack_from("!2LfL", data, 0)
        archives = []
        for k in range(count):
            offset, seconds, points = struct.unpack_from("!3L", data, 16 + 12 * k)
            slots = struct.iter_unpack("!Ld", data[offset:offset + 12 * points])
            archives.append((seconds, points, sorted((t, v) for t, v in slots if t)))
        tree[str(path.relative_to(root))] = (aggregation, max_retention, xff, len(data), archives)
    return tree


def differences(carbon: dict, carbyne: dict) -> list[str]:
    found = [f"only carbon-cache wrote {name}" for name in sorted(carbon.keys() - carbyne.keys())]
    found += [f"only Carbyne wrote {name}" for name in sorted(carbyne.keys() - carbon.keys())]
    for name in sorted(carbon.keys() & carbyne.keys()):
        ours, theirs = carbyne[name], carbon[name]
        if ours[:4] != theirs[:4]:
            found.append(f"{name}: header {ours[:4]} != carbon-cache's {theirs[:4]}")
            continue
        for k, (mine, other) in enumerate(zip(ours[4], theirs[4], strict=True)):
            if mine != other:
                extra, missing = sorted(set(mine[2]) - set(other[2])), sorted(set(other[2]) - set(mine[2]))
                found.append(f"{name} archive {k}: Carbyne also has {extra[:5]}, lacks {missing[:5]}")
    return found


def settled_tree(root: Path, target: dict, quiet: float = 3.0, timeout: float = 60.0) -> dict:
    """``root``'s files once they equal ``target`` or have not changed for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        tree = read_tree(root) if root.exists() else {}
        if tree == target or time.monotonic() > deadline:
            return tree
        if tree != last:
            last, since = tree, time.monotonic()
        elif time.monotonic() - since > quiet:
            return tree
        time.sleep(0.3)


def run_both(tmp_path: Path, send) -> tuple[dict, dict]:
    """Start both daemons, ``send(port_of)`` to each, stop Carbyne (it flushes on SIGTERM)
    and wait for carbon-cache's writer; the two trees."""
    carbyne = start_daemon(tmp_path / "carbyne", extra_conf=f"CONF_DIR = {tmp_path / 'conf'}\n"
                           "MAX_UPDATES_PER_SECOND = inf\nMAX_CREATES_PER_MINUTE = inf\n")
    try:
        carbon = start_carbon_cache(tmp_path / "carbon", venv=installed_carbon_venv(), schemas=SCHEMAS,
                                    aggregation=AGGREGATION, settings=CARBON_UDP)
    except Exception:
        carbyne.stop()
        raise
    try:
        send({"line": carbon.line_port, "pickle": carbon.pickle_port})
        send({"line": carbyne.line_port, "pickle": carbyne.pickle_port})
        assert carbyne.stop() == 0, carbyne.log()
        ours = read_tree(carbyne.whisper_dir)
        theirs = settled_tree(carbon.whisper_dir, ours)
    finally:
        carbyne.stop()
        carbon.proc.terminate()
        carbon.proc.wait(timeout=30)
    return theirs, ours


@pytest.fixture
def conf(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "storage-schemas.conf").write_text(SCHEMAS)
    (tmp_path / "conf" / "storage-aggregation.conf").write_text(AGGREGATION)
    (tmp_path / "carbyne").mkdir()
    return tmp_path


def send_all(port: int, chunks: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for chunk in chunks:
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(30)
        while sock.recv(4096):  # the daemon closes once it has read everything
            pass


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plaintext_stream_persists_as_carbon_cache_persists_it(conf, seed):
    now = int(time.time())
    stream = plaintext_stream(seed, now)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(stream)), 200))  # lines split across reads
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    theirs, ours = run_both(conf, lambda port_of: send_all(port_of["line"], chunks))
    assert len(ours) >= 20
    found = differences(theirs, ours)
    assert not found, "\n".join(found)


def send_datagrams(port: int, grams: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for gram in grams:
            sock.sendto(gram, ("127.0.0.1", port))
            time.sleep(0.002)  # loopback drops datagrams a busy receiver has no room for
    time.sleep(1.0)  # nothing tells a UDP sender its datagrams were read


@pytest.mark.parametrize("seed", [6])
def test_udp_datagrams_persist_as_carbon_cache_persists_them(conf, seed):
    now = int(time.time())
    grams = datagrams(seed, now)
    theirs, ours = run_both(conf, lambda port_of: send_datagrams(port_of["line"], grams))
    assert len(ours) >= 20
    found = differences(theirs, ours)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("seed", [4, 5])
def test_pickle_stream_persists_as_carbon_cache_persists_it(conf, seed):
    now = int(time.time())
    frames = pickle_stream(seed, now)
    theirs, ours = run_both(conf, lambda port_of: send_all(port_of["pickle"], frames))
    assert len(ours) >= 20
    found = differences(theirs, ours)
    assert not found, "\n".join(found)
