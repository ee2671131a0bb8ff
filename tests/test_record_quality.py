"""Benchmark records check themselves: load, spread and impossible scaling are flagged, never "target met"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flashtrade_lib.measure import bench
from flashtrade_lib.measure.record_quality import (
    FIT_RESIDUAL_BOUND,
    Series,
    assess,
    check_scaling,
    fit_cost,
    growth_exponent,
    verdict_sentence,
)

SIZES = (1024, 2048, 4096, 8192)


def quiet_load(**changes) -> dict:
    load = {"cores": 2, "threshold_cores": 1.0, "waited_s": 0.0, "max_wait_s": 60, "quiet_at_start": True,
            "load_average_1min": {"before": 0.1, "after": 1.0}, "other_busy_cores": 0.05, "run_s": 10.0}
    return {**load, **changes}


def quadratic(c: float = 1e-8, a: float = 0.01, jitter: tuple[float, ...] = (1.0, 1.02, 0.99)) -> Series:
    return Series("naive", 2, SIZES, tuple(tuple((a + c * n * n) * j for j in jitter) for n in SIZES))


def written(tmp_path: Path, series: list[Series], load: dict | None) -> dict:
    record = {"benchmark": "synthetic", "target": {"n": 8192, "met": True},
              "targets": {"speedup": {"value": 3.0, "target": 1.3, "met": True}}}
    path = bench.write_record(tmp_path / "r.json", record, series=series, load=load)
    assert record["target"]["met"] is True, "write_record must not edit the caller's dict"
    return bench.load_record(path)


def test_clean_record_is_ok_and_keeps_its_targets(tmp_path: Path) -> None:
    rec = written(tmp_path, [quadratic()], quiet_load())
    assert rec["quality"]["verdict"] == "ok", rec["quality"]["flags"]
    assert rec["target"]["met"] and rec["targets"]["speedup"]["met"]
    assert bench.trusted(rec) and bench.verdict(rec).startswith("Quality: ok")
    assert rec["series"][0]["times_s"][0] == list(quadratic().times_s[0]), "every repeat time is kept"
    assert rec["load"]["load_average_1min"] == {"before": 0.1, "after": 1.0}


@pytest.mark.parametrize(
    ("case", "series", "load", "expect"),
    [
        ("under load (load average, others not measured)", [quadratic()],
         quiet_load(load_average_1min={"before": 4.4, "after": 6.3}, other_busy_cores=None), "load average 4.40"),
        ("under load (others busy)", [quadratic()], quiet_load(other_busy_cores=1.7), "kept 1.70 cores busy"),
        ("wild spread", [quadratic(jitter=(1.0, 5.0, 0.9))], quiet_load(), "spread"),
        ("O(N²) times that do not grow",
         [Series("sdpa", 2, SIZES, ((0.77,) * 3, (7.7,) * 3, (5.1,) * 3, (5.3,) * 3))], quiet_load(), "faster"),
        ("growth faster than N²",
         [Series("naive", 2, SIZES, ((0.116,) * 3, (2.5,) * 3, (10.0,) * 3, (40.0,) * 3))], quiet_load(),
         "grows at most 4×"),
        ("load not recorded", [quadratic()], None, "not recorded"),
    ],
)
def test_disturbed_records_are_flagged_and_never_target_met(
    tmp_path: Path, case: str, series: list[Series], load: dict | None, expect: str
) -> None:
    rec = written(tmp_path, series, load)
    quality = rec["quality"]
    assert quality["verdict"] == "flagged", case
    assert any(expect in flag for flag in quality["flags"]), quality["flags"]
    assert rec["target"]["met"] is False and rec["target"]["met_as_measured"] is True
    assert rec["targets"]["speedup"]["met"] is False
    assert not bench.trusted(rec)
    assert bench.verdict(rec).startswith("Quality: FLAGGED"), "the chapter must be able to say it plainly"


def test_a_load_average_left_by_earlier_work_is_not_held_against_a_quiet_run(tmp_path: Path) -> None:
    """The 1-minute average decays slowly; what other programs used *during* the run is the test."""
    rec = written(tmp_path, [quadratic()], quiet_load(load_average_1min={"before": 1.72, "after": 1.1}))
    assert rec["quality"]["verdict"] == "ok", rec["quality"]["flags"]
    assert rec["load"]["load_average_1min"]["before"] == 1.72, "the average is still recorded"


def test_a_record_without_timings_says_only_what_was_checked(tmp_path: Path) -> None:
    rec = written(tmp_path, [], quiet_load())
    assert rec["quality"]["checked"] == ["load"]
    assert bench.verdict(rec) == ("Quality: ok — the machine was quiet and it holds no repeated timings "
                                  "to compare.")
    assert "repeats agree" in bench.verdict(written(tmp_path, [quadratic()], quiet_load()))


def test_flat_o_n2_series_fails_the_fit() -> None:
    """Flat then rising: each step is possible, but no a + bN + cN² with a, b, c ≥ 0 fits all points."""
    s = Series("sdpa", 2, SIZES, ((5.0,), (5.0,), (5.0,), (20.0,)))
    flags = check_scaling(s)
    assert any("non-negative" in f for f in flags), flags


def test_fit_recovers_a_nonnegative_cost() -> None:
    coef, misfit = fit_cost(SIZES, [0.5 + 2e-4 * n + 3e-8 * n * n for n in SIZES], order=2)
    assert misfit < 1e-6
    assert coef == pytest.approx([0.5, 2e-4, 3e-8], rel=1e-4)
    assert FIT_RESIDUAL_BOUND > misfit
    assert growth_exponent(SIZES, [n**2 for n in SIZES]) == pytest.approx(2.0)


def test_a_record_with_nothing_to_check_is_unchecked() -> None:
    quality = assess(None, None)
    assert quality["verdict"] == "unchecked"
    assert verdict_sentence(quality).startswith("Quality: unchecked")
    assert verdict_sentence(None).startswith("Quality: unchecked"), "records from before the checks"


def test_series_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="order"):
        Series("x", 3, (1,), ((1.0,),))
    with pytest.raises(ValueError, match="increasing"):
        Series("x", 2, (2, 1), ((1.0,), (1.0,)))
    with pytest.raises(ValueError, match="at least one"):
        Series("x", 2, (1,), ((),))


def test_write_record_refuses_quality_inside_the_record(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="quality"):
        bench.write_record(tmp_path / "x.json", {"quality": "ok"})


def test_records_have_one_located_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """By name: the checkout's benchmarks/results here; $FLASHTRADE_RESULTS wins when set."""
    monkeypatch.delenv(bench.RESULTS_ENV, raising=False)
    assert bench.results_dir() == Path(bench.__file__).resolve().parents[2] / "benchmarks" / "results"
    assert bench.record_path("numpy_attention") == bench.results_dir() / "numpy_attention.json"
    monkeypatch.setenv(bench.RESULTS_ENV, str(tmp_path))
    (tmp_path / "demo.json").write_text(json.dumps({"benchmark": "demo"}))
    rec = bench.load_record("demo")
    assert rec["benchmark"] == "demo" and rec["quality"] is None
    assert bench.load_record("absent") is None
    assert bench.load_record(tmp_path / "demo.json")["benchmark"] == "demo", "the path form still works"


def test_watch_machine_reports_the_load_and_never_waits_past_its_bound() -> None:
    with bench.watch_machine(0, threshold_cores=-1.0) as watch:  # never "quiet": must not wait anyway
        sum(range(10_000))
    report = watch.report
    assert report["quiet_at_start"] is False and report["waited_s"] < 5
    assert set(report["load_average_1min"]) == {"before", "after"}
    with pytest.raises(ValueError, match="max_wait_s"), bench.watch_machine(-1):
        pass
    watch = bench.start_watch(0)  # the same, for scripts that cannot wrap their measurement in a block
    assert watch.finish()["run_s"] >= 0
    with pytest.raises(RuntimeError, match="twice"):
        watch.finish()


def test_cpu_profile_sees_fresh_memory_and_reuse_removes_them() -> None:
    np = pytest.importorskip("numpy")

    def touch() -> float:
        return float(np.ones(2**24).sum())  # 128 MiB, written

    fresh = bench.cpu_profile(touch).page_faults
    assert fresh >= 2**27 // 2**21, fresh  # at least one fault per 2 MiB (transparent huge pages)
    with bench.reuse_freed_memory() as reused:
        if not reused:
            pytest.skip("glibc mallopt not available here")
        touch()  # warm-up: faults the heap in once
        again = bench.cpu_profile(touch).page_faults
    assert again < fresh / 10, (fresh, again)


def test_installed_wheels_ship_the_records() -> None:
    """Outside a checkout, results_dir() falls back to package data that pyproject must declare."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    config = tomllib.loads((Path(bench.__file__).resolve().parents[2] / "pyproject.toml").read_text())
    tools = config["tool"]["setuptools"]
    assert tools["package-dir"]["flashtrade_lib.results"] == "benchmarks/results"
    assert "flashtrade_lib.results" in tools["packages"]
    assert tools["package-data"]["flashtrade_lib.results"] == ["*.json"]
