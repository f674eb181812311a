"""Child processes for the reliability tests of concurrency limits.

``python limit_hammer.py hammer NAME SECONDS OUT``: enter ``concurrency(NAME)``
again and again for SECONDS, appending ``enter exit`` (monotonic ns, which all
processes of the machine share) of each stay inside to OUT.

``python limit_hammer.py hold NAME``: take one slot, print ``held``, then sleep
until killed.

``python limit_hammer.py tagged TAG N OUT``: run a flow mapping N tasks tagged
TAG, each appending its ``enter exit`` to OUT.
"""

from __future__ import annotations

import os
import random
import sys
import time


def hammer(name: str, seconds: float, out: str) -> None:
    from kernelflow.concurrency.sync import concurrency

    lines = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with concurrency(name, occupy=1):
            enter = time.monotonic_ns()
            time.sleep(random.uniform(0, 0.002))
            leave = time.monotonic_ns()
        lines.append(f"{enter} {leave}\n")
    with open(out, "a") as fh:
        fh.writelines(lines)
    print(len(lines))


def hold(name: str) -> None:
    from kernelflow.concurrency.sync import concurrency

    with concurrency(name):
        print("held", flush=True)
        time.sleep(120)


def tagged(tag: str, count: int, out: str) -> None:
    from kernelflow import flow, task

    @task(tags=[tag])
    def step(i: int) -> int:
        enter = time.monotonic_ns()
        time.sleep(0.03)
        leave = time.monotonic_ns()
        with open(out, "a") as fh:
            fh.write(f"{enter} {leave} {os.getpid()}\n")
        return i

    @flow
    def fan_out() -> list:
        return step.map(range(count)).result()

    assert fan_out() == list(range(count))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "hammer":
        hammer(args[0], float(args[1]), args[2])
    elif command == "hold":
        hold(args[0])
    elif command == "tagged":
        tagged(args[0], int(args[1]), args[2])
    else:
        raise SystemExit(f"unknown command {command}")
