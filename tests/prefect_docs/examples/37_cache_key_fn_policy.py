"""Caching a task whose input cannot be pickled.

Page: docs/v3/advanced/caching.mdx (PrefectHQ/prefect at
01cbd960cc256f2edd918432d5698875155f1801), "Handling Non-Serializable Objects".
Scenario: a pydantic model holds an object that refuses to be pickled. One
task is cached with ``CacheKeyFnPolicy`` (key: the model's name) ``+ RUN_ID``,
another with ``INPUTS + RUN_ID`` where the model serialises only its name;
each is called twice in a flow: Completed, then Cached.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task
from prefect.cache_policies import INPUTS, RUN_ID, CacheKeyFnPolicy
from pydantic import BaseModel, ConfigDict, model_serializer


class NotSerializable:
    def __getstate__(self):
        raise TypeError("I will not be serialized!")


class Holder(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str
    bad_object: NotSerializable


class PoliteHolder(Holder):
    @model_serializer
    def only_the_name(self) -> dict:
        return {"name": self.name}


def key_from_name(context, parameters) -> str:
    return parameters["some_object"].name


@task(cache_policy=CacheKeyFnPolicy(cache_key_fn=key_from_name) + RUN_ID)
def use_object(some_object: Holder) -> str:
    return f"Used {some_object.name}"


@task(cache_policy=INPUTS + RUN_ID)
def use_polite_object(some_object: PoliteHolder) -> str:
    return f"Used {some_object.name} politely"


@flow
def demo_flow() -> None:
    plain = Holder(name="test", bad_object=NotSerializable())
    polite = PoliteHolder(name="test", bad_object=NotSerializable())
    for t, obj in ((use_object, plain), (use_polite_object, polite)):
        first = t(obj, return_state=True)
        second = t(obj, return_state=True)
        print(first.name, second.name, first.result() == second.result(), second.result())


if __name__ == "__main__":
    demo_flow()
