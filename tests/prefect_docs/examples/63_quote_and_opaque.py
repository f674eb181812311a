"""How task parameters are resolved: rebuilt dataclasses, ``quote`` and ``opaque``.

Page: docs/v3/concepts/tasks.mdx (PrefectHQ/prefect at
0260f0cd6a9ab3664390b18426004fd538d54e85), "Parameter resolution".
Scenario: a dataclass holding a future is rebuilt when the future is resolved
(its ``__post_init__`` runs again); wrapped in ``quote`` it reaches the task
untouched; a submitted task's future wrapped in ``opaque`` is resolved without
rebuilding what it returns. Each step prints what the task saw and how many
times ``__post_init__`` ran.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from dataclasses import dataclass

from prefect import flow, task
from prefect.utilities.annotations import opaque, quote

inits = {"count": 0}


@dataclass
class Pipeline:
    base_rate: float
    adjusted_rate: float | None = None

    def __post_init__(self):
        inits["count"] += 1
        if self.adjusted_rate is None:
            self.adjusted_rate = self.base_rate * 1.5


@task
def get_rate() -> float:
    return 100.0


@task
def run_pipeline(pipeline: Pipeline) -> str:
    return f"adjusted_rate = {pipeline.adjusted_rate} after {inits['count']} inits"


@task
def build_pipeline(base_rate: float) -> Pipeline:
    return Pipeline(base_rate=base_rate)


@flow
def resolved() -> str:
    rate = get_rate.submit()
    return run_pipeline(Pipeline(base_rate=42.0, adjusted_rate=rate))


@flow
def quoted() -> str:
    return run_pipeline(quote(Pipeline(base_rate=100.0)))


@flow
def opaque_future() -> str:
    return run_pipeline.submit(opaque(build_pipeline.submit(10.0))).result()


if __name__ == "__main__":
    for f in (resolved, quoted, opaque_future):
        inits["count"] = 0
        print(f"{f.name}: {f()}")
