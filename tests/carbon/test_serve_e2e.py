"""``carbyne serve`` as a real process: every accepted point is on disk after SIGTERM,
and hostile input is refused while other clients' points still land."""
import os
import pickle
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import whisper

REPO = Path(__file__).resolve().parents[2]
HOST = socket.gethostname().replace(".", "_")
pytestmark = pytest.mark.integration


def free_port():
    """A port free for TCP and UDP alike (the line listener uses one number for both)."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


class Daemon:
    def __init__(self, tmp_path, conf_text, schemas_text=None):
        self.tmp = tmp_path
        self.data = tmp_path / "data"
        conf = tmp_path / "conf"
        conf.mkdir()
        (conf / "carbon.conf").write_text(conf_text)
        if schemas_text:
            (conf / "storage-schemas.conf").write_text(schemas_text)
        self.line, self.pickle, self.query = free_port(), free_port(), free_port()
        self.log_path = tmp_path / "serve.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "carbon.cli", "serve", "--config", str(conf / "carbon.conf"),
                 "--data-dir", str(self.data), "--bind", "127.0.0.1",
                 "--line-port", str(self.line), "--udp-port", str(self.line),
                 "--pickle-port", str(self.pickle), "--cache-query-port", str(self.query),
                 "--no-render"],
                stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
        self._wait_listening()

    def _wait_listening(self):
        deadline = time.monotonic() + 30
        for port in (self.line, self.pickle, self.query):
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError("carbyne serve exited early:\n" + self.log())
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError("carbyne serve did not listen:\n" + self.log()) from None
                    time.sleep(0.05)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def cached(self, metrics):
        """Points per metric via CarbonLink (cache-query-bulk)."""
        body = pickle.dumps({"type": "cache-query-bulk", "metrics": metrics}, protocol=2)
        with socket.create_connection(("127.0.0.1", self.query), timeout=10) as conn:
            conn.sendall(struct.pack("!L", len(body)) + body)
            size = struct.unpack("!L", _recv(conn, 4))[0]
            return pickle.loads(_recv(conn, size))["datapointsByMetric"]

    def wait_cached(self, expected, timeout=20):
        """Until every (metric, ts, value) of ``expected`` is visible in the cache or on disk."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.cached(sorted(expected))
            missing = {m for m, pts in expected.items() if not set(pts) <= set(answer[m]) | self.disk(m)}
            if not missing:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"never accepted: {sorted(missing)[:5]}\n" + self.log())
            time.sleep(0.05)

    def disk(self, metric):
        path = self.data / "whisper" / (metric.replace(".", "/") + ".wsp")
        if not path.exists():
            return set()
        now = int(time.time())
        (start, _, step), values = whisper.fetch(str(path), now - 3000, now + 60, now=now)
        return {(float(start + i * step), v) for i, v in enumerate(values) if v is not None}

    def terminate(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("carbyne serve did not stop on SIGTERM:\n" + self.log()) from None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _recv(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("cache query connection closed")
        data += chunk
    return data


@pytest.fixture
def daemon_factory(tmp_path):
    started = []

    def start(conf_text, schemas_text=None):
        started.append(Daemon(tmp_path, conf_text, schemas_text))
        return started[-1]

    yield start
    for daemon in started:
        daemon.kill()


def minute_aligned(offset_minutes):
    return float((int(time.time()) // 60 - offset_minutes) * 60)


def test_sigterm_flushes_every_accepted_point_to_disk(daemon_factory):
    # A writer limited to one update a second keeps nearly everything in the cache
    # until SIGTERM; the shutdown flush must then write it all.
    daemon = daemon_factory("[cache]\nMAX_UPDATES_PER_SECOND = 1\nCARBON_METRIC_INTERVAL = 0\n"
                            "LOG_LISTENER_CONN_SUCCESS = False\n")
    t1, t2 = minute_aligned(3), minute_aligned(2)
    expected = {}
    lines = []
    for i in range(60):
        name = f"e2e.tcp.m{i}"
        expected[name] = {(t1, float(i)), (t2, i + 0.5)}
        lines.append(f"{name} {i} {int(t1)}\n{name} {i + 0.5} {int(t2)}\n")
    with socket.create_connection(("127.0.0.1", daemon.line)) as conn:
        conn.sendall("".join(lines).encode())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for i in range(20):
            name = f"e2e.udp.m{i}"
            expected[name] = {(t1, float(-i))}
            udp.sendto(f"{name} {-i} {int(t1)}\n".encode(), ("127.0.0.1", daemon.line))
    entries = []
    for i in range(40):
        name = f"e2e.pickle.m{i}"
        expected[name] = {(t1, i * 2.0), (t2, i * 3.0)}
        entries += [(name, (int(t1), i * 2.0)), (name, (t2, i * 3.0))]
    body = pickle.dumps(entries, protocol=2)
    with socket.create_connection(("127.0.0.1", daemon.pickle)) as conn:
        conn.sendall(struct.pack("!L", len(body)) + body)
    daemon.wait_cached(expected)
    assert daemon.terminate() == 0, daemon.log()
    for metric, points in expected.items():
        assert daemon.disk(metric) == points, metric
    flushed = re.search(r"flushing (\d+) cached points", daemon.log())
    assert flushed and int(flushed.group(1)) > 100  # the shutdown flush did the work
    assert "every cached point is on disk" in daemon.log()


def test_hostile_input_is_refused_while_other_clients_land(daemon_factory, tmp_path):
    daemon = daemon_factory(
        "[cache]\nCARBON_METRIC_INTERVAL = 2\nLOG_LISTENER_CONN_SUCCESS = False\n",
        "[carbon]\npattern = ^carbon\\.\nretentions = 1:1h\n[all]\npattern = .*\nretentions = 60:1d\n",
    )
    marker = tmp_path / "pwned"
    t1 = minute_aligned(2)

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = pickle.dumps([Exploit()], protocol=2)
    good = pickle.dumps([("hostile.good.pickle", (int(t1), 4.0))], protocol=2)
    with socket.create_connection(("127.0.0.1", daemon.pickle)) as conn:
        conn.sendall(struct.pack("!L", len(evil)) + evil + struct.pack("!L", len(good)) + good)
    with socket.create_connection(("127.0.0.1", daemon.line)) as long_line, \
            socket.create_connection(("127.0.0.1", daemon.line)) as honest:
        long_line.sendall(b"x" * 100_000 + b" 1 %d\n" % t1)
        long_line.sendall(b"a.b. 1 %d\n../../../escape 1 %d\nnot.a.number x %d\n" % (t1, t1, t1))
        honest.sendall(b"hostile.good.line 2 %d\n" % t1)
    expected = {"hostile.good.pickle": {(t1, 4.0)}, "hostile.good.line": {(t1, 2.0)}}
    daemon.wait_cached(expected)
    prefix = f"carbon.agents.{HOST}.rejected"
    reasons = ["bad_pickle", "line_too_long", "bad_value", "bad_name"]
    deadline = time.monotonic() + 30
    while True:  # the self-metrics record the refusals (bad_name once the writer meets a.b.)
        cached = daemon.cached([f"{prefix}.{r}" for r in reasons])
        seen = {r: set(cached[f"{prefix}.{r}"]) | daemon.disk(f"{prefix}.{r}") for r in reasons}
        if all(any(v >= 1 for _, v in points) for points in seen.values()):
            break
        assert time.monotonic() < deadline, f"refusals not counted: {seen}\n" + daemon.log()
        time.sleep(0.2)
    assert daemon.proc.poll() is None, "the daemon died on hostile input:\n" + daemon.log()
    assert daemon.terminate() == 0, daemon.log()
    assert not marker.exists()
    for metric, points in expected.items():
        assert daemon.disk(metric) == points
    everything = {p.relative_to(tmp_path) for p in tmp_path.rglob("*.wsp")}
    assert all(p.parts[:2] == ("data", "whisper") for p in everything), everything
    assert not (daemon.data / "whisper" / "a").exists()
    assert "escape" not in {p.stem for p in everything}


def test_bad_config_exits_with_a_clear_message(tmp_path):
    conf = tmp_path / "carbon.conf"
    conf.write_text("[cache]\nMAX_CACHE_SIZE = lots\n")
    proc = subprocess.run([sys.executable, "-m", "carbon.cli", "serve", "--config", str(conf)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2
    assert f"cannot read MAX_CACHE_SIZE='lots' at {conf}:2" in proc.stderr


def test_a_port_in_use_exits_non_zero(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "carbon.cli", "serve", "--data-dir", str(tmp_path / "d"),
             "--bind", "127.0.0.1", "--line-port", str(port), "--pickle-port", "0",
             "--cache-query-port", "0", "--no-render"],
            capture_output=True, text=True, cwd=tmp_path, timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    assert proc.returncode == 1
    assert "cannot start" in proc.stderr
