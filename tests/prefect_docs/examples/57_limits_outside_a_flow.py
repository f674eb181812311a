"""``rate_limit`` and ``concurrency`` outside any flow, in asyncio code.

Page: docs/v3/how-to-guides/workflows/global-concurrency-limits.mdx
(PrefectHQ/prefect at 043ec3a46cec4059d4a4bbebfc2edd00ce16712f), "Use
concurrency and rate_limit outside of a flow" and "Parallel data processing".
Scenario: an asyncio program awaits ``rate_limit`` before each of three
requests; then it processes ten items in chunks of five, each chunk inside a
sync ``concurrency("data-processing", occupy=5)`` block, gathered with
asyncio. Neither limit exists.
Replaced: requests with prints. Shortened: ten items (the page: 100) and
0.01 s of work each (the page: 1 s).
Re-written for this test from the page's description, not copied.
"""

import asyncio

from prefect.concurrency.asyncio import rate_limit
from prefect.concurrency.sync import concurrency


async def process_data(data: int) -> str:
    await asyncio.sleep(0.01)
    return f"Processed: {data}"


async def main() -> None:
    for _ in range(3):
        await rate_limit("rate-limited-api")
        print("Making an HTTP request...")
    items = list(range(10))
    processed = []
    while items:
        with concurrency("data-processing", occupy=5):
            chunk = [items.pop() for _ in range(5)]
            processed += await asyncio.gather(*[process_data(item) for item in chunk])
    print(sorted(processed))


if __name__ == "__main__":
    asyncio.run(main())
