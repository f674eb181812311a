"""The resume channel: how a paused flow run hears, from any process, that it may go on.

``pause_flow_run`` blocks the thread that called it. Whoever resumes the run
(``kernelflow flow-run resume``, or ``resume_flow_run`` in another process or
thread) talks to it through small files in the store home::

    resume/<flow_run_id>/pause.json          the pause: who waits, for what, until when
    resume/<flow_run_id>/<n>.request.json    a resume request: the input and who sent it
    resume/<flow_run_id>/<n>.reply.json      the paused process's answer to request <n>

Every file is written whole with :func:`~kernelflow.settings.write_private`
(a rename, mode 0600) in private directories, so a reader never sees half a file.

The paused process (the *waiter*) alone decides. It lists its directory every
0.2 s (microseconds), claims each request by renaming it, validates the input
with the model it waits for (only it has that model: it may be defined in a
notebook), then answers: resumed, or why not. Bad input is thus refused with
the name of the field and the run stays paused, and of two resumers exactly one
wins. A resumer that gets no answer in time retracts its request by deleting
it; a delete and a claim cannot both succeed, so a retracted request can never
resume a later pause.

Why files and not the journal: the journal reaches DuckDB through compaction,
so the waiter would have to query the database (tens of milliseconds, under a
lock) to see a resume; listing a directory costs microseconds and needs no
lock. The state changes themselves (Paused, then Running) go through the
engine's ``set_state`` and the journal like every transition.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from kernelflow.errors import (
    FlowPauseTimeout,
    NotPausedError,
    PauseError,
    RunInputError,
    RunNotFoundError,
)
from kernelflow.settings import paths, write_private

__all__ = [
    "Mailbox",
    "PauseRecord",
    "Request",
    "explain_not_waiting",
    "find_pause",
    "resume_root",
    "send_resume",
]

#: How often the waiter looks for requests (seconds), whatever ``poll_interval`` says.
POLL_SECONDS = 0.2
#: How long a resumer waits for the paused process to answer.
ANSWER_SECONDS = 10.0

_PAUSE = "pause.json"
_REQUEST = ".request.json"
_CLAIMED = ".claimed"
_REPLY = ".reply.json"

#: Answers a waiter gives (the ``status`` of a reply).
RESUMED, INVALID, NOT_PAUSED, TIMED_OUT = "resumed", "invalid", "not_paused", "timed_out"


def resume_root() -> Path:
    """The directory of the resume channels of the active store."""
    return paths().home / "resume"


def _channel(flow_run_id: str) -> Path:
    return resume_root() / flow_run_id


@dataclass(frozen=True)
class PauseRecord:
    """What ``pause.json`` says about a waiting pause.

    Attributes
    ----------
    flow_run_id, flow_run_name, flow_name
        The paused run.
    state_name
        ``Paused`` or ``Suspended``.
    key
        The pause key (``pause_flow_run(key=...)``, else its count in the run).
    deadline
        Epoch seconds after which the pause no longer accepts a resume; None: never.
    schema
        JSON schema of the input model; None when the pause waits for no input.
    model_name
        The input model's class name (None without input).
    host, pid, start_ticks, boot_id
        The paused process, to tell whether it is still there.
    """

    flow_run_id: str
    flow_run_name: str
    flow_name: str
    state_name: str
    key: str
    deadline: float | None
    schema: dict | None
    model_name: str | None
    host: str
    pid: int
    start_ticks: int
    boot_id: str
    started: float = field(default_factory=time.time)

    @property
    def fields(self) -> list[str]:
        """The input's field names (required ones first)."""
        if not self.schema:
            return []
        names = list(self.schema.get("properties", {}))
        required = set(self.schema.get("required", []))
        return [n for n in names if n in required] + [n for n in names if n not in required]

    def label(self) -> str:
        """``'name' (id)``, for messages."""
        return f"'{self.flow_run_name}' ({self.flow_run_id})"


@dataclass(frozen=True)
class Request:
    """One resume request, as the waiter claimed it."""

    name: str
    run_input: Any
    sender: str


class Mailbox:
    """The waiter's side of one pause's channel.

    Parameters
    ----------
    record
        The pause, written to ``pause.json`` by :meth:`open`.
    """

    def __init__(self, record: PauseRecord) -> None:
        self.record = record
        self.directory = _channel(record.flow_run_id)

    def open(self) -> None:
        """Create the channel and announce the pause (``pause.json``)."""
        store = paths()
        store.ensure(resume_root(), self.directory)
        # A request meant for an earlier pause of this run must not resume this one.
        for request in self.requests():
            self.answer(request, NOT_PAUSED, "The pause this resume was sent to had ended.")
        write_private(self.directory / _PAUSE, json.dumps(asdict(self.record)).encode())

    def requests(self) -> list[Request]:
        """Claim the requests waiting, oldest first (each is claimed once, by us)."""
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(_REQUEST))
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            stem = name[: -len(_REQUEST)]
            claimed = self.directory / f"{stem}{_CLAIMED}"
            try:
                os.rename(self.directory / name, claimed)
            except FileNotFoundError:
                continue  # retracted by its sender meanwhile
            try:
                data = json.loads(claimed.read_bytes())
                found.append(Request(stem, data.get("run_input"), str(data.get("sender"))))
            except (OSError, ValueError, AttributeError):
                self.answer(Request(stem, None, ""), INVALID, "The resume request is unreadable.")
            finally:
                _unlink(claimed)
        return found

    def answer(self, request: Request, status: str, message: str | None = None) -> None:
        """Tell the sender of ``request`` how it went."""
        reply = json.dumps({"status": status, "message": message}).encode()
        try:
            write_private(self.directory / f"{request.name}{_REPLY}", reply)
        except OSError:
            pass  # the sender gave up and removed the channel: nobody to tell

    def close(self, status: str, message: str) -> None:
        """End the pause: answer the requests still waiting with ``status``, remove the channel.

        ``pause.json`` goes first, so a resumer that finds it missing knows the
        pause is over; a request sent after the last sweep below is retracted by
        its sender, which sees ``pause.json`` gone.
        """
        _unlink(self.directory / _PAUSE)
        for request in self.requests():
            self.answer(request, status, message)
        _remove_if_empty(self.directory)


def find_pause(flow_run_id: str) -> PauseRecord | None:
    """The pause of the flow run with this id (or unique id prefix), if one waits.

    Raises
    ------
    RunNotFoundError
        Several waiting pauses have ids starting with ``flow_run_id``.
    """
    prefix = str(flow_run_id)
    root = resume_root()
    try:
        names = os.listdir(root)
    except (FileNotFoundError, NotADirectoryError):
        return None
    matches = sorted(n for n in names if n.startswith(prefix) and (root / n / _PAUSE).exists())
    if prefix in matches:
        matches = [prefix]
    if len(matches) > 1:
        raise RunNotFoundError(
            f"Several paused flow runs have ids starting with {prefix!r}; give more characters "
            "(see `kernelflow runs ls --state Paused`)."
        )
    if not matches:
        return None
    try:
        data = json.loads((root / matches[0] / _PAUSE).read_bytes())
        return PauseRecord(**data)
    except FileNotFoundError:
        return None  # the pause ended this very moment
    except (OSError, ValueError, TypeError):
        raise PauseError(
            f"The pause of flow run {matches[0]} cannot be read ({root / matches[0] / _PAUSE}); "
            "it was written by another kernelflow version, or damaged."
        ) from None


def explain_not_waiting(flow_run_id: str) -> NoReturn:
    """Raise the error for a run that no pause waits for: unknown, not paused, or expired.

    Raises
    ------
    RunNotFoundError
        No flow run has this id (prefix).
    FlowPauseTimeout
        The store shows the run paused, but nothing waits for its resume any more.
    NotPausedError
        The run is in another state.
    """
    from kernelflow.store.queries import get_flow_run

    run = get_flow_run(str(flow_run_id)).iloc[0]
    label = f"'{run['name']}' ({run['id']})"
    if str(run["state_type"]) == "PAUSED":
        raise FlowPauseTimeout(
            f"Flow run {label} can no longer be resumed: nothing waits for it any more "
            "(its pause timed out, or the process that paused it ended)."
        )
    raise NotPausedError(
        f"Flow run {label} is {run['state_name']}, not paused; only a paused run can be "
        "resumed (see `kernelflow runs ls --state Paused`)."
    )


def send_resume(
    record: PauseRecord,
    run_input: Any,
    sender: str,
    answer_seconds: float = ANSWER_SECONDS,
) -> None:
    """Ask the paused run of ``record`` to resume with ``run_input``; return once it has.

    Parameters
    ----------
    record
        The pause, from :func:`find_pause`.
    run_input
        Field name -> value (validated by the paused process), or None.
    sender
        Who resumes, for the Running state's message (``kernelflow flow-run resume``).
    answer_seconds
        How long to wait for the paused process to answer.

    Raises
    ------
    RunInputError
        The input does not fit the model the run waits for; it stays paused.
    NotPausedError
        The pause ended before the request was taken (resumed by someone else).
    FlowPauseTimeout
        The pause timed out.
    PauseError
        The paused process is gone, or did not answer in time.
    """
    from kernelflow.store.journal import process_is_alive

    directory = _channel(record.flow_run_id)
    label = record.label()
    if record.deadline is not None and time.time() > record.deadline:
        raise FlowPauseTimeout(f"Flow run {label} can no longer be resumed: its pause timed out.")
    alive = process_is_alive(record.host, record.pid, record.start_ticks, record.boot_id)
    if alive is False:
        shutil.rmtree(directory, ignore_errors=True)  # nobody will ever read it
        raise PauseError(
            f"Flow run {label} cannot be resumed: the process that paused it (pid "
            f"{record.pid}) has ended."
        )
    stem = f"{time.time_ns():020d}-{os.urandom(4).hex()}"
    request = directory / f"{stem}{_REQUEST}"
    reply = directory / f"{stem}{_REPLY}"
    body = {"run_input": run_input, "sender": sender, "t": time.time()}
    try:
        write_private(request, json.dumps(body, default=str).encode())
    except FileNotFoundError:
        raise NotPausedError(f"Flow run {label} is not paused any more.") from None
    deadline = time.monotonic() + answer_seconds
    claimed = False
    while True:
        answer = _read_reply(reply)
        if answer is not None:
            break
        if not claimed and not (directory / _PAUSE).exists():
            # The pause ended; if the request is still ours, nobody will take it.
            if _retract(request):
                raise NotPausedError(f"Flow run {label} is not paused any more.")
            claimed = True
        if time.monotonic() > deadline:
            if not claimed and _retract(request):
                raise PauseError(
                    f"Flow run {label} did not answer the resume within {answer_seconds:g} s; "
                    f"is the process that paused it (pid {record.pid}) busy? Try again."
                )
            claimed = True
            if time.monotonic() > deadline + answer_seconds:
                raise PauseError(
                    f"Flow run {label} took the resume request but did not answer within "
                    f"{2 * answer_seconds:g} s; see `kernelflow runs show {record.flow_run_id}`."
                )
        time.sleep(0.02)
    _unlink(reply)
    _remove_if_empty(directory)
    status, message = answer.get("status"), answer.get("message") or ""
    if status == RESUMED:
        return
    if status == INVALID:
        raise RunInputError(message)
    if status == TIMED_OUT:
        raise FlowPauseTimeout(message or f"Flow run {label} can no longer be resumed.")
    raise NotPausedError(message or f"Flow run {label} is not paused any more.")


def _read_reply(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"status": NOT_PAUSED, "message": "The paused run's answer was unreadable."}
    return data if isinstance(data, dict) else None


def _retract(request: Path) -> bool:
    """Delete our request; False when the waiter claimed it first."""
    try:
        os.unlink(request)
    except FileNotFoundError:
        return False
    return True


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _remove_if_empty(directory: Path) -> None:
    try:
        os.rmdir(directory)
    except OSError:
        pass  # not empty (a reply not read yet, a request in flight) or gone already
