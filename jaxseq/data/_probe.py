"""Whether a download could start: one TCP connection, bounded in time
(used by :func:`jaxseq.data.imdb.check_tfds`)."""

from __future__ import annotations

import socket
import threading
import urllib.parse
import urllib.request


def probe_address(url: str) -> tuple[str, int]:
    """The host and port a download of ``url`` connects to first: the
    environment's proxy for its scheme (``http_proxy`` ...) unless bypassed."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        via = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return via.hostname or "", via.port or 80
    return host, parts.port or (443 if parts.scheme == "https" else 80)


def accepts_connection(host: str, port: int, timeout: float) -> bool:
    """Whether ``host:port`` accepts a TCP connection within ``timeout`` seconds,
    name lookup included (run in a daemon thread: a lookup has no timeout)."""
    accepted: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            accepted.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=connect, name="jaxseq-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(accepted)
