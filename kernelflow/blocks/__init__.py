"""Blocks, under Prefect's module path (``prefect.blocks`` -> ``kernelflow.blocks``).

kernelflow has one block type, :class:`~kernelflow.blocks.system.Secret`:

>>> from kernelflow.blocks.system import Secret
>>> Secret(value="sk-1234").save("openai-key", overwrite=True)  # doctest: +SKIP
>>> Secret.load("openai-key").get()  # doctest: +SKIP
'sk-1234'

Prefect's other blocks (credentials, storage, notifications) configure
Prefect's servers and workers, which kernelflow does without.
"""

from __future__ import annotations

from kernelflow.blocks.system import Secret

__all__ = ["Secret"]
