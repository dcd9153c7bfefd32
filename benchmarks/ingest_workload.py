"""End-to-end ingest workload shared by the carbon benchmarks.

Starts a daemon (carbon-cache 1.1.10 from a throwaway venv, or ``carbyne
serve``) on free 127.0.0.1 ports, pushes ``metrics × points`` over one TCP
connection as plaintext or pickle, and measures how fast lines are accepted,
when every point reads back from disk, and the daemon's CPU seconds.
"""
from __future__ import annotations

import array
import fcntl
import os
import pickle
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CARBON_VENV = Path(os.environ.get("CARBYNE_BENCH_CARBON_VENV",
                                  Path.home() / ".cache" / "carbyne-bench" / "carbon-1.1.10"))
SCHEMAS = "[default]\npattern = .*\nretentions = 10s:6h,1m:7d\n"
STEP = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def installed_carbon_venv() -> Path | None:
    """A carbon 1.1.10 venv already built, for tests: ``CARBYNE_BENCH_CARBON_VENV``, the one
    ``.ci/run`` builds, or the benchmark's; None when there is none."""
    places = [os.environ.get("CARBYNE_BENCH_CARBON_VENV", ""), REPO / ".ci" / "cache" / "carbon-1.1.10",
              Path.home() / ".cache" / "carbyne-bench" / "carbon-1.1.10"]
    for place in filter(None, places):
        if (Path(place) / "bin" / "carbon-cache.py").exists():
            return Path(place)
    return None


def ensure_carbon_venv() -> Path:
    """carbon-cache 1.1.10 in its own venv: its top-level ``carbon`` package would shadow ours."""
    python = CARBON_VENV / "bin" / "python"
    if not (CARBON_VENV / "bin" / "carbon-cache.py").exists():
        subprocess.run([sys.executable, "-m", "venv", str(CARBON_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "carbon==1.1.10", "whisper==1.1.10"],
                       check=True, env={**os.environ, "GRAPHITE_NO_PREFIX": "true"})
    return CARBON_VENV


@dataclass
class Daemon:
    proc: subprocess.Popen
    whisper_dir: Path
    line_port: int
    pickle_port: int
    cache_query_port: int = 0

    def cpu_seconds(self) -> float:
        """utime + stime of the daemon and its children, from /proc."""
        total = 0.0
        pids = [self.proc.pid] + _children(self.proc.pid)
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = [int(k) for k in kids]
    for k in list(out):
        out += _children(k)
    return out


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(port)


def start_carbon_program(venv: Path, program: str, config: Path, root: Path) -> subprocess.Popen:
    """One of carbon 1.1.10's daemons (carbon-cache.py, carbon-relay.py) from ``venv``, in the
    foreground, with its files under ``root``."""
    return subprocess.Popen(
        [str(venv / "bin" / "python"), str(venv / "bin" / program), f"--config={config}",
         "--nodaemon", "start"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root,
        env={**os.environ, "GRAPHITE_ROOT": str(root)},
    )


def start_carbon_cache(root: Path, *, venv: Path | None = None, schemas: str = SCHEMAS,
                       aggregation: str | None = None, settings: str = "") -> Daemon:
    """carbon-cache at its defaults but unlimited rates; its default WHISPER_FALLOCATE_CREATE
    is False, so it writes each new file's zeros (CARBYNE_BENCH_CARBON_FALLOCATE=1 turns on
    its posix_fallocate instead; the files' bytes are the same either way).

    ``settings`` are more ``[cache]`` lines (carbon refuses a key given twice), which may
    name the ports as ``{line}``, ``{pickle}`` and ``{query}``; ``aggregation`` is a
    storage-aggregation.conf."""
    venv = venv if venv is not None else ensure_carbon_venv()
    conf_dir, storage = root / "conf", root / "storage"
    conf_dir.mkdir(parents=True, exist_ok=True)
    (storage / "log").mkdir(parents=True, exist_ok=True)
    line, pick, query = free_port(), free_port(), free_port()
    (conf_dir / "storage-schemas.conf").write_text(schemas)
    if aggregation is not None:
        (conf_dir / "storage-aggregation.conf").write_text(aggregation)
    (conf_dir / "carbon.conf").write_text(f"""[cache]
STORAGE_DIR = {storage}
LOCAL_DATA_DIR = {storage}/whisper
LOG_DIR = {storage}/log
PID_DIR = {storage}
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {line}
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pick}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {query}
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
CARBON_METRIC_INTERVAL = 0
ENABLE_TAGS = False
LOG_UPDATES = False
LOG_CREATES = False
LOG_CACHE_HITS = False
{"WHISPER_FALLOCATE_CREATE = True" if os.environ.get("CARBYNE_BENCH_CARBON_FALLOCATE") else ""}
{settings.format(line=line, pickle=pick, query=query)}
""")
    proc = start_carbon_program(venv, "carbon-cache.py", conf_dir / "carbon.conf", root)
    try:
        for port in (line, pick, query):
            _wait_listening(port, proc)
    except Exception:
        proc.kill()
        proc.wait()
        raise
    return Daemon(proc, storage / "whisper", line, pick, query)


def start_carbyne(root: Path) -> Daemon:
    data = root / "data"
    conf = root / "carbon.conf"
    (root / "conf").mkdir(parents=True, exist_ok=True)
    (root / "conf" / "storage-schemas.conf").write_text(SCHEMAS)
    conf.write_text(f"[cache]\nCONF_DIR = {root / 'conf'}\nMAX_UPDATES_PER_SECOND = inf\n"
                    "MAX_CREATES_PER_MINUTE = inf\nCARBON_METRIC_INTERVAL = 0\n")
    line, pick, query = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "carbon.cli", "serve", "--config", str(conf), "--data-dir", str(data),
         "--bind", "127.0.0.1", "--line-port", str(line), "--udp-port", str(line),
         "--pickle-port", str(pick), "--cache-query-port", str(query), "--no-render"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    _wait_listening(line, proc)
    _wait_listening(pick, proc)
    return Daemon(proc, data / "whisper", line, pick, query)


_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS, _FS_TOPDIR_FL = 0x80086601, 0x40086602, 0x00020000


def mark_top_directory(folder: Path) -> None:
    """chattr +T: ext4's Orlov allocator spreads the folder's subfolders over the disk."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        flags[0] |= _FS_TOPDIR_FL
        fcntl.ioctl(fd, _FS_IOC_SETFLAGS, flags, True)
    except OSError:  # not ext2/3/4, or not allowed: measure where we are
        pass
    finally:
        os.close(fd)


def metric_names(n: int) -> list[str]:
    return [f"bench.host{i // 100:03d}.cpu{i % 100:02d}.value" for i in range(n)]


def plaintext_payload(names: list[str], start: int, points: int) -> bytes:
    """Time-major, as collectors send: every metric at t, then every metric at t+step."""
    parts = []
    for p in range(points):
        ts = start + p * STEP
        parts.append("".join(f"{name} {p + 0.5} {ts}\n" for name in names))
    return "".join(parts).encode()


def pickle_frames(names: list[str], start: int, points: int, per_frame: int = 500) -> bytes:
    """carbon-relay's framing: pickle protocol 2, at most 500 datapoints per frame."""
    out = bytearray()
    batch: list = []
    for p in range(points):
        ts = float(start + p * STEP)
        for name in names:
            batch.append((name, (ts, p + 0.5)))
            if len(batch) == per_frame:
                body = pickle.dumps(batch, protocol=2)
                out += struct.pack("!L", len(body)) + body
                batch = []
    if batch:
        body = pickle.dumps(batch, protocol=2)
        out += struct.pack("!L", len(body)) + body
    return bytes(out)


def wsp_path(whisper_dir: Path, name: str) -> Path:
    return whisper_dir.joinpath(*name.split(".")).with_suffix(".wsp")


_ARCHIVE_ZERO = struct.Struct("!LLL")  # offset, seconds per point, points: bytes 16..28
_POINT = struct.Struct("!Ld")


def has_point(path: Path, timestamp: int) -> bool:
    """Whether the first archive of a whisper file holds ``timestamp``'s interval.

    Two preads instead of whisper.fetch, so checking 10,000 files costs a tenth
    of a second rather than most of one (the check runs inside the measured time).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        header = os.pread(fd, 28, 0)
        if len(header) < 28:
            return False
        offset, step, points = _ARCHIVE_ZERO.unpack_from(header, 16)
        base = os.pread(fd, _POINT.size, offset)
        if len(base) < _POINT.size:
            return False
        base_time = _POINT.unpack(base)[0]
        interval = timestamp - timestamp % step
        if base_time == 0:
            return False
        slot = ((interval - base_time) // step) % points
        stored = os.pread(fd, _POINT.size, offset + slot * _POINT.size)
        return len(stored) == _POINT.size and _POINT.unpack(stored)[0] == interval
    finally:
        os.close(fd)


@dataclass
class Measurement:
    lines: int
    accept_seconds: float
    persist_seconds: float
    cpu_seconds: float

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.accept_seconds

    @property
    def points_per_second(self) -> float:
        return self.lines / self.persist_seconds

    @property
    def cpu_seconds_per_million(self) -> float:
        return self.cpu_seconds / (self.lines / 1e6)


def push(daemon: Daemon, payload: bytes, port: int, names: list[str], start: int, points: int,
         timeout: float = 600) -> Measurement:
    cpu0 = daemon.cpu_seconds()
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(timeout)
        sock.recv(1)  # returns when the daemon has read everything and closed, or at EOF
    accepted = time.perf_counter() - t0
    deadline = t0 + timeout
    last = start + (points - 1) * STEP
    waiting = [wsp_path(daemon.whisper_dir, name) for name in names]
    random.Random(0).shuffle(waiting)
    # A metric whose last point is on disk stays done. Each round drops the done ones
    # from the front of a shuffled list and stops at the first one not done yet, so
    # a round is cheap while writing goes on and the final check covers only the rest.
    while waiting:
        done = 0
        while done < len(waiting) and has_point(waiting[done], last):
            done += 1
        waiting = waiting[done:]
        if waiting:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"points of {len(waiting)} metrics did not reach disk")
            time.sleep(0.02)
    persisted = time.perf_counter() - t0
    return Measurement(len(names) * points, accepted, persisted, daemon.cpu_seconds() - cpu0)


def _profile_main(argv: list[str] | None = None) -> int:
    """Carbyne alone, cold then warm, optionally under ``py-spy record`` (a profile mode).

    ``python3 -m benchmarks.ingest_workload --protocol plaintext --py-spy /tmp/carbon.txt``
    """
    import argparse
    import contextlib
    import tempfile

    parser = argparse.ArgumentParser(description=_profile_main.__doc__)
    parser.add_argument("--protocol", choices=("plaintext", "pickle"), default="plaintext")
    parser.add_argument("--metrics", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=60)
    parser.add_argument("--daemon", choices=("carbyne", "carbon"), default="carbyne")
    parser.add_argument("--py-spy", metavar="OUT", help="record the daemon with py-spy (raw format)")
    parser.add_argument("--py-spy-idle", action="store_true",
                        help="also record threads while they wait (py-spy --idle)")
    parser.add_argument("--profile-phase", choices=("both", "cold", "warm"), default="both")
    parser.add_argument("--warm-rounds", type=int, default=1, help="warm pushes after the cold one")
    parser.add_argument("--root", help="make the daemon's folder under ROOT and keep it (a cold run "
                        "soon after a mass delete nearby is slowed by ext4, see test_bench_carbon)")
    args = parser.parse_args(argv)
    names = metric_names(args.metrics)
    start = (int(time.time()) // 3600) * 3600 - 3 * 3600
    if args.root:
        Path(args.root).mkdir(parents=True, exist_ok=True)
        mark_top_directory(Path(args.root))  # each run's folder away from earlier deletes
    with (tempfile.TemporaryDirectory() if not args.root
          else contextlib.nullcontext(tempfile.mkdtemp(dir=args.root))) as root:
        daemon = (start_carbyne if args.daemon == "carbyne" else start_carbon_cache)(Path(root))
        spy = None
        try:
            phases = [("cold", start)] + [("warm", start + (k + 1) * args.points * STEP)
                                          for k in range(args.warm_rounds)]
            for phase, t0 in phases:
                if args.py_spy and spy is None and args.profile_phase in ("both", phase):
                    spy = subprocess.Popen(
                        ["py-spy", "record", "--pid", str(daemon.proc.pid), "--threads", "--nonblocking",
                         "--format", "raw", "--rate", "500", *(["--idle"] if args.py_spy_idle else []),
                         "--output", args.py_spy],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(1.0)
                if args.protocol == "plaintext":
                    payload, port = plaintext_payload(names, t0, args.points), daemon.line_port
                else:
                    payload, port = pickle_frames(names, t0, args.points), daemon.pickle_port
                m = push(daemon, payload, port, names, t0, args.points)
                print(f"{args.daemon} {args.protocol} {phase}: {m.lines_per_second:,.0f} lines/s accepted "
                      f"({m.accept_seconds:.2f} s), {m.points_per_second:,.0f} points/s persisted "
                      f"({m.persist_seconds:.2f} s), {m.cpu_seconds_per_million:.2f} CPU-s per M points")
                if spy is not None and args.profile_phase == phase:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(60)
                    spy = None
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
            daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_profile_main())
