"""A loopback TCP proxy that cuts one connection mid-response: a dropped network between a
client and the server, for the tests of streams that are picked up again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class DroppingProxy:
    """Forwards to ``upstream``; the first connection whose request line contains
    ``marker`` is closed once ``cut_after`` bytes of its response have gone through."""

    upstream: tuple[str, int]
    marker: bytes
    cut_after: int
    cuts: int = 0
    requests: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        cut = asyncio.Event()
        watch = {"armed": False}

        async def client_to_server() -> None:
            while data := await reader.read(65536):
                self.requests.append(data.split(b"\r\n", 1)[0])
                if self.cuts == 0 and self.marker in data.split(b"\r\n", 1)[0]:
                    watch["armed"] = True
                up_writer.write(data)
                await up_writer.drain()

        async def server_to_client() -> None:
            sent = 0
            while data := await up_reader.read(1024):
                if watch["armed"] and sent + len(data) >= self.cut_after:
                    writer.write(data[: max(0, self.cut_after - sent)])
                    await writer.drain()
                    self.cuts += 1
                    cut.set()
                    return
                sent += len(data) if watch["armed"] else 0
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.create_task(client_to_server()), asyncio.create_task(server_to_client())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for w in (writer, up_writer):
            w.close()
            with contextlib.suppress(Exception):
                await w.wait_closed()


@asynccontextmanager
async def dropping_proxy(
    upstream: str, marker: bytes, cut_after: int
) -> AsyncIterator[tuple[str, DroppingProxy]]:
    """A proxy in front of ``upstream`` (``http://host:port``); yields its base URL."""
    host, port = upstream.removeprefix("http://").split(":")
    proxy = DroppingProxy((host, int(port)), marker, cut_after)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    bound = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{bound}", proxy
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)
