"""Async tasks run concurrently with ``asyncio.gather``.

Page: docs/v3/how-to-guides/workflows/run-work-concurrently.mdx (PrefectHQ/prefect
at dda3bd0b22d88b4358981c5ee83c5a936539271e), "Using asyncio".
Scenario: an async flow gathers one async task per floor; each says it moves,
sleeps in proportion to the floor and says it stops; the program runs the
flow with ``asyncio.run`` and prints the floors it got back.
Shortened: five floors, 0.05 s a floor (the page: ten floors, 1 s a floor).
Changed: the tasks log their prints (``log_prints=True``) instead of writing
to stdout, where concurrent tasks' lines interleave differently each run.
Re-written for this test from the page's description, not copied.
"""

import asyncio

from prefect import flow, task


@task(log_prints=True)
async def stop_at_floor(floor: int) -> int:
    print(f"elevator moving to floor {floor}")
    await asyncio.sleep(floor * 0.05)
    print(f"elevator stops on floor {floor}")
    return floor


@flow
async def elevator() -> list[int]:
    floors = list(range(5, 0, -1))
    return await asyncio.gather(*[stop_at_floor(floor) for floor in floors])


if __name__ == "__main__":
    print(asyncio.run(elevator()))
