"""Quickstart: a script becomes a workflow by decorating its functions.

Page: docs/v3/get-started/quickstart.mdx (PrefectHQ/prefect at
0945b9214065d33c00079d433ef556fab0b9845b), "Convert your script to a Prefect workflow".
Scenario: a flow with ``log_prints=True`` walks a list of GitHub repositories; for
each it calls one task that fetches the repository's statistics and one that
reads the star count out of them, and prints "<repo>: <n> stars".
Replaced: the GitHub API request with a lookup in a local table of made-up
statistics (no network; the same numbers every run).
Re-written for this test from the page's description, not copied.
"""

from prefect import flow, task

# Stands in for https://api.github.com/repos/<owner>/<name>.
LOCAL_API = {
    "PrefectHQ/prefect": {"full_name": "PrefectHQ/prefect", "stargazers_count": 17318},
    "pydantic/pydantic": {"full_name": "pydantic/pydantic", "stargazers_count": 21990},
    "huggingface/transformers": {
        "full_name": "huggingface/transformers",
        "stargazers_count": 134848,
    },
}


@flow(log_prints=True)
def show_stars(github_repos: list[str]):
    """Print how many stars each repository has."""
    for repo in github_repos:
        stats = fetch_stats(repo)
        stars = get_stars(stats)
        print(f"{repo}: {stars} stars")


@task
def fetch_stats(github_repo: str) -> dict:
    """The repository's statistics, as the API would answer."""
    return dict(LOCAL_API[github_repo])


@task
def get_stars(repo_stats: dict) -> int:
    """The star count out of a statistics record."""
    return repo_stats["stargazers_count"]


if __name__ == "__main__":
    show_stars(["PrefectHQ/prefect", "pydantic/pydantic", "huggingface/transformers"])
    print("done")
