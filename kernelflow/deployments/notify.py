"""Webhook notifications for deployment runs that end Failed, TimedOut or Crashed.

The body is JSON with a Slack-compatible ``text`` field, plus the run's
fields for other receivers. A webhook never changes the run's state.

A receiver is outside our control: it may answer garbage, redirect, trickle
one byte at a time or never answer. So delivery is built to be bounded and
to say what happened:

- Each URL is posted from its own background thread; :func:`notify_run`
  returns at once, so the run ends and frees its scheduler slot without
  waiting for any receiver.
- One deadline, :data:`DEADLINE_S`, covers the whole call (connect, request,
  status line and headers), not each socket read: a trickling server cannot
  stretch it. When it passes, the socket is shut down and the delivery is
  recorded as failed.
- Redirects are not followed (a ``3xx`` is a failure that says where it
  pointed): the body would otherwise go to a URL nobody configured.
- Every error is caught and becomes a one-line reason.
- The outcome is journaled as one log line of the run,
  ``Webhook to <url> sent|failed: <detail>``, so it reaches the store like
  every other event; the ``webhooks`` view (``docs/schema.md``) and
  ``kernelflow runs show`` read it.
- The sending threads are not daemons, and each ends by its deadline: a
  process (``kernelflow deployment run --wait``, the scheduler) does not exit
  before its webhooks were sent or gave up, and never waits longer.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from kernelflow import settings

__all__ = ["DEADLINE_S", "Delivery", "notify_run", "payload", "wait_for_deliveries"]

#: Seconds one webhook call may take in all, from connecting to the answer's headers.
DEADLINE_S = 10.0

#: The logger name of the journaled outcome lines (the ``webhooks`` view reads them).
OUTCOME_LOGGER = "kernelflow.deployments.webhook"

_MAX_DETAIL = 300


def payload(deployment: Any, run: Any, state: Any) -> dict[str, Any]:
    """The JSON body posted for ``run`` of ``deployment`` ending in ``state``."""
    output = settings.paths().outputs / deployment.name / f"{run.id}.ipynb"
    text = (
        f"kernelflow: deployment '{deployment.name}' run '{run.name}' ended {state.name}"
        f"{': ' + state.message if state.message else ''}"
    )
    return {
        "text": text,
        "deployment": deployment.name,
        "flow_run_id": run.id,
        "flow_run_name": run.name,
        "state": state.name,
        "state_type": state.type.value,
        "message": state.message,
        "output": str(output) if output.exists() else None,
    }


@dataclass(eq=False)
class Delivery:
    """One webhook call, under way or finished.

    Attributes
    ----------
    url
        Where the notification is posted.
    deadline_s
        Seconds the whole call may take.
    sent
        ``True`` when the receiver answered 2xx, ``False`` when the call failed,
        ``None`` while it is under way.
    detail
        The answer (``HTTP 200 OK in 0.01 s``) or why it failed, on one line.
    finished
        Set once the outcome is known and journaled.
    """

    url: str
    deadline_s: float
    sent: bool | None = None
    detail: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the outcome is recorded; False if ``timeout`` passed first."""
        return self.finished.wait(timeout)


_pending: set[Delivery] = set()
_pending_lock = threading.Lock()


def notify_run(
    deployment: Any, run: Any, state: Any, *, deadline_s: float | None = None
) -> list[Delivery]:
    """POST :func:`payload` to each of the deployment's ``notify`` URLs, in the background.

    Returns at once; never raises for a receiver's sake. Each outcome is
    journaled on the run (see the module docstring).

    Parameters
    ----------
    deployment, run, state
        The deployment, its flow run and the state the run ended in.
    deadline_s
        Seconds each call may take in all (default :data:`DEADLINE_S`).

    Returns
    -------
    list of Delivery
        One per URL, to wait on (tests, and callers that must know).
    """
    body = json.dumps(payload(deployment, run, state)).encode()
    limit = DEADLINE_S if deadline_s is None else float(deadline_s)
    deliveries = []
    for url in deployment.notify:
        delivery = Delivery(url=str(url), deadline_s=limit)
        with _pending_lock:
            _pending.add(delivery)
        # Not a daemon: the process waits for it at exit, and it ends by its deadline.
        threading.Thread(
            target=_deliver,
            args=(delivery, body, run, state.name),
            name="kernelflow-webhook",
            daemon=False,
        ).start()
        deliveries.append(delivery)
    return deliveries


def wait_for_deliveries(timeout: float | None = None) -> bool:
    """Wait for every webhook call this process started; False if ``timeout`` passed first."""
    end = None if timeout is None else time.monotonic() + timeout
    with _pending_lock:
        pending = list(_pending)
    for delivery in pending:
        left = None if end is None else max(0.0, end - time.monotonic())
        if not delivery.wait(left):
            return False
    return True


class _Call:
    """The HTTP exchange of one delivery, run on a daemon thread so it can be abandoned."""

    def __init__(self, url: str, body: bytes, deadline: float) -> None:
        self.url = url
        self.body = body
        self.deadline = deadline
        self.sent = False
        self.detail = "not started"
        self._connection: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._aborted = False

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.sent, self.detail = self._exchange()
        except Exception as exc:  # every failure is an outcome; recorded by _deliver
            self.sent, self.detail = False, _reason(exc, self.deadline, started)
        finally:
            self._close()

    def abort(self) -> None:
        """Stop the exchange now: a blocked read or write returns at once."""
        with self._lock:
            self._aborted = True
            connection = self._connection
        sock = connection.sock if connection is not None else None
        if sock is not None:
            try:
                # shutdown, not close: it wakes a recv blocked in the other thread.
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed

    def _exchange(self) -> tuple[bool, str]:
        started = time.monotonic()
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False, "not an http(s) URL"
        kind = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = kind(parts.hostname, parts.port, timeout=self._left())
        with self._lock:
            if self._aborted:
                return False, "the deadline passed before connecting"
            self._connection = connection
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        from kernelflow import __version__

        connection.request(
            "POST",
            target,
            body=self.body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": f"kernelflow/{__version__}",
            },
        )
        # Only the status and headers: the body is the receiver's business.
        response = connection.getresponse()
        status, reason = response.status, " ".join(str(response.reason).split())
        location = response.getheader("Location")
        answer = f"HTTP {status} {reason}".rstrip()
        if 200 <= status < 300:
            return True, f"{answer} in {time.monotonic() - started:.2f} s"
        if 300 <= status < 400:
            where = f" to {_one_line(location)}" if location else ""
            return False, (
                f"{answer}: a redirect{where}, not followed (set the webhook's final URL)"
            )
        return False, answer

    def _left(self) -> float:
        return max(0.01, self.deadline - time.monotonic())

    def _close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def _deliver(delivery: Delivery, body: bytes, run: Any, state_name: str) -> None:
    """Run one call against its deadline, then journal its outcome (the thread's target)."""
    deadline = time.monotonic() + delivery.deadline_s
    call = _Call(delivery.url, body, deadline)
    worker = threading.Thread(target=call.run, name="kernelflow-webhook-call", daemon=True)
    try:
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            call.abort()
            delivery.sent = False
            delivery.detail = _deadline_reason(delivery.deadline_s)
        else:
            delivery.sent, delivery.detail = call.sent, _one_line(call.detail)
        _record(delivery, run, state_name)
    except Exception as exc:  # a bug here must still end the delivery; recorded below
        delivery.sent = False
        delivery.detail = _one_line(f"{type(exc).__name__}: {exc}")
        logging.getLogger(OUTCOME_LOGGER).warning(
            "Webhook to %s failed: %s", delivery.url, delivery.detail
        )
    finally:
        delivery.finished.set()
        with _pending_lock:
            _pending.discard(delivery)


def _record(delivery: Delivery, run: Any, state_name: str) -> None:
    """Journal the outcome on the run, and tell the console."""
    from kernelflow.logs import run_logger
    from kernelflow.store.events import log_record
    from kernelflow.store.journal import record

    # No whitespace in the URL, so the webhooks view can split the line.
    url = re.sub(r"\s", lambda m: urllib.parse.quote(m.group()), delivery.url)
    outcome = "sent" if delivery.sent else "failed"
    message = f"Webhook to {url} {outcome}: {delivery.detail}"
    level = logging.INFO if delivery.sent else logging.WARNING
    # Written to the journal directly, whatever KERNELFLOW_LOGGING_LEVEL filters:
    # the outcome is a record of the run, not chatter.
    record(
        log_record(
            run_id=run.id,
            kind="flow",
            level=level,
            logger=OUTCOME_LOGGER,
            message=message,
            t=time.time(),
        )
    )
    log = run_logger("flow", run, "kernelflow.deployments")
    log.log(level, "%s (run ended %s)", message, state_name, extra={"journal": False})


def _reason(exc: BaseException, deadline: float, started: float) -> str:
    """Why a call failed, on one line, in words a user can act on."""
    if isinstance(exc, TimeoutError) or (isinstance(exc, OSError) and time.monotonic() >= deadline):
        return _deadline_reason(deadline - started)
    if isinstance(exc, http.client.BadStatusLine) and not isinstance(
        exc, http.client.RemoteDisconnected
    ):
        return f"the answer is not HTTP (BadStatusLine: {_one_line(repr(exc.args[0]), 80)})"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(exc, http.client.HTTPException):
        return f"the answer is not valid HTTP ({type(exc).__name__}: {exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the receiver running at that address?)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror or exc})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    if isinstance(exc, OSError):
        return f"network error ({exc.strerror or exc})"
    return f"{type(exc).__name__}: {exc}"


def _deadline_reason(seconds: float) -> str:
    return f"no complete answer within the {seconds:g} s deadline"


def _one_line(text: object, limit: int = _MAX_DETAIL) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
