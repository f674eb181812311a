"""Running one ``%%task`` cell as a kernelflow task run.

The cell body becomes the function of a private :class:`~kernelflow.tasks.Task`
and runs through the engine like any task, so states, retries, timeouts, the
journal, hooks and listeners (widgets) behave as everywhere else. The body runs
in the notebook's namespace, as a normal cell would: the same names are defined
afterwards, and the value of a final expression is the cell's ``Out``.

Caching. The task's cache policy keys on the cell's :class:`~kernelflow.kernel.why.KeyParts`
(normalised code, input value hashes by name, helper, module, library and file
hashes); the engine looks the key up, the policy refuses an entry made in
another global state (see :mod:`.hidden_state`), and the engine records the
``Cached`` state. On a miss, the inputs' parts are mapped before the body runs,
every keyed input is hashed again after it, and the outputs plus the inputs it
changed in place are saved as one bundle (see :mod:`.bundle`) while the cell
returns; the entry's files are written by
:class:`~kernelflow.kernel.writer.BackgroundWriter`. On a hit the changed
inputs are updated in place, the outputs are loaded back into the namespace,
the global state is left as running would have, the recorded output (text,
HTML, images) is replayed, and one line says so. What cannot be hashed or
restored faithfully leaves the cell uncached, with one
:class:`~kernelflow.errors.CacheWarning` naming it. Why it is built this way,
with measurements: ``docs/decisions/task-cell-caching.md``.

Lineage. The task run records its inputs (name, value hash, and the task run
of the cell that produced that value) and its outputs (name, value hash), in
the journal's ``task_run`` and ``outputs`` events.

This module runs the cell; :mod:`.cell_cache` holds the cache decision (the
key's inputs, the policy, what a run saves and why one is not cached) and
:mod:`.cell_display` what the user sees around the run (figures, ``Out[]``,
restored names, errors).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from typing import Any

from kernelflow.kernel import hidden_state
from kernelflow.kernel.bundle import map_parts
from kernelflow.kernel.cell_cache import (
    _CellPolicy,
    _Inputs,
    _miss_reasons,
    _problems,
    _save_run,
    _warn_uncached,
)
from kernelflow.kernel.cell_display import (
    _assign,
    _figures_left_closed,
    _open_figures,
    _print_verbose,
    _QuietCellLogs,
    _reuse_format,
    _shows_image,
    _user_error,
)
from kernelflow.kernel.cells import CellAnalysis, default_name
from kernelflow.kernel.files import path_value, restore_written
from kernelflow.kernel.lineage import CellRecord, Lineage
from kernelflow.kernel.options import CellOptions
from kernelflow.kernel.outputs import (
    HIDDEN_NAMES,
    ReplayedResult,
    load_outputs,
    make_manifest,
    render_cached_line,
    type_name,
)
from kernelflow.kernel.prepare import PreparedCell, execute, prepare
from kernelflow.kernel.replay import OutputRecorder, after_cell, inline_figures_active, replay
from kernelflow.kernel.session import NotebookSession
from kernelflow.kernel.why import KeyParts, history_append, history_latest
from kernelflow.kernel.writer import BackgroundWriter

__all__ = ["CellRunner"]


class CellRunner:
    """Runs ``%%task`` cells of one shell; holds the session run and the lineage.

    Parameters
    ----------
    shell
        The IPython shell.
    session
        The notebook session (its flow run is the parent of every cell run).
    """

    def __init__(self, shell: Any, session: NotebookSession) -> None:
        self.shell = shell
        self.session = session
        self.lineage = Lineage()
        self.writer = BackgroundWriter()
        # Per cell: the key parts of its newest cached run (None: none recorded).
        self._last_cached: dict[str, dict[str, Any] | None] = {}
        self._log_filter = _QuietCellLogs()
        logging.getLogger("kernelflow.runs.task").addFilter(self._log_filter)

    def close(self) -> None:
        """Finish pending cache writes; stop quieting the engine's log lines."""
        self.writer.close()
        logging.getLogger("kernelflow.runs.task").removeFilter(self._log_filter)

    def last_cached(self, name: str) -> dict[str, Any] | None:
        """The newest cached run of cell ``name``: ``key``, ``parts``, ``t`` (or None)."""
        if name not in self._last_cached:
            self._last_cached[name] = history_latest(self.session.name, name)
        return self._last_cached[name]

    # --- inputs ----------------------------------------------------------------------
    def namespace_inputs(self, analysis: CellAnalysis) -> list[str]:
        """The names the cell reads that exist in the namespace now (IPython's own left out)."""
        ns = self.shell.user_ns
        hidden = self.shell.user_ns_hidden
        found = []
        for name in analysis.reads:
            if name not in ns or HIDDEN_NAMES.match(name):
                continue
            if name in hidden and hidden[name] is ns[name]:
                continue
            found.append(name)
        return found

    def hash_inputs(self, prepared: PreparedCell, options: CellOptions) -> _Inputs:
        """Hash what the cell reads: values, helpers, modules, libraries and files.

        Never raises for a value: one that cannot be hashed is listed in
        ``unhashable`` (the cell then runs uncached, saying so).
        """
        from kernelflow.hashing import hash_value
        from kernelflow.kernel.dependencies import find_dependencies
        from kernelflow.kernel.files import file_digest

        ns = self.shell.user_ns
        analysis = prepared.analysis
        deps = find_dependencies(self.namespace_inputs(analysis), ns, analysis.attributes)
        excluded = set(options.exclude)
        found = _Inputs(parts=KeyParts(code=analysis.code_hash, source=prepared.body))
        parts, hashes = found.parts, found.hashes
        for name, value in deps.data.items():
            if name in excluded:
                hashes[name] = None
                continue
            try:
                digest = hash_value(value, name=name)
            except Exception:  # HashingError, or a value whose pickling raises
                via = f", read by '{deps.via[name]}'" if name in deps.via else ""
                found.unhashable[name] = f"{type_name(value)}{via}"
                hashes[name] = None
                continue
            parts.inputs[name] = digest
            hashes[name] = digest
            found.values[name] = value
        for name, why in deps.unhashable.items():
            if name not in excluded:
                found.unhashable[name] = f"a helper: {why}"
        for mapping, kind in (
            (deps.helpers, parts.helpers),
            (deps.libraries, parts.libraries),
            (deps.modules, parts.modules),
        ):
            for name, digest in mapping.items():
                if name not in excluded:
                    kind[name] = digest
                hashes[name] = digest
        paths = list(analysis.path_literals) + list(options.reads)
        paths += [p for p in (path_value(ns.get(n)) for n in analysis.path_names) if p]
        for path in dict.fromkeys(paths):
            parts.files[path] = file_digest(path)
        return found

    # --- running ---------------------------------------------------------------------
    def run(self, line: str, body: str, options: CellOptions, *, cell_id: str | None = None) -> Any:
        """Run a ``%%task`` cell; return the value of its final expression (its ``Out``).

        Raises
        ------
        BaseException
            Whatever the cell raised (with the user's own traceback), or a
            kernelflow error for bad input.
        """
        prepared = prepare(self.shell, line, body)
        name = self.lineage.name_for(options.name, default_name(prepared.analysis), cell_id)
        inputs = self.hash_inputs(prepared, options)
        caching = options.cache and not inputs.unhashable and not prepared.analysis.opaque
        key_part = inputs.parts.key_part() if caching else None
        previous = None
        if key_part is not None:
            self.writer.wait(key_part)  # the same cell's entry may still be being written
            previous = self.last_cached(name)
        run_info = self._run_task(prepared, options, name, inputs, key_part)
        return self._finish(prepared, options, name, cell_id, inputs, run_info, previous, key_part)

    def _run_task(
        self,
        prepared: PreparedCell,
        options: CellOptions,
        name: str,
        inputs: _Inputs,
        key_part: str | None,
    ) -> dict[str, Any]:
        """Run the cell through the engine; what happened, in a dict (see :meth:`_finish`)."""
        from kernelflow import context, engine
        from kernelflow.tasks import Task

        run_info: dict[str, Any] = {}
        recorder = OutputRecorder(self.shell)
        slot = _concurrency_slot(options.concurrency)
        shell = self.shell
        saving = key_part is not None

        def run_cell() -> dict[str, Any]:
            recorder.reset()
            started = time.time()
            run_info["started"] = started
            watch = hidden_state.RunWatch() if saving else None
            if saving:
                run_info["parts"] = map_parts(inputs.values)
            with recorder, watch if watch is not None else contextlib.nullcontext():
                if slot is None:
                    value = execute(prepared, shell)
                else:
                    with slot():
                        value = execute(prepared, shell)
            duration = time.time() - started
            run_info["value"] = value
            run_info["duration"] = duration
            manifest = make_manifest(prepared, shell, recorder.outputs, value, started, duration)
            run_info["manifest"] = manifest
            if watch is not None:  # saving
                _save_run(manifest, prepared, shell, name, inputs, run_info)
                figures = inline_figures_active() and _open_figures()  # shown after the cell
                manifest["globals"] = watch.effects(
                    displayed=bool(recorder.outputs or figures) or manifest["result"] is not None,
                    displayed_image=figures or _shows_image(recorder.outputs, manifest["result"]),
                ).to_manifest()
            return manifest

        run_cell.__qualname__ = "kernelflow_cell"
        policy = _CellPolicy(key_part) if key_part is not None else None
        run_info["policy"] = policy
        cell_task = Task(
            run_cell,
            name=name,
            tags=options.tags,
            retries=options.retries,
            retry_delay_seconds=options.retry_delay,
            timeout_seconds=options.timeout,
            cache_policy=policy,
            cache_expiration=options.expire,
            refresh_cache=options.refresh,
        )
        # The engine looks the key up; the runner writes the entry itself, after the
        # cell returns (see kernelflow.kernel.writer), so this private task keeps none.
        cell_task.persist_result = False
        flow_ctx = context.current_flow_context()
        lineage_inputs = {}
        upstream: dict[str, str] = {}
        for variable, value_hash in inputs.hashes.items():
            producer = self.lineage.upstream_of(variable, value_hash)
            lineage_inputs[variable] = {
                "hash": value_hash,
                "upstream": producer.task_run_id if producer else None,
            }
            if producer is not None:
                upstream[variable] = producer.cell
        run_info["upstream"] = upstream
        task_run = engine.create_task_run(cell_task, {}, flow_ctx, inputs=lineage_inputs)
        if not options.verbose:
            self._log_filter.quiet_runs.add(task_run.id)
        try:
            run_info["state"] = engine.run_task(cell_task, task_run, {}, None, flow_ctx)
        finally:
            self._log_filter.quiet_runs.discard(task_run.id)
        run_info["task_run"] = task_run
        return run_info

    def _finish(
        self,
        prepared: PreparedCell,
        options: CellOptions,
        name: str,
        cell_id: str | None,
        inputs: _Inputs,
        run_info: dict,
        previous: dict | None,
        key_part: str | None,
    ) -> Any:
        from kernelflow.errors import ResultMissingError
        from kernelflow.store.events import outputs_recorded
        from kernelflow.store.journal import record as journal_record

        state, task_run = run_info["state"], run_info["task_run"]
        cached = state.name == "Cached"
        record = CellRecord(
            name=name,
            line=prepared.line,
            body=prepared.body,
            cell_id=cell_id,
            inputs=dict(inputs.hashes),
            helpers=dict(inputs.parts.helpers),
            task_run_id=task_run.id,
            state=state.name,
            cached=cached,
            parts=inputs.parts,
            key=task_run.cache_key,
            upstream=run_info.get("upstream", {}),
            options=options,
            imports=prepared.analysis.imports,
        )
        if not state.is_completed():
            record.duration = run_info.get("duration")
            record.ran_at = run_info.get("started")
            self.lineage.record(record)
            raise _user_error(state, prepared, self.shell, name, options)
        manifest = state.data
        ns = self.shell.user_ns
        if cached:
            try:
                with _figures_left_closed():
                    restored = load_outputs(manifest, self.shell)
                restore_written(manifest.get("writes") or {})
            except ResultMissingError:
                # An output file vanished since, or an input it referred to: run afresh.
                retry = dataclasses.replace(options, refresh=True)
                return self.run(prepared.line, prepared.body, retry, cell_id=cell_id)
            for variable, value in restored.items():
                _assign(ns, variable, value)
            for variable in manifest.get("deleted", ()):
                ns.pop(variable, None)
            hidden_state.restore(manifest.get("globals"))
            render_cached_line(manifest)
            replay(manifest.get("displays", []), self.shell)
            if manifest.get("after"):
                after = manifest["after"]
                after_cell(self.shell, lambda _: replay(after, self.shell), record=False)
            value = ReplayedResult(manifest["result"]) if manifest.get("result") else None
        else:
            value = None if prepared.quiet else run_info.get("value")
            if manifest.get("result") is not None:
                _reuse_format(self.shell, value, manifest["result"])
            problems = _problems(prepared, inputs.unhashable, run_info.get("problems", {}))
            if options.cache and problems:
                record.not_cached = problems
                _warn_uncached(prepared, name, problems)
        outputs = manifest.get("hashes", {})
        journal_record(outputs_recorded(run_id=task_run.id, outputs=outputs))
        record.outputs = dict(outputs)
        record.changed = list(manifest.get("changed", ()))
        record.duration = manifest.get("duration")
        record.ran_at = manifest.get("started")
        if key_part is not None and task_run.cache_key is not None:
            policy = run_info["policy"]
            record.miss_reasons = (
                None if cached else _miss_reasons(previous, record, options, policy.refused)
            )
            if cached or (manifest.get("bundle") is not None and not run_info.get("problems")):
                self._remember_cached(
                    name, key_part, task_run, record, manifest, options, store=not cached
                )
        self.lineage.record(record)
        if options.verbose:
            _print_verbose(record)
        return value

    def _remember_cached(
        self,
        name: str,
        key_part: str,
        task_run: Any,
        record: CellRecord,
        manifest: dict[str, Any],
        options: CellOptions,
        store: bool,
    ) -> None:
        """Note the cell's newest cached run; write its cache entry (in the background)."""
        key = task_run.cache_key
        latest = self.last_cached(name)
        if not store and latest is not None and latest.get("key") == key:
            return  # a hit on the entry `%kf why` already compares with: nothing to write
        self._last_cached[name] = {"key": key, "parts": record.parts, "t": time.time()}
        notebook = self.session.name
        duration = record.duration or 0.0
        expires = time.time() + options.expire if options.expire is not None else None

        from kernelflow.settings import home

        where = home()

        def write() -> None:
            if home() != where:
                return  # the process moved to another store (a test's): not ours to write
            if store:
                from kernelflow.store import cache_index

                cache_index.store(
                    key,
                    manifest,
                    task_name=name,
                    expires=expires,
                    task_run_id=task_run.id,
                    duration=duration,
                )
            if record.parts is not None:  # set for every run that has a key
                history_append(
                    notebook, name, key, record.parts, duration=duration, task_run_id=task_run.id
                )

        if store and inline_figures_active():
            # Figures are shown by IPython after Out[]: caught then, and saved with the entry.
            def then(images: list) -> None:
                manifest.setdefault("after", []).extend(images)
                self.writer.submit(key_part, write)

            after_cell(self.shell, then, record=True)
        else:
            self.writer.submit(key_part, write)


def _concurrency_slot(key: str | None) -> Any:
    if key is None:
        return None
    from IPython.core.error import UsageError

    try:
        from kernelflow.concurrency.sync import concurrency
    except ImportError:
        raise UsageError(
            "--concurrency needs kernelflow.concurrency, which this installation lacks."
        ) from None
    # strict: --concurrency is kernelflow's own flag, so a misspelt name is an error
    # rather than Prefect's warning.
    return lambda: concurrency(key, occupy=1, strict=True)
