"""Concurrency limits, rate limits and tag limits, in one process (threads and asyncio)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from kernelflow import flow, task
from kernelflow.concurrency import asyncio as kf_asyncio
from kernelflow.concurrency import (
    create_limit,
    delete_limit,
    limit_status,
    list_limits,
    read_limit,
    update_limit,
)
from kernelflow.concurrency.sync import concurrency, rate_limit
from kernelflow.errors import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
    ConfigurationError,
    LimitNotFoundError,
)


class Gauge:
    """Counts how many callers are inside at once, and the most ever seen."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.entries = 0
        self._lock = threading.Lock()

    def __enter__(self) -> Gauge:
        with self._lock:
            self.now += 1
            self.entries += 1
            self.peak = max(self.peak, self.now)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1


def run_threads(count: int, target) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()


class TestDefinitions:
    def test_create_list_update_delete(self):
        created = create_limit("external-api", 5)
        assert (created.name, created.limit, created.slot_decay_per_second) == (
            "external-api",
            5,
            0,
        )
        create_limit("rps", 10, slot_decay_per_second=2.5)
        assert [d.name for d in list_limits()] == ["external-api", "rps"]
        updated = update_limit("external-api", limit=7, active=False)
        assert (updated.limit, updated.active) == (7, False)
        assert read_limit("external-api") == updated
        delete_limit("external-api")
        assert [d.name for d in list_limits()] == ["rps"]
        with pytest.raises(LimitNotFoundError):
            read_limit("external-api")

    def test_limits_are_queryable_in_the_store(self, store):
        create_limit("external-api", 5)
        create_limit("rps", 10, slot_decay_per_second=10)
        update_limit("rps", limit=20)
        delete_limit("external-api")
        create_limit("db", 1, active=False)
        rows = store.sql(
            "SELECT name, slot_limit, slot_decay_per_second, active FROM concurrency_limits "
            "ORDER BY name"
        )
        assert rows.values.tolist() == [["db", 1, 0.0, False], ["rps", 20, 10.0, True]]

    @pytest.mark.parametrize("limit", [0, -3, 1.5, True, "5", None])
    def test_a_limit_below_one_or_not_whole_is_refused(self, limit):
        with pytest.raises(ConfigurationError, match="whole number >= 1"):
            create_limit("k", limit)
        assert list_limits() == []

    @pytest.mark.parametrize("name", ["", "  ", "a/b", ".hidden", "x%y", "a\nb", 3])
    def test_a_name_that_cannot_name_a_limit_is_refused(self, name):
        with pytest.raises(ConfigurationError):
            create_limit(name, 1)

    def test_negative_decay_is_refused(self):
        with pytest.raises(ConfigurationError, match="slot_decay_per_second"):
            create_limit("k", 1, slot_decay_per_second=-1)

    def test_creating_an_existing_limit_says_how_to_change_it(self):
        create_limit("k", 1)
        with pytest.raises(ConfigurationError, match="gcl update k"):
            create_limit("k", 2)
        assert create_limit("k", 2, replace_existing=True).limit == 2

    def test_updating_or_deleting_an_unknown_limit_is_a_clear_error(self):
        with pytest.raises(LimitNotFoundError, match="concurrency-limit create nope"):
            update_limit("nope", limit=2)
        with pytest.raises(LimitNotFoundError):
            delete_limit("nope")


class TestConcurrency:
    def test_never_more_holders_than_the_limit(self):
        create_limit("k", 2)
        gauge = Gauge()

        def work() -> None:
            for _ in range(20):
                with concurrency("k", occupy=1), gauge:
                    time.sleep(0.002)

        run_threads(6, work)
        assert gauge.peak == 2
        assert gauge.entries == 120
        assert limit_status("k").occupied == 0

    def test_occupy_takes_several_slots_at_once(self):
        create_limit("k", 3)
        held, done = threading.Event(), threading.Event()

        def hold_two() -> None:
            with concurrency("k", occupy=2):
                held.set()
                done.wait(10)

        holder = threading.Thread(target=hold_two)
        holder.start()
        try:
            assert held.wait(10)
            assert limit_status("k").occupied == 2
            with pytest.raises(AcquireConcurrencySlotTimeoutError):
                with concurrency(["k"], occupy=2, timeout_seconds=0.05):
                    pass
            with concurrency("k", occupy=1):
                assert limit_status("k").occupied == 3
        finally:
            done.set()
            holder.join(10)
        assert limit_status("k").occupied == 0

    def test_an_unknown_limit_is_prefects_error_when_strict(self):
        with pytest.raises(ConcurrencySlotAcquisitionError) as info:
            with concurrency(["external-api", "k"], strict=True):
                pass
        # Prefect's words, one line, naming only the missing limit.
        assert str(info.value) == (
            "Concurrency limits ['external-api', 'k'] must be created before acquiring slots"
        )

    def test_occupy_above_the_limit_is_refused_at_once(self):
        create_limit("k", 2)
        with pytest.raises(ConfigurationError, match="would wait forever"):
            with concurrency("k", occupy=3):
                pass

    @pytest.mark.parametrize("occupy", [0, -1, 1.0, True])
    def test_occupy_must_be_a_whole_number_of_slots(self, occupy):
        create_limit("k", 2)
        with pytest.raises(ConfigurationError, match="occupy"):
            with concurrency("k", occupy=occupy):
                pass

    def test_timeout_raises_a_one_line_timeout_error(self):
        create_limit("k", 1)
        with concurrency("k"):
            started = time.monotonic()
            with pytest.raises(TimeoutError) as info:
                with concurrency("k", timeout_seconds=0.2):
                    pass
            waited = time.monotonic() - started
        assert isinstance(info.value, AcquireConcurrencySlotTimeoutError)
        assert waited >= 0.2
        message = str(info.value)
        assert "'k'" in message and "within 0.2 s" in message and "\n" not in message

    def test_max_retries_gives_up(self):
        create_limit("k", 1)
        with concurrency("k"):
            with pytest.raises(AcquireConcurrencySlotTimeoutError, match="after 2 retries"):
                with concurrency("k", max_retries=2):
                    pass

    def test_several_names_are_taken_together(self):
        create_limit("a", 1)
        create_limit("b", 1)
        with concurrency(["a", "b"]):
            assert limit_status("a").occupied == limit_status("b").occupied == 1
        with concurrency("b"):
            # "a" is free but "b" is not: nothing of "a" is kept while waiting.
            with pytest.raises(AcquireConcurrencySlotTimeoutError):
                with concurrency(["a", "b"], timeout_seconds=0.05):
                    pass
            assert limit_status("a").occupied == 0

    def test_a_slot_is_released_when_the_block_raises(self):
        create_limit("k", 1)
        with pytest.raises(RuntimeError):
            with concurrency("k"):
                raise RuntimeError("boom")
        assert limit_status("k").occupied == 0

    def test_an_inactive_limit_is_not_enforced(self):
        create_limit("k", 1, active=False)
        with concurrency("k"), concurrency("k", timeout_seconds=0):
            assert limit_status("k").occupied == 0

    def test_waiting_on_your_own_slot_is_refused_instead_of_hanging(self):
        create_limit("k", 1)
        with concurrency("k"):
            with pytest.raises(ConfigurationError, match="wait forever for itself"):
                with concurrency("k"):
                    pass

    def test_holders_are_shown_with_pid_thread_and_task_run(self):
        import os

        create_limit("k", 3)

        @task
        def hold() -> list:
            with concurrency("k"):
                return limit_status("k").holders

        @flow
        def inspect_flow() -> list:
            return hold()

        holders = inspect_flow()
        assert len(holders) == 1
        holder = holders[0]
        assert holder.pid == os.getpid()
        assert holder.task_run == "hold-0"
        assert holder.since is not None and abs(holder.since - time.time()) < 60

    def test_a_deleted_limit_stops_being_usable(self):
        create_limit("k", 1)
        delete_limit("k")
        with pytest.raises(LimitNotFoundError):
            with concurrency("k", strict=True):
                pass


class TestRateLimit:
    def test_burst_then_the_decay_rate(self):
        create_limit("rps", 3, slot_decay_per_second=20)
        started = time.monotonic()
        for _ in range(3):
            rate_limit("rps")
        burst = time.monotonic() - started
        for _ in range(4):
            rate_limit("rps")
        total = time.monotonic() - started
        # 3 at once, then 4 more at 20 per second: at least 0.2 s in all.
        assert total >= 0.19
        assert burst < total
        assert 0 < limit_status("rps").occupied <= 3

    def test_slots_decay_without_being_released(self):
        create_limit("rps", 2, slot_decay_per_second=10)
        rate_limit("rps", occupy=2)
        assert limit_status("rps").occupied > 1.5
        with pytest.raises(AcquireConcurrencySlotTimeoutError):
            rate_limit("rps", timeout_seconds=0)
        time.sleep(0.25)
        assert limit_status("rps").occupied == 0
        rate_limit("rps", occupy=2, timeout_seconds=0)

    def test_rate_limit_needs_a_decaying_limit(self):
        create_limit("k", 2)
        with pytest.raises(ConfigurationError, match="--slot-decay-per-second"):
            rate_limit("k")

    def test_rate_limit_on_an_unknown_name_when_strict(self):
        with pytest.raises(ConcurrencySlotAcquisitionError, match=r"\['nope'\] must be created"):
            rate_limit("nope", strict=True)

    def test_concurrency_on_a_rate_limit_gives_back_what_has_not_decayed(self):
        create_limit("rps", 2, slot_decay_per_second=0.5)
        with concurrency("rps", occupy=2):
            assert limit_status("rps").occupied > 1.9
        assert limit_status("rps").occupied < 0.1

    def test_occupy_above_a_rate_limit_is_refused(self):
        create_limit("rps", 2, slot_decay_per_second=1)
        with pytest.raises(ConfigurationError, match="would wait forever"):
            rate_limit("rps", occupy=3)


class TestAsync:
    def test_async_concurrency_and_rate_limit(self):
        create_limit("k", 2)
        create_limit("rps", 2, slot_decay_per_second=50)
        gauge = Gauge()

        async def work() -> None:
            async with kf_asyncio.concurrency("k"):
                with gauge:
                    await asyncio.sleep(0.01)

        async def main() -> None:
            await asyncio.gather(*(work() for _ in range(10)))
            for _ in range(4):
                await kf_asyncio.rate_limit("rps")

        asyncio.run(main())
        assert gauge.peak == 2 and gauge.entries == 10

    def test_async_timeout_and_unknown_name(self):
        create_limit("k", 1)

        async def main() -> None:
            async with kf_asyncio.concurrency("k"):
                with pytest.raises(AcquireConcurrencySlotTimeoutError):
                    async with kf_asyncio.concurrency("k", timeout_seconds=0.05):
                        pass
            with pytest.raises(LimitNotFoundError):
                await kf_asyncio.rate_limit("nope", strict=True)

        asyncio.run(main())


class TestTagLimits:
    def test_task_runs_with_a_limited_tag_run_at_most_limit_at_once(self):
        create_limit("db", 2)
        gauge = Gauge()

        @task(tags=["db", "unlimited-tag"])
        def write(i: int) -> int:
            with gauge:
                time.sleep(0.02)
            return i

        @flow
        def writes() -> list:
            return write.map(range(8)).result()

        assert writes() == list(range(8))
        assert gauge.peak == 2
        assert limit_status("db").occupied == 0

    def test_tags_without_limits_and_untagged_tasks_are_not_limited(self):
        gauge = Gauge()
        barrier = threading.Barrier(4, timeout=10)

        @task(tags=["no-limit-here"])
        def together(i: int) -> int:
            with gauge:
                barrier.wait()  # all four must be inside at once
            return i

        @flow
        def run_all() -> list:
            return together.map(range(4)).result()

        assert run_all() == [0, 1, 2, 3]
        assert gauge.peak == 4

    def test_slots_are_given_back_between_retries(self):
        create_limit("db", 1)
        seen: list[float] = []

        @task(tags=["db"], retries=2, retry_delay_seconds=0.05)
        def flaky() -> str:
            seen.append(limit_status("db").occupied)
            if len(seen) < 3:
                raise RuntimeError("not yet")
            return "ok"

        @flow
        def run_flaky() -> str:
            return flaky()

        assert run_flaky() == "ok"
        assert seen == [1.0, 1.0, 1.0]
        assert limit_status("db").occupied == 0

    def test_a_task_asking_for_its_own_tag_limit_fails_instead_of_hanging(self):
        create_limit("db", 1)

        @task(tags=["db"])
        def nested() -> None:
            with concurrency("db"):
                pass

        @flow
        def run_nested() -> tuple:
            state = nested(return_state=True)
            return state.is_failed(), state.message

        failed, message = run_nested()
        assert failed
        assert "wait forever for itself" in message

    def test_async_tasks_respect_tag_limits(self):
        create_limit("db", 2)
        gauge = Gauge()

        @task(tags=["db"])
        async def write(i: int) -> int:
            with gauge:
                await asyncio.sleep(0.02)
            return i

        @flow
        async def writes() -> list:
            return await asyncio.gather(*(write(i) for i in range(6)))

        assert asyncio.run(writes()) == list(range(6))
        assert gauge.peak == 2
