"""Helpers shared by the engine's tests (``tests/engine/``)."""

from __future__ import annotations

import re
import time

from kernelflow import task


def logged(err: str, who: str | None = None) -> list[str]:
    """Messages of console log lines in ``err`` (optionally of one run label)."""
    out = []
    for line in err.splitlines():
        m = re.match(r"^\d\d:\d\d:\d\d\.\d{3} \| [A-Z]+ +\| (.+?) - (.*)$", line)
        if m and (who is None or m[1] == who):
            out.append(m[2])
    return out


def retry_delays(err: str) -> list[str]:
    """The delays of Prefect's "Retry n/m will start <delay> second(s) from now" lines."""
    return re.findall(r" - Retry \d+/\d+ will start (\S+) second\(s\) from now", err)


class Flaky:
    """A callable that raises the given exceptions in turn, then returns ``value``."""

    def __init__(self, *errors: BaseException, value: object = "ok") -> None:
        self.errors = list(errors)
        self.value = value
        self.calls: list[float] = []

    def __call__(self) -> object:
        self.calls.append(time.monotonic())
        if self.errors:
            raise self.errors.pop(0)
        return self.value

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.calls, self.calls[1:], strict=False)]


@task
def square_task(x):
    return x * x
