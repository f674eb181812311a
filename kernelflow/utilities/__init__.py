"""Utilities with Prefect's module paths (``prefect.utilities.*`` -> ``kernelflow.utilities.*``).

Only :mod:`kernelflow.utilities.annotations` lives here so far.
"""

__all__: list[str] = []
