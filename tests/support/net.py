"""Local networking helpers of the tests, and the base of their fake HTTP servers."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LoopbackServer(ThreadingHTTPServer):
    """A fake server's HTTP server: a thread per request that never blocks exit, a port that
    can be reused at once, and no traceback when a client hangs up (tests do that on
    purpose)."""

    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.server_address[1])

    def serve_in_background(self) -> str:
        """Answer requests on a daemon thread; returns the server's base URL."""
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop answering and free the port."""
        self.shutdown()
        self.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    """A fake server's request handler: HTTP/1.1, silent, and indifferent to a client that
    left before the answer was flushed."""

    protocol_version = "HTTP/1.1"

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, *args: Any) -> None:
        return
