"""CryptoPanic's posts API, polled (see :mod:`tradecast.news.polling`).

``GET {base}/posts/?auth_token=KEY&public=true&kind=news[&currencies=BTC,ETH]`` answers
``{"count", "next", "previous", "results": [post, ...]}``, each post with ``id``, ``title``,
``published_at`` (ISO-8601, UTC), ``source`` (``title``, ``domain``), ``url`` and
``currencies`` (``[{"code": "BTC"}, ...]``; ``instruments`` in newer answers). Only the first
page is read: polled every few minutes, it holds everything new.

The key never leaves this module's transport: it is added to the query on the wire only, for
the API's own host, so httpx's requests, errors and log lines never hold it; error texts are
scrubbed of it anyway. (A custom transport means httpx does not read proxy settings from the
environment for this source.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from pydantic import SecretStr

from tradecast.errors import NewsError
from tradecast.news.polling import (
    Endpoint,
    FeedFailure,
    PolledNewsSource,
    Record,
    endpoint_label,
    live_item,
    polling_options,
)
from tradecast.settings import NewsConfig

DEFAULT_URL = "https://cryptopanic.com/api/developer/v2"
TOKEN_SETTING = "TRADECAST_NEWS__CRYPTOPANIC_TOKEN"
TOKEN_PARAM = "auth_token"


class CryptoPanicSource(PolledNewsSource):
    """News posts from CryptoPanic.

    Args:
        token: the API key (``auth_token``).
        base_url: the API's root (its ``/posts/`` route is polled); tests: a loopback server.
        currencies: only posts about these tickers (all when empty).
        options: :class:`~tradecast.news.polling.PolledNewsSource` arguments
            (``poll_interval_s``, ``max_backoff_s``, ``timeout_s``, ``transport``, ``now``,
            ``clock``, ...).

    Raises:
        NewsError: the key is empty, or ``base_url`` is not an http(s) URL.
    """

    def __init__(
        self,
        token: str | SecretStr,
        *,
        base_url: str = DEFAULT_URL,
        currencies: Sequence[str] = (),
        **options: Any,
    ) -> None:
        key = (token.get_secret_value() if isinstance(token, SecretStr) else token).strip()
        if not key:
            raise NewsError(f"set {TOKEN_SETTING} to read CryptoPanic")
        root = urlsplit(base_url.strip())
        if root.scheme not in ("http", "https") or not root.hostname:
            raise NewsError(
                f"CryptoPanic URL {endpoint_label(base_url)} is not an http(s) URL "
                "(check TRADECAST_NEWS__CRYPTOPANIC_URL)"
            )
        tickers = [c.strip().upper() for c in currencies if c.strip()]
        query = {"public": "true", "kind": "news"}
        if tickers:
            query["currencies"] = ",".join(tickers)
        url = f"{base_url.strip().rstrip('/')}/posts/?{urlencode(query)}"
        transport = options.pop("transport", None) or httpx.AsyncHTTPTransport()
        super().__init__(
            "cryptopanic" + (f":{','.join(tickers)}" if tickers else ""),
            [Endpoint(url, endpoint_label(url))],
            secrets=(key,),
            headers={"Accept": "application/json"},
            transport=_KeyTransport(transport, root.hostname, key),
            **options,
        )

    @classmethod
    def from_config(cls, config: NewsConfig, **options: Any) -> CryptoPanicSource:
        """The API ``TRADECAST_NEWS__CRYPTOPANIC_*`` describes, polled as
        ``TRADECAST_NEWS__*`` says (``options``: more arguments, such as ``currencies``).

        Raises:
            NewsError: the key is not set.
        """
        return cls(
            config.cryptopanic_token,
            base_url=config.cryptopanic_url,
            **polling_options(config),
            **options,
        )

    def _parse(
        self, endpoint: Endpoint, body: bytes, headers: httpx.Headers, fetched_at: datetime
    ) -> Iterable[Record]:
        try:
            answer = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise FeedFailure("the answer is not JSON") from None
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            info = answer.get("info") if isinstance(answer, dict) else None
            raise FeedFailure(f"the answer has no results list ({str(info or '')[:100]})")
        return [_post(post, fetched_at) for post in results]


def _post(post: Any, fetched_at: datetime) -> Record:
    if not isinstance(post, dict):
        return "not_an_object"
    given = post.get("source")
    source: dict[str, Any] = given if isinstance(given, dict) else {}
    tagged = post.get("currencies") or post.get("instruments")
    tags = tagged if isinstance(tagged, list) else []
    codes = [c.get("code") for c in tags if isinstance(c, dict)]
    post_id = post.get("id")
    return live_item(
        fetched_at,
        published=post.get("published_at"),
        title=post.get("title"),
        source=source.get("title") or source.get("domain") or post.get("domain") or "cryptopanic",
        summary=post.get("description") or "",
        url=post.get("original_url") or post.get("url") or "",
        symbols=[c for c in codes if isinstance(c, str)],
        identifier=f"cryptopanic-{post_id}" if isinstance(post_id, int | str) and post_id else None,
    )


class _KeyTransport(httpx.AsyncBaseTransport):
    """Adds the key to requests for ``host`` as they leave, so no request httpx keeps (for
    errors, logs, redirects) holds it, and a redirect to another host never carries it."""

    def __init__(self, inner: httpx.AsyncBaseTransport, host: str, key: str) -> None:
        self._inner = inner
        self._host = host
        self._key = key

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == self._host:
            request = httpx.Request(
                request.method,
                request.url.copy_add_param(TOKEN_PARAM, self._key),
                headers=request.headers,
                stream=request.stream,
                extensions=request.extensions,
            )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
