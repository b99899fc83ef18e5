"""A real HTTP server on loopback that serves news as feeds and APIs do, and misbehaves on
given routes.

Routes:

* ``/rss.xml`` (RSS 2.0) and ``/atom.xml`` (Atom 1.0): real XML with ``ETag`` and
  ``Last-Modified``, answering 304 to a matching conditional request (``If-None-Match`` wins
  over ``If-Modified-Since``, as RFC 9110 says). :meth:`FakeNewsServer.add_rss_item` changes
  the RSS feed (a new ETag and a later Last-Modified).
* ``/limited``: 429 with ``Retry-After: <retry_after>`` (seconds or an HTTP date).
* ``/broken``: 500 while ``broken`` is true, then the RSS feed.
* ``/gone``: 410.
* ``/slow``: the headers, then a body trickled a byte every ``trickle_s`` (a server that
  never finishes within a client's timeout); released by :meth:`FakeNewsServer.stop`.
* ``/not-a-feed``: an HTML page with 200.
* ``/huge``: 200 with a body of ``huge_bytes`` streamed in chunks (no Content-Length);
  ``/huge-declared``: the same with its Content-Length.
* ``/api/posts/``: CryptoPanic's posts API; 401 unless ``auth_token`` is ``token``.
* ``/moved/posts/``: 302 to ``/api/posts/`` on ``127.0.0.1`` (another host than
  ``localhost``), keeping the filters but not the key.

Every request is recorded (path with query, headers, the status answered). A dead feed is a
URL on a port nobody listens on (:func:`support.net.free_port`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from support.net import LoopbackServer, QuietHandler

TOKEN = "cp-test-key-5f3a9c1e7b"
RSS_MODIFIED = datetime(2025, 2, 26, 11, 30, tzinfo=UTC)
ATOM_MODIFIED = datetime(2025, 2, 26, 11, 45, tzinfo=UTC)

RSS_ITEMS = [
    # Published 11:20:14 at +01:00, that is 10:20:14 UTC; HTML in the description.
    """<item>
      <title>Bitcoin tops $95,000 as ETF inflows return</title>
      <link>https://coinwire.example/btc-95k?utm_source=rss</link>
      <guid isPermaLink="false">coinwire-1001</guid>
      <pubDate>Wed, 26 Feb 2025 11:20:14 +0100</pubDate>
      <description><![CDATA[<p>Spot <b>bitcoin</b> ETFs saw <i>$1.2bn</i> of inflows
        &amp; <a href="https://coinwire.example/etf">more</a></p>]]></description>
    </item>""",
    # No guid: the link is the id.
    """<item>
      <title>Ether climbs ahead of the Pectra upgrade</title>
      <link>https://coinwire.example/eth-pectra</link>
      <pubDate>Wed, 26 Feb 2025 09:05:00 GMT</pubDate>
      <description>Developers set a date for the upgrade.</description>
    </item>""",
    # No date at all: dated when fetched.
    """<item>
      <title>Solana memecoin volumes fade</title>
      <link>https://coinwire.example/sol-memes</link>
      <description>&lt;p&gt;Volumes &lt;em&gt;halved&lt;/em&gt; in a week.&lt;/p&gt;</description>
    </item>""",
]

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Chain Ledger</title>
  <link href="https://chainledger.example/"/>
  <id>urn:uuid:7d1e4d2c-0000-4000-8000-000000000000</id>
  <updated>2025-02-26T11:45:00Z</updated>
  <entry>
    <title>Ethereum ETF outflows slow</title>
    <link href="https://chainledger.example/eth-etf"/>
    <id>urn:uuid:7d1e4d2c-0000-4000-8000-000000000001</id>
    <published>2025-02-26T06:30:00-05:00</published>
    <updated>2025-02-26T11:40:00Z</updated>
    <summary type="html">&lt;p&gt;Outflows &lt;strong&gt;slowed&lt;/strong&gt; to
      $40m.&lt;/p&gt;</summary>
  </entry>
  <entry>
    <title>XRP rallies after court ruling</title>
    <link href="https://chainledger.example/xrp"/>
    <id>urn:uuid:7d1e4d2c-0000-4000-8000-000000000002</id>
    <updated>2025-02-25T23:45:00Z</updated>
    <summary>The token rose 12% overnight.</summary>
  </entry>
</feed>
"""

POSTS: list[dict[str, Any]] = [
    {
        "kind": "news",
        "domain": "coindesk.com",
        "source": {"title": "CoinDesk", "region": "en", "domain": "coindesk.com"},
        "title": "Bitcoin miners sell as hashprice slumps",
        "published_at": "2025-02-26T11:20:14Z",
        "slug": "Bitcoin-miners-sell-as-hashprice-slumps",
        "currencies": [{"code": "BTC", "title": "Bitcoin", "slug": "bitcoin"}],
        "id": 20750357,
        "url": "https://cryptopanic.com/news/20750357/Bitcoin-miners-sell",
        "created_at": "2025-02-26T11:21:02Z",
        "votes": {"negative": 2, "positive": 1, "important": 0},
    },
    {
        "kind": "news",
        "domain": "theblock.co",
        "source": {"title": "The Block", "region": "en", "domain": "theblock.co"},
        "title": "ETH and SOL lead altcoin rebound",
        "published_at": "2025-02-26T08:02:00Z",
        "slug": "ETH-and-SOL-lead-altcoin-rebound",
        "currencies": [{"code": "ETH"}, {"code": "SOL"}],
        "id": 20750100,
        "url": "https://cryptopanic.com/news/20750100/ETH-and-SOL",
        "created_at": "2025-02-26T08:03:00Z",
        "votes": {},
    },
    {
        "kind": "news",
        "domain": "example.com",
        "source": {"title": "Nobody"},
        "title": "",
        "published_at": "2025-02-26T07:00:00Z",
        "id": 20750001,
        "url": "https://cryptopanic.com/news/20750001/",
    },
]


def rss_document(items: list[str]) -> str:
    """An RSS 2.0 channel holding ``items`` (``<item>`` elements)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>Coin Wire</title>
    <link>https://coinwire.example/</link>
    <description>Crypto headlines</description>
    <lastBuildDate>Wed, 26 Feb 2025 11:30:00 GMT</lastBuildDate>
    {"".join(items)}
  </channel>
</rss>
"""


@dataclass
class Request:
    """One request the server received, and the status it answered."""

    path: str
    headers: dict[str, str]
    status: int = 0

    @property
    def route(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)


@dataclass
class FakeNewsServer:
    """The server's script and record (change the script between polls)."""

    token: str = TOKEN
    retry_after: str = "120"
    broken: bool = True
    huge_bytes: int = 6 * 1024 * 1024
    trickle_s: float = 0.05
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    port: int = 0
    _rss_items: list[str] = field(default_factory=lambda: list(RSS_ITEMS))
    _rss_modified: datetime = RSS_MODIFIED
    _server: LoopbackServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _released: threading.Event = field(default_factory=threading.Event)

    def start(self) -> FakeNewsServer:
        """Listen on a free loopback port."""
        server = LoopbackServer(("127.0.0.1", 0), _handler(self))
        self._server = server
        self.port = server.port
        self.url = server.serve_in_background()
        return self

    def stop(self) -> None:
        """Stop listening (and end slow answers)."""
        self._released.set()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def add_rss_item(self, item: str, modified: datetime) -> None:
        """Put ``item`` at the top of the RSS feed, last modified at ``modified``."""
        with self._lock:
            self._rss_items.insert(0, item)
            self._rss_modified = modified

    def to(self, route: str) -> list[Request]:
        """The requests to ``route`` (a path without query), in order."""
        with self._lock:
            return [r for r in self.requests if r.route == route]

    def rss(self) -> tuple[bytes, datetime]:
        with self._lock:
            return rss_document(self._rss_items).encode(), self._rss_modified

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def _handler(fake: FakeNewsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            request = Request(self.path, {k.lower(): v for k, v in self.headers.items()})
            fake._record(request)
            self._request = request
            route = request.route
            if route == "/rss.xml" or (route == "/broken" and not fake.broken):
                body, modified = fake.rss()
                self._feed(body, modified, "application/rss+xml; charset=utf-8")
            elif route == "/atom.xml":
                self._feed(ATOM.encode(), ATOM_MODIFIED, "application/atom+xml")
            elif route == "/limited":
                self._send(429, "text/plain", b"slow down", {"Retry-After": fake.retry_after})
            elif route == "/broken":
                self._send(500, "text/html", b"<h1>Internal Server Error</h1>")
            elif route == "/slow":
                self._trickle()
            elif route == "/gone":
                self._send(410, "text/plain", b"this feed was retired")
            elif route == "/not-a-feed":
                self._send(200, "text/html", b"<html><body><p>Welcome!</p></body></html>")
            elif route in ("/huge", "/huge-declared"):
                self._huge(fake.huge_bytes, declared=route == "/huge-declared")
            elif route == "/api/posts/":
                self._posts(request)
            elif route == "/moved/posts/":
                target = f"http://127.0.0.1:{fake.port}/api/posts/?public=true&kind=news"
                self._send(302, "text/plain", b"moved", {"Location": target})
            else:
                self._send(404, "text/plain", b"not found")

        def _feed(self, body: bytes, modified: datetime, content_type: str) -> None:
            etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
            headers = {"ETag": etag, "Last-Modified": format_datetime(modified, usegmt=True)}
            if _not_modified(self._request.headers, etag, modified):
                self._send(304, content_type, b"", headers)
            else:
                self._send(200, content_type, body, headers)

        def _posts(self, request: Request) -> None:
            query = request.query
            if query.get("auth_token") != [fake.token]:
                refusal = {"status": "Incomplete", "info": "Token not found"}
                self._send(401, "application/json", json.dumps(refusal).encode())
                return
            if query.get("public") != ["true"] or query.get("kind") != ["news"]:
                self._send(400, "application/json", b'{"info": "bad filter"}')
                return
            answer = {"count": len(POSTS), "next": None, "previous": None, "results": POSTS}
            self._send(200, "application/json", json.dumps(answer).encode())

        def _trickle(self) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._request.status = 200
                self.send_response(200)
                self.send_header("content-type", "application/rss+xml")
                self.send_header("content-length", "100000")
                self.end_headers()
                self.wfile.flush()
                while not fake._released.wait(fake.trickle_s):
                    self.wfile.write(b" ")
                    self.wfile.flush()

        def _huge(self, size: int, *, declared: bool) -> None:
            piece = b"<!-- " + b"x" * 65_000 + b" -->\n"
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._request.status = 200
                self.send_response(200)
                self.send_header("content-type", "application/rss+xml")
                if declared:
                    self.send_header("content-length", str(size))
                else:
                    self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                sent = 0
                while sent < size:
                    chunk = piece[: size - sent]
                    if declared:
                        self.wfile.write(chunk)
                    else:
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    sent += len(chunk)
                if not declared:
                    self.wfile.write(b"0\r\n\r\n")

        def _send(
            self,
            status: int,
            content_type: str,
            payload: bytes,
            headers: dict[str, str] | None = None,
        ) -> None:
            self._request.status = status
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status)
                self.send_header("content-type", content_type)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if status != 304:
                    self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

    return Handler


def _not_modified(headers: dict[str, str], etag: str, modified: datetime) -> bool:
    """Whether a conditional GET matches (RFC 9110: If-None-Match, when sent, decides)."""
    if "if-none-match" in headers:
        sent = [tag.strip() for tag in headers["if-none-match"].split(",")]
        return etag in sent or "*" in sent
    if "if-modified-since" in headers:
        try:
            since = parsedate_to_datetime(headers["if-modified-since"])
        except (TypeError, ValueError):
            return False
        return since.tzinfo is not None and modified <= since
    return False


@dataclass
class FakeClocks:
    """A wall clock and a monotonic clock that move only when told (no test sleeps)."""

    wall: datetime = datetime(2025, 2, 26, 12, 0, tzinfo=UTC)
    mono: float = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds
