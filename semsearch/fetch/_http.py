"""A polite HTTP client: a minimum interval between calls, Retry-After and Backoff honoured,
exponential backoff on 429/5xx and network errors, and one clear line after the last try."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

from ..errors import FetchError

#: Statuses that mean "not now": retried after Retry-After, else after exponential backoff.
RETRY_STATUSES = (429, 500, 502, 503, 504)
#: A Retry-After longer than this is not waited for: the service is told to be unreachable for now.
MAX_WAIT = 600.0
USER_AGENT = "semsearch/0.1 (local paper index; https://github.com/)"


class BadBody(Exception):
    """Raised by a parse function: the body is not what the service documents (retried: a
    truncated transfer looks like this, and so does arXiv's plain-text "Rate exceeded.")."""


class Refused(Exception):
    """Raised by a parse function: the service answered and refused for good (not retried)."""


def time_scale() -> float:
    """Multiplier of every wait, from $SEMSEARCH_FETCH_TIME_SCALE (default 1; tests use 0)."""
    try:
        return max(0.0, float(os.environ.get("SEMSEARCH_FETCH_TIME_SCALE", "1")))
    except ValueError:
        return 1.0


def shown_url(url: str) -> str:
    """The URL without its query string: errors never print an api_key parameter."""
    parts = urlsplit(str(url))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After (or Zotero Backoff) header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class Client:
    """GETs to one service, spaced at least `interval` seconds apart.

    Args:
        name: the service as users know it ("arXiv API"), used in every message.
        interval: seconds between the starts of two calls (the service's documented rate).
        retries: tries after the first before giving up.
        backoff: first backoff wait in seconds; doubled at each retry, capped at `max_backoff`.
        headers: sent with every call (never printed).
        sleep, clock: injectable, so tests do not wait for real; waits are also multiplied by
            time_scale().
        notify: called with a one-line message when the client waits long (for a progress line).
    """

    name: str
    interval: float = 1.0
    retries: int = 5
    backoff: float = 2.0
    max_backoff: float = 120.0
    timeout: float = 60.0
    headers: dict = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    notify: Callable[[str], None] | None = None
    transport: object = None
    requests: int = 0
    _next: float = 0.0
    _http: object = None

    def _wait(self, seconds: float) -> None:
        seconds *= time_scale()
        if seconds > 0:
            self.sleep(seconds)

    def _pace(self) -> None:
        now = self.clock()
        if now < self._next:
            self._wait(self._next - now)
        self._next = self.clock() + self.interval * time_scale()

    def _session(self):
        import httpx

        if self._http is None:
            self._http = httpx.Client(
                timeout=self.timeout, follow_redirects=True, transport=self.transport,
                headers={"User-Agent": USER_AGENT, **self.headers},
            )
        return self._http

    def get(self, url: str, params: dict | None = None, parse: Callable | None = None):
        """GET `url` and return `parse(response)` (or the response).

        Raises:
            FetchError: a 4xx other than 429, a refusal from `parse`, or still failing after
                `retries` retries (network error, 429/5xx, or a body `parse` rejects).
        """
        import httpx

        last = ""
        for attempt in range(self.retries + 1):
            self._pace()
            wait = min(self.max_backoff, self.backoff * 2**attempt)
            try:
                self.requests += 1
                response = self._session().get(url, params=params)
            except httpx.TransportError as exc:
                last = f"network error: {type(exc).__name__}{': ' + str(exc) if str(exc) else ''}"
            else:
                told = _retry_after(response.headers.get("Retry-After"))
                backoff_header = _retry_after(response.headers.get("Backoff"))
                if backoff_header:  # Zotero: slow down, even on a success
                    self._next = max(self._next, self.clock() + backoff_header * time_scale())
                if response.status_code in RETRY_STATUSES:
                    last = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
                    if parse is not None and response.status_code == 429:
                        try:
                            parse(response)  # a service may say why (e.g. a spent daily budget)
                        except Refused as exc:
                            raise FetchError(f"{self.name}: {exc}") from None
                        except BadBody:
                            pass
                    if told is not None:
                        if told > MAX_WAIT:
                            raise FetchError(
                                f"{self.name}: {shown_url(url)} asks to wait {told:.0f} s ({last}); try again later"
                            )
                        wait = told
                elif response.status_code >= 400:
                    message = None
                    if parse is not None:
                        try:
                            parse(response)
                        except Refused as exc:
                            message = str(exc)
                        except BadBody:
                            pass
                    status = f"{shown_url(url)} answered HTTP {response.status_code} {response.reason_phrase}".rstrip()
                    raise FetchError(f"{self.name}: {message or status}")
                else:
                    if parse is None:
                        return response
                    try:
                        return parse(response)
                    except Refused as exc:
                        raise FetchError(f"{self.name}: {exc}") from None
                    except BadBody as exc:
                        last = f"unexpected answer: {exc}"
            if attempt < self.retries:
                if self.notify and wait * time_scale() >= 5:
                    self.notify(f"{self.name}: {last}; retrying in {wait:.0f} s")
                self._wait(wait)
        raise FetchError(f"{self.name}: {shown_url(url)} failed after {self.retries + 1} tries ({last})")

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
