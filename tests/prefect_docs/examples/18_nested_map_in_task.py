"""Mapping tasks from inside a task.

Page: docs/v3/how-to-guides/workflows/run-work-concurrently.mdx (PrefectHQ/prefect
at dda3bd0b22d88b4358981c5ee83c5a936539271e), "Nested mapped tasks".
Scenario: a task turns two plain functions (count words, find e-mail
addresses) into tasks on the fly and maps each over a batch of posts, waits
for all of them and returns the results by function; the flow prints them.
Nothing replaced (the posts are made up).
Re-written for this test from the page's description, not copied.
"""

import re

from prefect import flow, task
from prefect.futures import wait


def count_words(text: str) -> int:
    return len(text.split())


def extract_emails(text: str) -> list[str]:
    return re.findall(r"[\w.+-]+@[\w-]+\.[\w.-]+", text)


@task
def analyze_texts(texts: list[str]) -> dict:
    futures = {op.__name__: task(op).map(texts) for op in [count_words, extract_emails]}
    wait([f for group in futures.values() for f in group])
    return {name: [f.result() for f in group] for name, group in futures.items()}


@flow
def run_text_analysis() -> dict:
    results = analyze_texts(
        texts=[
            "Back from #Lisbon! Write to traveller@example.com #trip",
            "New #project started, questions to dev@example.org please",
            "Team offsite #fun with everyone, rsvp: events@company.net",
        ]
    )
    print("Word counts:", results["count_words"])
    print("Extracted emails:", results["extract_emails"])
    return results


if __name__ == "__main__":
    run_text_analysis()
