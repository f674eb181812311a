"""Flows defined as instance, class and static methods.

Page: docs/v3/how-to-guides/workflows/write-and-run.mdx (PrefectHQ/prefect at
cf898f1f4c7f91fee66fe4b14a937817434fe2bf), "Define a workflow".
Scenario: a class holds three flows, one bound to the instance, one a
classmethod and one a staticmethod; each is called and its value printed.
Nothing replaced.
Re-written for this test from the page's description, not copied.
"""

from prefect import flow


class Greeter:
    greeting = "Hello"

    def __init__(self, who: str) -> None:
        self.who = who

    @flow
    def from_instance(self) -> str:
        return f"{self.greeting} from an instance method, {self.who}!"

    @flow
    @classmethod
    def from_class(cls) -> str:
        return f"{cls.greeting} from a class method!"

    @flow
    @staticmethod
    def from_static() -> str:
        return "Hello from a static method!"


if __name__ == "__main__":
    print(Greeter("Arthur").from_instance())
    print(Greeter.from_class())
    print(Greeter.from_static())
