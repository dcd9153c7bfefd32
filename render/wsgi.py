"""Serving the render API in production: gunicorn with N worker processes.

Three ways in:

* :func:`serve` runs a gunicorn master in the calling process (``carbyne
  render``); it returns only through gunicorn's own exit.
* :func:`start_render_server` starts that master in a child process and
  returns a :class:`RenderServer` handle (``carbyne serve`` uses it to run the
  render API beside the ingest daemon). The listening socket is bound in the
  caller first, so a busy port fails there, at once, and port 0 works.
* ``gunicorn 'render.wsgi:app_from_environ()'`` for a gunicorn (or any WSGI
  server) you run yourself, configured by ``CARBYNE_RENDER_CONFIG`` (JSON of
  a :class:`RenderConfig`).

Each worker builds its own app after the fork (no preloading), so no
CarbonLink socket or file handle is shared between processes.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask

from render.app import create_app
from render.config import RenderConfig

CONFIG_ENVIRONMENT = "CARBYNE_RENDER_CONFIG"
#: Allocations between young-generation collections in a render worker (CPython's default: 700)
GC_YOUNG_THRESHOLD = 50_000
WORKER_TIMEOUT = 120
STOP_TIMEOUT = 30.0
PARENT_POLL_SECONDS = 1.0


class ServerUnavailable(RuntimeError):
    """The production server cannot be started (gunicorn missing, bad address)."""


def _gunicorn_base() -> type:
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        raise ServerUnavailable(
            "cannot serve the render API: gunicorn is not installed (pip install gunicorn)"
        ) from None
    return BaseApplication


def _stop_when_orphaned(parent_pid: int) -> None:
    """In the gunicorn master: SIGTERM itself once ``parent_pid`` is gone (even SIGKILLed),
    so a render server started by ``carbyne serve`` never outlives it holding the port."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def gunicorn_application(config: RenderConfig, bind: str, parent_pid: int | None = None) -> Any:
    """A gunicorn application serving ``create_app(config)`` on ``bind`` with ``config.workers``.

    With ``parent_pid``, the server stops when that process exits.
    """

    class RenderApplication(_gunicorn_base()):  # type: ignore[misc]
        def load_config(self) -> None:
            settings = {
                "bind": [bind],
                "workers": config.workers,
                "worker_class": "sync",
                "timeout": WORKER_TIMEOUT,
                "graceful_timeout": int(STOP_TIMEOUT),
                "proc_name": "carbyne-render",
                "accesslog": None,
                "errorlog": "-",
                "preload_app": False,
            }
            if parent_pid is not None:
                settings["when_ready"] = lambda server: _stop_when_orphaned(parent_pid)
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn >= 24 opens a control socket in $HOME by default; several
                # render servers (or tests) on one host would fight over it.
                settings["control_socket_disable"] = True
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            app = create_app(config)
            tune_gc()
            return app

    return RenderApplication()


def http_address(config: RenderConfig) -> str:
    """``HTTP_INTERFACE:HTTP_PORT`` as gunicorn spells an address."""
    host = config.http_interface
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{config.http_port}"


def serve(config: RenderConfig, listen_fd: int | None = None, parent_pid: int | None = None) -> None:
    """Run gunicorn in this process until it is stopped (SIGTERM/SIGINT).

    ``listen_fd`` is an already listening socket to serve instead of binding
    ``HTTP_INTERFACE:HTTP_PORT``; with ``parent_pid`` the server also stops
    when that process is gone.
    """
    bind = f"fd://{listen_fd}" if listen_fd is not None else http_address(config)
    gunicorn_application(config, bind, parent_pid).run()


def app_from_environ() -> Flask:
    """The app for an external WSGI server, configured by ``CARBYNE_RENDER_CONFIG``."""
    text = os.environ.get(CONFIG_ENVIRONMENT)
    if not text:
        raise ServerUnavailable(f"cannot build the render app: {CONFIG_ENVIRONMENT} is not set")
    app = create_app(RenderConfig.from_json(text))
    tune_gc()
    return app


def tune_gc() -> None:
    """Collect cyclic garbage less often in a render worker, and never rescan what exists now.

    A 1,000-series answer allocates tens of thousands of objects that are
    freed by reference counting; with CPython's default threshold they set
    off about ten collections per request (~3.5 ms of a ~35 ms answer).
    ``gc.freeze`` moves the app and its imports out of every future
    collection's scan.
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def listening_socket(interface: str, port: int, backlog: int = 512) -> socket.socket:
    """A TCP socket listening on ``interface:port`` (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((interface, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ServerUnavailable(f"cannot listen on HTTP_INTERFACE={interface} HTTP_PORT={port}: {exc}") from None
    return sock


@dataclass
class RenderServer:
    """A render API running in a child process (a gunicorn master and its workers)."""

    process: subprocess.Popen
    host: str
    port: int

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM (gunicorn's graceful stop), then SIGKILL after ``timeout``; the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_render_server(config: RenderConfig, *, python: str = sys.executable) -> RenderServer:
    """Start the render API for ``config`` in its own process(es) and return at once.

    The socket is bound here (errors raise :class:`ServerUnavailable`
    immediately) and inherited by the child; ``config.http_port=0`` picks a
    free port, reported by the handle. Stop it with :meth:`RenderServer.stop`;
    it also stops by itself when the calling process exits.
    """
    _gunicorn_base()
    sock = listening_socket(config.http_interface, config.http_port)
    try:
        fd = sock.fileno()
        os.set_inheritable(fd, True)
        port = sock.getsockname()[1]
        command = [python, "-m", "render.wsgi", "--listen-fd", str(fd), "--parent-pid", str(os.getpid())]
        # in the environment, not argv: the events token must not show in `ps`
        environment = {**os.environ, CONFIG_ENVIRONMENT: config.to_json()}
        process = subprocess.Popen(command, pass_fds=(fd,), close_fds=True, env=environment)
    finally:
        sock.close()
    return RenderServer(process, config.http_interface, port)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m render.wsgi [--listen-fd FD] [--parent-pid PID]`` with the configuration
    in ``CARBYNE_RENDER_CONFIG`` (what start_render_server runs)."""
    parser = argparse.ArgumentParser(prog="python -m render.wsgi")
    parser.add_argument("--listen-fd", type=int)
    parser.add_argument("--parent-pid", type=int)
    args = parser.parse_args(argv)
    try:
        text = os.environ.get(CONFIG_ENVIRONMENT)
        if not text:
            raise ServerUnavailable(f"cannot start the render server: {CONFIG_ENVIRONMENT} is not set")
        serve(RenderConfig.from_json(text), args.listen_fd, args.parent_pid)
    except (ServerUnavailable, ValueError) as exc:
        print(f"carbyne render: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
