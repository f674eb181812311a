"""Prefect's module name for task runners: ``from kernelflow.task_runners import ...``."""

from kernelflow.runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

__all__ = ["ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"]
