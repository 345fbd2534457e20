"""Send a scenario's probe requests and record exactly what came back."""

from __future__ import annotations

import http.client
import socket
import time
from dataclasses import dataclass

from harness.scenario import Probe

BODY_LIMIT = 4096


@dataclass(frozen=True)
class ProbeResult:
    url: str
    status: int | None  # None: no HTTP answer at all
    body: str
    error: str | None  # "timeout", "connection dropped: ...", "refused"
    mismatch: str | None  # why the answer is wrong, if it is
    elapsed: float
    answered_at: float

    @property
    def timed_out(self) -> bool:
        return self.error == "timeout"

    @property
    def server_error(self) -> bool:
        return self.status is not None and self.status >= 500

    def to_json(self) -> dict[str, object]:
        return {
            "url": self.url,
            "status": self.status,
            "body": self.body,
            "error": self.error,
            "mismatch": self.mismatch,
            "elapsed": round(self.elapsed, 4),
        }


def get(port: int, url: str, timeout: float) -> tuple[int | None, str, str | None]:
    """(status, body, error) for one GET on loopback; never raises for network trouble."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
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


def send(port: int, prefix: str, probe: Probe) -> ProbeResult:
    url = prefix.rstrip("/") + probe.path
    started = time.monotonic()
    status, body, error = get(port, url, probe.timeout)
    elapsed = time.monotonic() - started
    mismatch = None if status is None else probe.mismatch(status, body)
    return ProbeResult(url, status, body, error, mismatch, elapsed, time.time())
