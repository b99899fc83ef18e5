"""The real Redis and PostgreSQL of this machine, for scale-out tests.

When a service is missing, a test fails under ``CI=true`` (CI must have started it) and is
skipped elsewhere. Each test gets a fresh PostgreSQL database and a fresh Redis key prefix, so
tests never see each other's data; a private ``redis-server`` (the same binary, on its own
port) serves the tests that restart Redis.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.net import free_port

REDIS_URL = os.environ.get("TRADECAST_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_ADMIN_URL = os.environ.get(
    "TRADECAST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def missing(service: str, why: str) -> None:
    """Fail under CI, skip elsewhere."""
    message = f"{service} is not reachable ({why})"
    if os.environ.get("CI") == "true":
        pytest.fail(message + ": CI must start it (.ci/run does)")
    pytest.skip(message)


def _redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2)


@pytest.fixture
def redis_url() -> str:
    """The machine's Redis (checked reachable)."""
    try:
        _redis_client(REDIS_URL).ping()
    except Exception as exc:
        missing("Redis", str(exc))
    return REDIS_URL


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A fresh key prefix on the machine's Redis, deleted afterwards."""
    prefix = f"tctest-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = _redis_client(redis_url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)


def _admin():
    import psycopg

    return psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty database on the machine's PostgreSQL, dropped afterwards."""
    try:
        admin = _admin()
    except Exception as exc:
        missing("PostgreSQL", str(exc))
    name = f"tctest_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class PrivateRedis:
    """A redis-server of its own, with nothing on disk (as this machine's is), that a test
    may stop and start again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server", "not installed")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                _redis_client(self.url).ping()
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private redis-server, running; stopped afterwards."""
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


class TcpProxy:
    """A TCP forwarder in front of a real service, so a test can cut the network to it (and
    restore it) without stopping the service other tests use."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: socket.socket | None = None
        self._links: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut every open one."""
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            server.close()
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            with contextlib.suppress(OSError):
                link.shutdown(socket.SHUT_RDWR)
            link.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=3)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._links += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


def url_via(url: str, proxy: TcpProxy) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    scheme, rest = url.split("://", 1)
    userinfo, _, hostpath = rest.rpartition("@")
    path = hostpath.split("/", 1)[1] if "/" in hostpath else ""
    prefix = f"{userinfo}@" if userinfo else ""
    return f"{scheme}://{prefix}127.0.0.1:{proxy.port}/{path}"
