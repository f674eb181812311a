"""bench/report.py: the one place that decides "met", and the RESULTS.md it writes.

Fast: no benchmark runs here; rows are fixtures, scripts are tiny files in ``tmp_path``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_report():
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "bench" / "report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


report = _load_report()


def make(kernelflow, target, baseline=None, **extra):
    """A checked row with the fields a test does not care about filled in."""
    return report.row(
        "section",
        "figure",
        "µs",
        kernelflow,
        target,
        baseline_name="prefect" if baseline is not None else None,
        baseline=baseline,
        **extra,
    )


class TestVerdictRefusesBadFigures:
    def test_negative_figure_is_invalid_not_met(self):
        # The quick run of issue 13: -134 µs/task, "ratio -0.0067", printed as met.
        decided = report.verdict(make([-134.0], {"ratio_max": 0.01}, [20_000.0]))
        assert decided.met == "no (invalid)"

    def test_zero_figure_is_invalid(self):
        assert report.verdict(make([0.0, 1.0, 2.0], {"max": 5})).met == "no (invalid)"

    def test_zero_or_negative_baseline_is_invalid(self):
        decided = report.verdict(make([1.0, 1.0, 1.0], {"ratio_max": 0.5}, [0.0, 3.0, 3.0]))
        assert decided.met == "no (invalid)"

    def test_ratio_without_a_baseline_is_invalid(self):
        decided = report.verdict(make([1.0, 1.0, 1.0], {"ratio_max": 0.5}))
        assert (decided.met, decided.why) == (
            "no (invalid)",
            "a ratio target with no baseline figure",
        )

    def test_not_finite_is_invalid(self):
        assert report.verdict(make([float("nan"), 1.0], {"max": 5})).met == "no (invalid)"


class TestVerdictNoise:
    def test_ratio_met_only_when_every_repeat_meets_it(self):
        decided = report.verdict(make([0.5, 0.6, 0.7], {"ratio_max": 0.01}, [100.0, 100.0, 90.0]))
        assert decided.met == "yes"
        assert decided.value == pytest.approx(0.006)

    def test_ratio_straddling_the_target_is_noise(self):
        # Median ratio 0.0098 is under 0.01, but the worst repeat is over it.
        decided = report.verdict(make([0.8, 0.98, 1.2], {"ratio_max": 0.01}, [100.0] * 3))
        assert decided.met == "no (noise)"

    def test_ratio_wholly_over_the_target_is_no(self):
        decided = report.verdict(make([2.0, 3.0, 4.0], {"ratio_max": 0.01}, [100.0] * 3))
        assert (decided.met, decided.value) == ("no", pytest.approx(0.03))

    def test_sides_run_in_turns_are_compared_pair_by_pair(self):
        # Load slowed both sides of each pair alike: the per-pair ratio is steady.
        paired = report.verdict(make([1.0, 2.0, 4.0], {"ratio_max": 0.011}, [100.0, 200.0, 400.0]))
        assert paired.met == "yes"
        unpaired = report.verdict(make([1.0, 2.0, 4.0], {"ratio_max": 0.011}, [100.0, 400.0]))
        assert unpaired.met == "no (noise)"

    def test_many_repeats_use_the_middle_of_the_spread(self):
        # One outlier among 20 repeats does not make a clear figure noise.
        samples = [10.0] * 19 + [500.0]
        assert report.verdict(make(samples, {"max": 100})).met == "yes"
        assert report.verdict(make([*samples[:5], 500.0], {"max": 100})).met == "no (noise)"

    def test_absolute_target_straddled_is_noise(self):
        assert report.verdict(make([140.0, 149.0, 160.0], {"max": 150})).met == "no (noise)"
        assert report.verdict(make([140.0, 149.0, 150.0], {"max": 150})).met == "yes"
        assert report.verdict(make([151.0, 152.0, 160.0], {"max": 150})).met == "no"

    def test_figure_not_above_its_no_work_baseline_is_invalid(self):
        zero = {"unit": "s CPU", "gross": [1.0, 1.1, 1.2], "zero": [1.2, 1.3, 1.1]}
        decided = report.verdict(make([1.0, 2.0, 3.0], {"max": 50}, zero_work=zero))
        assert decided.met == "no (invalid)"
        assert "not above the no-work baseline" in decided.why

    def test_figure_overlapping_its_no_work_baseline_is_noise(self):
        zero = {"unit": "s CPU", "gross": [1.3, 1.4, 1.05], "zero": [1.0, 1.1, 1.0]}
        decided = report.verdict(make([1.0, 2.0, 3.0], {"max": 50}, zero_work=zero))
        assert decided.met == "no (noise)"

    def test_baseline_lost_in_its_own_no_work_cost_is_refused(self):
        zero = {"unit": "s CPU", "gross": [9.0, 9.5, 10.0], "zero": [9.8, 9.0, 9.2]}
        decided = report.verdict(
            make([1.0, 1.0, 1.0], {"ratio_max": 0.5}, [10.0] * 3, baseline_zero_work=zero)
        )
        assert decided.met.startswith("no (")

    def test_clear_figure_above_its_no_work_baseline_is_judged(self):
        zero = {"unit": "s CPU", "gross": [2.0, 2.1, 2.2], "zero": [1.0, 1.1, 1.0]}
        assert report.verdict(make([1.0, 1.0, 1.1], {"max": 50}, zero_work=zero)).met == "yes"


class TestFlatness:
    def group(self, *per_n):
        return [
            report.row("scale", "CPU per task", "µs", samples, {"flat_within": 1.2}, n=n)
            for n, samples in per_n
        ]

    def test_flat_group_is_met(self):
        rows = self.group((10_000, [10.0, 10.2, 10.1]), (100_000, [11.0, 11.1, 11.2]))
        decided = report.verdict(rows[0], rows)
        assert decided.met == "yes"
        assert decided.value == pytest.approx(11.1 / 10.1)

    def test_steep_group_is_not_met(self):
        rows = self.group((10_000, [10.0, 10.0, 10.0]), (1_000_000, [15.0, 15.0, 16.0]))
        assert report.verdict(rows[1], rows).met == "no"

    def test_one_size_cannot_show_flatness(self):
        rows = self.group((10_000, [10.0, 10.0, 10.0]))
        assert report.verdict(rows[0], rows).met == "no (invalid)"


class TestRowFormat:
    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"unit": None}, "'unit' must be a string"),
            ({"kernelflow": []}, "kernelflow must be a non-empty list"),
            ({"kernelflow": [1, "2"]}, "kernelflow must hold only numbers"),
            ({"target": {"min": 3}}, "'target' must be one of"),
            ({"n": 1.5}, "'n' must be an integer or null"),
        ],
    )
    def test_malformed_rows_are_refused(self, change, message):
        bad = {**make([1.0], {"max": 2}), **change}
        with pytest.raises(report.RowError, match=re.escape(message)):
            report.check_row(bad)

    def test_a_bad_file_is_listed_not_run_and_the_rest_are_kept(self, tmp_path):
        (tmp_path / "bench_good.json").write_text(json.dumps({"rows": [make([1.0], {"max": 2})]}))
        (tmp_path / "bench_bad.json").write_text(json.dumps({"rows": [{"label": "x"}]}))
        found, broken = report.load_rows(tmp_path)
        assert list(found) == ["bench_good"]
        assert broken["bench_bad"].startswith("not run: bad output in bench_bad.json")


class TestRunningScripts:
    def test_missing_failing_silent_and_good_scripts(self, tmp_path):
        out = tmp_path / "out"
        scripts = tmp_path / "scripts"
        scripts.mkdir()
        rows = {"rows": [make([1.0, 1.1, 1.2], {"max": 2})]}
        failing = scripts / "bench_failing.py"
        failing.write_text(  # writes its rows, then fails: no half-run figure is shown
            "import pathlib, sys\n"
            f"pathlib.Path({str(out / 'bench_failing.json')!r}).write_text({json.dumps(rows)!r})\n"
            "print('boom: the store is gone', file=sys.stderr)\n"
            "sys.exit(3)\n"
        )
        silent = scripts / "bench_silent.py"
        silent.write_text("pass\n")
        good = scripts / "bench_good.py"
        good.write_text(
            "import json, pathlib, sys\n"
            "assert sys.argv[1:] == ['--quick']\n"
            f"pathlib.Path({str(out / 'bench_good.json')!r}).write_text({json.dumps(rows)!r})\n"
        )
        missing = scripts / "bench_missing.py"
        (out).mkdir()
        (out / "bench_stale.json").write_text(json.dumps(rows))  # an earlier run's figures

        manifest = report.run_all([missing, failing, silent, good], True, out, timeout=120)

        status = {Path(run.script).stem: run.status for run in manifest.scripts}
        assert status == {
            "bench_missing": "not run: the script does not exist",
            "bench_failing": "not run: exit 3: boom: the store is gone",
            "bench_silent": "not run: it wrote no bench/out/bench_silent.json",
            "bench_good": "ok",
        }

        assert all(run.wall_s is not None for run in manifest.scripts[1:])
        assert report.Manifest.load(out).quick is True

        text = report.render(out)
        assert "| `" in text and "not run: the script does not exist" in text
        assert "not run: exit 3: boom: the store is gone" in text
        assert "**QUICK**" in text
        assert "Left out (not part of this run): bench_stale." in text
        assert "1 of 1 rows met" in text  # bench_good's row alone

    def test_hung_script_is_killed_and_listed(self, tmp_path):
        hung = tmp_path / "bench_hung.py"
        hung.write_text("import threading\nthreading.Event().wait()\n")
        run = report.run_script(hung, False, tmp_path, timeout=1)
        assert run.status == "not run: timed out after 1 s (killed)"


class TestResultsHeader:
    def test_header_has_commit_load_machine_and_versions(self, tmp_path):
        manifest = report.Manifest(
            quick=False, started="2026-12-05 04:00:00 UTC", load_before=[1.25, 2.5, 3.75]
        )
        manifest.load_after = [4.5, 3.0, 2.0]
        manifest.scripts.append(report.ScriptRun("bench/run.py", "ok", 61.0, 1.25, 4.5))
        manifest.save(tmp_path)
        negative = report.row(
            "kernelflow vs Prefect", "sequential", "µs CPU per task", [-134.0], {"ratio_max": 0.01},
            n=100, baseline_name="prefect", baseline=[20_000.0],
        )  # fmt: skip
        (tmp_path / "run.json").write_text(json.dumps({"rows": [negative]}))

        text = report.render(tmp_path, ROOT)

        head = text.split("## Scripts")[0]
        assert re.search(r"- commit: [0-9a-f]{7,}", head), head
        assert "before 1.25, 2.50, 3.75; after 4.50, 3.00, 2.00" in head
        assert "- date: 2026-12-05 04:00:00 UTC" in head
        assert re.search(r"- machine: nproc \d+, .+ GiB RAM", head)
        for name in ("python", "duckdb", "pyarrow", "prefect"):
            assert f"{name} " in head.split("- versions:")[1]
        assert "- run: full" in head
        assert "| `bench/run.py` | ok | 61 s | 1.25 → 4.50 | 1 |" in text
        assert "## kernelflow vs Prefect" in text
        assert "| no (invalid) |" in text
        assert "0 of 1 rows met" in text


class TestRunRows:
    """bench/run.py turns its measured processes into rows without deciding anything."""

    def load_run(self, monkeypatch):
        # run.py puts bench/ on sys.path to import report.py: undo that after the test.
        monkeypatch.setattr(sys, "path", list(sys.path))
        monkeypatch.delitem(sys.modules, "report", raising=False)
        spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, module)
        spec.loader.exec_module(module)
        monkeypatch.delitem(sys.modules, "report", raising=False)
        return module

    def test_per_task_cpu_subtracts_the_no_task_process_repeat_by_repeat(self, monkeypatch):
        run = self.load_run(monkeypatch)
        sizes = run.SIZES["quick"]

        def proc(cpu, **more):
            return {"cpu_s": cpu, "wall_s": cpu + 0.1, "peak_rss_mb": 50.0, **more}

        results = {
            ("empty", "kernelflow"): [proc(0.50), proc(0.60)],
            ("sequential", "kernelflow"): [proc(0.51), proc(0.55)],  # second: below its zero
            ("empty", "prefect"): [proc(9.0), proc(9.5)],
            ("sequential", "prefect"): [proc(11.0), proc(11.4)],
        }
        made = run.rows(results, sizes, repeat=2)

        cpu = next(r for r in made if r["label"].startswith("sequential trivial tasks: CPU"))
        n = sizes["sequential"]
        assert cpu["kernelflow"] == pytest.approx([0.01 / n * 1e6, -0.05 / n * 1e6])
        assert cpu["zero_work"]["zero"] == [0.50, 0.60]
        assert report.verdict(cpu).met == "no (invalid)"  # a negative repeat, not a "yes"
        labels = {r["label"] for r in made}
        assert "peak RSS, sequential trivial tasks" in labels
        assert "fresh process: import + flow with no task + exit" in labels
        assert all("2 repeat(s) only" in r["notes"] for r in made)
