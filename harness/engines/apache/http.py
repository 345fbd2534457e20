"""Requests to a server on loopback, recorded exactly as they came back."""

from __future__ import annotations

import http.client
import socket
import time

from harness.engines.base import ProbeTarget
from harness.model.records import ProbeResult

LOOPBACK = "127.0.0.1"
BODY_LIMIT = 16384


def get(port: int, url: str, timeout: float) -> tuple[int | None, str, str | None]:
    """(status, body, error) for one GET on loopback; never raises for network trouble."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", url, headers={"Connection": "close"})
        response = conn.getresponse()
        body = response.read(BODY_LIMIT + 1).decode("utf-8", errors="replace")
        return response.status, body[:BODY_LIMIT], None
    except (socket.timeout, TimeoutError):
        return None, "", "timeout"
    except ConnectionRefusedError:
        return None, "", "refused"
    except (http.client.HTTPException, ConnectionError, OSError) as exc:
        return None, "", f"connection dropped: {type(exc).__name__}: {exc}"[:200]
    finally:
        conn.close()


def send(port: int, target: ProbeTarget) -> ProbeResult:
    started = time.monotonic()
    status, body, error = get(port, target.url, target.probe.timeout)
    elapsed = time.monotonic() - started
    mismatch = None if status is None else target.probe.mismatch(status, body)
    return ProbeResult(target.url, status, body, error, mismatch, elapsed, time.time())
