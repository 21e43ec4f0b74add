"""Run every benchmark against procman and its peers in one go; print a Markdown report.

    .venv/bin/python bench/run.py [--quick]
                                  [--only throughput,startup,shutdown,idle,scale,control,worker,
                                          deploy]
                                  [--managers procman,honcho,foreman] [--json results.json]

Peers that are not installed are reported as skipped. Progress goes to stderr, the report to
stdout. Each figure is the median of ``--repeat`` runs (3; 1 with ``--quick``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import common
import control
import deploy
import idle
import scale
import shutdown
import startup
import throughput
import worker

BENCHMARKS = ("throughput", "startup", "shutdown", "idle", "scale", "control", "worker",
              "deploy")  # fmt: skip
MANAGERS = ("procman", "honcho", "foreman")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    managers, skipped = common.find_managers(args.managers.split(","))
    repeat = args.repeat or (1 if args.quick else 3)
    scratch = Path(tempfile.mkdtemp(prefix="procman-bench-"))
    results: dict[str, object] = {}
    began = time.monotonic()
    report = Report(managers, skipped, repeat)
    try:
        run_benchmarks(args, managers, repeat, scratch, results, report)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.monotonic() - began
    command = " ".join([".venv/bin/python", "bench/run.py", *(argv or sys.argv[1:])])
    print(report.render(command, elapsed))
    if args.json:
        payload = {"machine": common.machine(), "versions": report.versions(), **results}
        Path(args.json).write_text(json.dumps(payload, default=_jsonable, indent=2) + "\n")
    return 0


def run_benchmarks(
    args: argparse.Namespace,
    managers: list[common.Manager],
    repeat: int,
    scratch: Path,
    results: dict[str, object],
    report: Report,
) -> None:
    """The benchmarks named by ``--only``, in the order of BENCHMARKS; samples into
    ``results``, sections into ``report``."""
    lines_each = 50_000 if args.quick else 200_000
    window = 3.0 if args.quick else 10.0
    wanted = args.only.split(",")
    if "throughput" in wanted:
        samples = throughput.run(managers, repeat, lines_each, scratch)
        results["throughput"] = samples
        report.throughput(samples, lines_each)
    if "startup" in wanted:
        samples = startup.run(managers, repeat, scratch)
        results["startup"] = samples
        report.startup(samples)
    if "shutdown" in wanted:
        samples = shutdown.run(managers, repeat, scratch)
        results["shutdown"] = samples
        report.shutdown(samples)
    if "idle" in wanted:
        samples = idle.run(managers, repeat, window, scratch)
        results["idle"] = samples
        report.idle(samples, window)
    if "scale" in wanted:
        samples = scale.run(managers, repeat, scratch)
        results["scale"] = samples
        report.scale(samples)
    if "control" in wanted:
        samples = control.run(managers, repeat, scratch)
        results["control"] = samples
        report.control(samples)
    if "worker" in wanted:
        jobs = worker.run(repeat, scratch, args.quick)
        results["worker"] = jobs
        report.worker(jobs)
    if "deploy" in wanted:
        deploys = deploy.run(repeat, scratch, args.quick)
        results["deploy"] = deploys
        report.deploy(deploys)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer lines, one run, 3 s idle")
    parser.add_argument("--repeat", type=int, help="runs per figure [default: 3, quick: 1]")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="benchmarks to run")
    parser.add_argument("--managers", default=",".join(MANAGERS), help="managers to compare")
    parser.add_argument("--json", help="also write every sample to this file")
    return parser.parse_args(argv)


def _jsonable(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


# -- the report -----------------------------------------------------------------------------


def seconds_cell(values: list[float | None], digits: int = 3) -> str:
    """Median of the runs that finished, then every run."""
    done = [v for v in values if v is not None]
    runs = " / ".join("—" if v is None else f"{v:.{digits}f}" for v in values)
    if not done:
        return f"did not exit ({runs})"
    head = f"**{common.median(done):.{digits}f}**"
    missing = len(values) - len(done)
    if missing:
        head += f", {missing}/{len(values)} did not exit"
    return f"{head} ({runs})" if len(values) > 1 else head


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


class Report:
    def __init__(
        self, managers: list[common.Manager], skipped: dict[str, str], repeat: int
    ) -> None:
        self.managers = managers
        self.skipped = skipped
        self.repeat = repeat
        self.sections: list[str] = []

    def versions(self) -> dict[str, str]:
        return {m.name: m.version for m in self.managers}

    def _names(self) -> list[str]:
        return [m.name for m in self.managers]

    def throughput(self, samples: list[throughput.Sample], lines_each: int) -> None:
        total = throughput.PRODUCERS * lines_each
        rows = [
            "| | wall s, median (runs) | lines/s | ÷ baseline time | procman CPU self / "
            "manager tree CPU s | lines lost / dup / garbled (all runs) |",
            "|---|---|---|---|---|---|",
        ]
        medians: dict[str, float] = {}
        for name in ["baseline", *self._names()]:
            mine = [s for s in samples if s.name == name]
            wall = common.median([s.seconds for s in mine])
            medians[name] = wall
            cpu = "—"
            if name != "baseline":
                own = common.median([s.self_cpu or 0.0 for s in mine])
                tree = common.median([s.manager_cpu or 0.0 for s in mine])
                cpu = f"{own:.2f} / {tree:.2f}" if name == "procman" else f"— / {tree:.2f}"
            checks = [s.check for s in mine if s.check is not None]
            lost = sum(c.lost for c in checks)
            dup = sum(c.duplicated for c in checks)
            garbled = sum(c.garbled for c in checks)
            good = sum(c.good for c in checks)
            rows.append(
                f"| {name} | {seconds_cell([s.seconds for s in mine], 2)} "
                f"| {total / wall:,.0f} | {wall / medians['baseline']:.2f}x | {cpu} "
                f"| {lost} / {dup} / {garbled} ({good:,} good) |"
            )
        notes = []
        if "procman" in medians:
            ratio = medians["procman"] / medians["baseline"]
            notes.append(
                f"- Goal procman within 2x of the baseline: {ratio:.2f}x → {verdict(ratio <= 2)}"
            )
            if "honcho" in medians:
                speedup = medians["honcho"] / medians["procman"]
                notes.append(
                    f"- Goal procman over 20x honcho: {speedup:.1f}x → {verdict(speedup > 20)}"
                )
            if "foreman" in medians:
                notes.append(
                    f"- procman vs foreman: {medians['foreman'] / medians['procman']:.1f}x"
                )
        self.sections.append(
            f"## Log throughput: {throughput.PRODUCERS} producers x {lines_each:,} lines of "
            f"80 bytes ({total:,} lines)\n\n" + "\n".join([*rows, "", *notes])
        )

    def startup(self, samples: list[startup.Sample]) -> None:
        rows = [
            "| manager | s until all 50 lines, median (runs) | procman ÷ this | leftovers |",
            "|---|---|---|---|",
        ]
        names = [*self._names(), *(floor.name for floor in startup.FLOORS)]
        medians = {}
        for name in names:
            values = [s.seconds for s in samples if s.name == name]
            done = [v for v in values if v is not None]
            medians[name] = common.median(done) if done else None
        notes = []
        ours = medians.get("procman")
        click_floor = medians.get(startup.FLOORS[-1].name)
        for name in names:
            mine = [s for s in samples if s.name == name]
            theirs = medians[name]
            ratio = f"{ours / theirs:.2f}" if ours and theirs else "—"
            left = common.summarize(n for s in mine for n in s.leftovers)
            rows.append(
                f"| {name} | {seconds_cell([s.seconds for s in mine])} | {ratio} | {left} |"
            )
            if name in self._names() and name != "procman" and ours and theirs:
                notes.append(
                    f"- Goal procman at most half of {name}: {ours / theirs:.2f} → "
                    f"{verdict(ours <= theirs / 2)}"
                    + (
                        f" (the python + click floor is {click_floor / theirs:.2f} of {name})"
                        if click_floor
                        else ""
                    )
                )
        self.sections.append(
            f"## Start-up: {startup.PROCESSES} processes, launch until every line is seen\n\n"
            + "\n".join([*rows, "", *notes])
        )

    def shutdown(self, samples: list[shutdown.Sample]) -> None:
        rows = [
            "| children | manager | stop timeout s | s from SIGINT to exit, median (runs) "
            "| leftovers (all runs, then killed) |",
            "|---|---|---|---|---|",
        ]
        notes = []
        for scenario in shutdown.SCENARIOS:
            for name in self._names():
                mine = [s for s in samples if s.name == name and s.scenario == scenario]
                values = [s.seconds for s in mine]
                left = common.summarize(n for s in mine for n in s.leftovers)
                timeout = mine[0].stop_timeout
                rows.append(
                    f"| {scenario} | {name} | {timeout:g} | {seconds_cell(values)} | {left} |"
                )
                if name == "procman":
                    done = [v for v in values if v is not None]
                    limit = 0.1 if scenario == "term" else timeout + 0.1
                    met = len(done) == len(values) and common.median(done) <= limit
                    notes.append(
                        f"- Goal procman {scenario}: exit within {limit:g} s → {verdict(met)}"
                        f"{'' if not left or left == 'none' else ' (but leftovers)'}"
                    )
        self.sections.append(
            f"## Shutdown: {shutdown.CHILDREN} children, SIGINT to the manager\n\n"
            "`term`: `" + shutdown.SCENARIOS["term"] + "`  \n"
            "`ignore`: `" + shutdown.SCENARIOS["ignore"] + "`\n\n" + "\n".join([*rows, "", *notes])
        )

    def idle(self, samples: list[idle.Sample], window: float) -> None:
        rows = [
            "| manager | CPU % of one core, median (runs) | RSS MB | PSS MB | own processes |",
            "|---|---|---|---|---|",
        ]
        notes = []
        for name in self._names():
            mine = [s for s in samples if s.name == name]
            cpus = [s.cpu_percent for s in mine if s.cpu_percent is not None]
            cpu = common.median(cpus) if cpus else float("nan")
            rss = common.median([s.rss_mb for s in mine])
            pss = common.median([s.pss_mb for s in mine])
            runs = " / ".join(f"{c:.3f}" for c in cpus)
            rows.append(
                f"| {name} | **{cpu:.3f}** ({runs}) | {rss:.1f} | {pss:.1f} "
                f"| {common.summarize(mine[0].processes)} |"
            )
            if name == "procman":
                notes.append(f"- Goal procman CPU under 0.5 %: {cpu:.3f} % → {verdict(cpu < 0.5)}")
                notes.append(f"- Goal procman RSS under 30 MB: {rss:.1f} MB → {verdict(rss < 30)}")
        self.sections.append(
            f"## Idle: {idle.CHILDREN} sleeping children, {window:g} s window\n\n"
            + "\n".join([*rows, "", *notes])
        )

    def scale(self, samples: list[scale.Sample]) -> None:
        def cell(values: list[float | None]) -> str:
            return seconds_cell(values) if any(v is not None for v in values) else "—"

        procman = [s for s in samples if s.name == "procman"]
        up_rows = [
            "| what | s until every new instance's line, median (runs) | CLI wall s | leftovers |",
            "|---|---|---|---|",
        ]
        medians: dict[str, float] = {}
        for scenario in scale.SCENARIOS:
            mine = [s for s in procman if s.scenario == scenario]
            values = [s.up_seconds for s in mine]
            done = [v for v in values if v is not None]
            if scenario == "term" and done:
                medians["procman"] = common.median(done)
            up_rows.append(
                f"| procman `scale worker={scale.TO}`, {scenario} workers | {cell(values)} "
                f"| {cell([s.up_cli_seconds for s in mine])} "
                f"| {common.summarize(n for s in mine for n in s.leftovers)} |"
            )
        for name in self._names():
            if name == "procman":
                continue
            mine = [s for s in samples if s.name == name]
            values = [s.up_seconds for s in mine]
            done = [v for v in values if v is not None]
            if done:
                medians[name] = common.median(done)
            stops = [s.peer_stop_seconds for s in mine if s.peer_stop_seconds is not None]
            stop = f"; stopping took {common.median(stops):.3f}" if stops else ""
            up_rows.append(
                f"| {name}: SIGINT, then start again with worker={scale.TO}{stop} "
                f"| {cell(values)} | — "
                f"| {common.summarize(n for s in mine for n in s.leftovers)} |"
            )
        notes = []
        if "procman" in medians:
            ours = medians["procman"]
            notes.append(f"- Goal scale-up within 0.5 s: {ours:.3f} s → {verdict(ours <= 0.5)}")
            for name, theirs in medians.items():
                if name != "procman":
                    notes.append(f"- {name} restart ÷ procman scale: {theirs / ours:.1f}x")
        down_rows = [
            "| workers | -t | s until the 19 exit lines, median (runs) | s until the 19 pids are "
            "gone | of which after the CLI exited | CLI wall s | problems |",
            "|---|---|---|---|---|---|---|",
        ]
        for scenario in scale.SCENARIOS:
            mine = [s for s in procman if s.scenario == scenario]
            if not mine:
                continue
            timeout = mine[0].stop_timeout
            gone = [s.down_gone_seconds for s in mine]
            after = [
                None
                if s.down_gone_seconds is None or s.down_cli_seconds is None
                # procman has sent SIGTERM before it answers, so this is at most its part
                else s.down_gone_seconds - s.down_cli_seconds
                for s in mine
            ]
            problems = "; ".join(p for s in mine for p in s.problems) or "none"
            down_rows.append(
                f"| {scenario} | {timeout:g} | {cell([s.down_seconds for s in mine])} "
                f"| {cell(gone)} | {cell(after)} "
                f"| {cell([s.down_cli_seconds for s in mine])} | {problems} |"
            )
            done = [v for v in gone if v is not None]
            if scenario == "term":
                met = len(done) == len(gone) and common.median(done) <= timeout
                shown = f"{common.median(done):.3f} s" if done else "—"
                notes.append(
                    f"- Goal scale-down (term workers) gone within the {timeout:g} s timeout: "
                    f"{shown} from launching the CLI → {verdict(met)}"
                )
                continue
            ended = [v for v in after if v is not None]
            met = len(ended) == len(after) and common.median(ended) <= timeout + 0.1
            shown = f"{common.median(ended):.3f} s" if ended else "—"
            total = f"{common.median(done):.3f} s" if done else "—"
            notes.append(
                f"- Goal scale-down (ignore workers) gone within {timeout:g} s + 0.1 s: "
                f"{shown} after procman answered (the CLI exited), {total} from launching the "
                f"CLI (its own start-up included) → {verdict(met)}"
            )
        self.sections.append(
            f"## Scaling a running app: worker=1 → {scale.TO} → 1\n\n"
            "`term`: `" + scale.SCENARIOS["term"][0] + "`  \n"
            "`ignore`: `"
            + scale.SCENARIOS["ignore"][0]
            + "`\n\n"
            + "\n".join([*up_rows, "", *down_rows, "", *notes])
        )

    def control(self, samples: list[control.Sample]) -> None:
        if not samples:
            self.sections.append("## Control under load\n\nprocman not run: skipped")
            return

        def runs(values: list[float], digits: int = 2) -> str:
            shown = " / ".join(f"{v:.{digits}f}" for v in values)
            head = f"**{common.median(values):.{digits}f}**"
            return f"{head} ({shown})" if len(values) > 1 else head

        rows = [
            "| load | socket requests per run | s for them | p50 ms | p99 ms | failed "
            "| procman RSS MB: before / after 1,000 / at the end |",
            "|---|---|---|---|---|---|---|",
        ]
        for label, series in (
            (f"{control.PRODUCERS} producers at full speed", [s.loaded for s in samples]),
            (f"none ({control.PRODUCERS} sleeping children)", [s.idle for s in samples]),
        ):
            counts = " / ".join(str(len(r.latencies)) for r in series)
            p50 = [1000 * common.percentile(r.latencies, 0.5) for r in series if r.latencies]
            p99 = [1000 * common.percentile(r.latencies, 0.99) for r in series if r.latencies]
            failed = sum(len(r.failures) for r in series)
            rss = " ; ".join(" / ".join(f"{mb:.1f}" for mb in r.rss_mb) for r in series)
            rows.append(
                f"| {label} | {counts} | {runs([r.seconds for r in series])} | {runs(p50)} "
                f"| {runs(p99)} | {failed} | {rss} |"
            )
        cli_rows = [
            "| load | `procman ps --json` runs | s per run, median | ⇒ s for 1,000 | failed |",
            "|---|---|---|---|---|",
        ]
        for label, series in (
            ("full speed", [s.loaded for s in samples]),
            ("none", [s.idle for s in samples]),
        ):
            seconds = [v for r in series for v in r.cli_seconds]
            failed = sum(len(r.cli_failures) for r in series)
            if seconds:
                each = common.median(seconds)
                cli_rows.append(
                    f"| {label} | {len(seconds)} | {each:.3f} | {1000 * each:.0f} | {failed} |"
                )
        checks = [s.check for s in samples if s.check is not None]
        log = (
            f"Log check over all runs ({sum(s.log_mb for s in samples):,.0f} MB): "
            f"{sum(c.good for c in checks):,} lines good, {sum(c.lost for c in checks)} lost, "
            f"{sum(c.duplicated for c in checks)} duplicated, "
            f"{sum(c.garbled for c in checks)} garbled, {sum(c.split for c in checks)} split in "
            f"two, {sum(c.cut_at_stop for c in checks)} last lines cut by the stop (allowed)"
        )
        loaded_first = [s.loaded.first_seconds for s in samples]
        done = [v for v in loaded_first if v is not None]
        notes = [
            log,
            "",
            "- Goal no failed request: "
            + verdict(not any(s.loaded.failures or s.idle.failures for s in samples)),
            "- Goal no lost line: "
            + verdict(
                bool(checks) and not any(c.lost or c.duplicated or c.garbled for c in checks)
            ),
        ]
        if done:
            notes.append(f"- {control.FIRST:,} requests under load: {common.median(done):.2f} s")
        else:
            loaded = [s.loaded for s in samples]
            per = common.median([common.median(r.latencies) for r in loaded if r.latencies])
            notes.append(
                f"- {control.FIRST:,} requests under load did not fit in the "
                f"{control.LOADED_WINDOW:g} s window: at {1000 * per:.0f} ms each they would "
                f"take about {control.FIRST * per:.0f} s"
            )
        idle_rss = [s.idle.rss_mb for s in samples if len(s.idle.rss_mb) == 3]
        if idle_rss:
            growth = max(r[2] - r[0] for r in idle_rss)
            notes.append(
                f"- Goal RSS flat over {control.FIRST + control.MORE:,} requests (idle): "
                f"largest growth {growth:+.1f} MB → {verdict(growth <= 0.5)}"
            )
        self.sections.append(
            f"## Control under load: `ps` on the socket while {control.PRODUCERS} processes log "
            "at full speed\n\n" + "\n".join([*rows, "", *cli_rows, "", *notes])
        )

    def worker(self, results: worker.Results) -> None:
        title = "## Background jobs: `procman worker` and RQ's workers on one Redis"
        if results.skipped:
            self.sections.append(f"{title}\n\nskipped: {results.skipped}")
            return
        versions = ", ".join(f"{name} {version}" for name, version in results.versions.items())
        self.sections.append(
            f"{title}\n\n{versions}\n\n"
            + "\n\n".join(
                [
                    _worker_throughput(results.throughput),
                    _worker_latency(results.latency),
                    _worker_crash(results.crash),
                ]
            )
        )

    def deploy(self, results: deploy.Results) -> None:
        title = "## Deploy: the example app over real OpenSSH, 3 sshd hosts on this machine"
        if results.skipped:
            self.sections.append(f"{title}\n\nskipped: {results.skipped}")
            return
        versions = ", ".join(f"{name} {version}" for name, version in results.versions.items())
        load = " → ".join(f"{v:.2f}" for v in results.load)
        background = " / ".join(f"{v:.2f}" for v in results.background)
        shells = [
            f"- hosts `{name}`: {text}; one SSH command (`true`) "
            + (
                f"{common.median(results.command_ms[name]):.0f} ms median, "
                f"{common.percentile(results.command_ms[name], 0.9):.0f} ms p90"
                if results.command_ms.get(name)
                else "not measured"
            )
            for name, text in deploy.SHELLS.items()
        ]
        head = [
            f"{versions}; 1-minute load average {load} (start → end); cores busy in the 1 s "
            f"before each round: {background}; scratch at most "
            f"{results.scratch_peak_mb:.1f} MB, deleted",
            "",
            *shells,
        ]
        self.sections.append(
            f"{title}\n\n"
            + "\n".join(head)
            + "\n\n"
            + "\n\n".join(
                [
                    _deploy_scaling(results.rounds, results.baseline_skipped),
                    _deploy_again(results.rounds),
                    _deploy_promotion(results.rounds),
                    _deploy_problems(results),
                ]
            )
        )

    def render(self, command: str, elapsed: float) -> str:
        info = common.machine()
        head = [
            "# procman benchmark report",
            "",
            f"- command: `{command}` ({elapsed:.0f} s)",
            f"- machine: {info['nproc']} CPUs ({info['cpu']}), Linux {info['kernel']}, "
            f"Python {info['python']}",
            "- versions: " + ", ".join(f"{m.version}" for m in self.managers),
            f"- runs per figure: {self.repeat}",
        ]
        for name, reason in self.skipped.items():
            head.append(f"- skipped {name}: {reason}")
        return "\n".join(head) + "\n\n" + "\n\n".join(self.sections) + "\n"


def _worker_throughput(samples: list[worker.Throughput]) -> str:
    rows = [
        "| worker | jobs | s from launch to the last job's end, median (runs) | jobs/s "
        "| steady jobs/s (first start to last end) | procman ÷ this | Redis commands/job "
        "| finished (all runs) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rates: dict[str, float] = {}
    for runner in worker.THROUGHPUT_RUNNERS:
        mine = [s for s in samples if s.runner == runner]
        rate = [s.jobs / s.seconds for s in mine if s.seconds]
        if rate:
            rates[runner] = common.median(rate)
    ours = rates.get(worker.THROUGHPUT_RUNNERS[0])
    for runner in worker.THROUGHPUT_RUNNERS:
        mine = [s for s in samples if s.runner == runner]
        if not mine:
            continue
        steady = [s.jobs / s.steady_seconds for s in mine if s.steady_seconds]
        theirs = rates.get(runner)
        ratio = f"{ours / theirs:.2f}x" if ours and theirs else "—"
        commands = common.median([s.commands_per_job or 0.0 for s in mine])
        finished = sum(s.finished for s in mine)
        total = sum(s.jobs for s in mine)
        rows.append(
            f"| `{runner}` | {mine[0].jobs:,} | {seconds_cell([s.seconds for s in mine], 2)} "
            f"| {theirs or 0:,.0f} | {common.median(steady) if steady else 0:,.0f} | {ratio} "
            f"| {commands:.1f} | {finished:,} of {total:,} |"
        )
    notes = []
    fork, two = rates.get("rq worker"), rates.get("2 SimpleWorkers")
    if ours and fork:
        notes.append(
            f"- Goal procman ≥ 8x `rq worker`: {ours / fork:.1f}x → {verdict(ours >= 8 * fork)}"
        )
    if ours and two:
        notes.append(
            f"- Goal procman ≥ two SimpleWorkers: {ours / two:.2f}x → {verdict(ours >= two)}"
        )
    return "### Throughput: no-op jobs, burst mode\n\n" + "\n".join([*rows, "", *notes])


def _worker_latency(samples: list[worker.Latency]) -> str:
    rows = [
        "| worker (idle) | p50 ms, median (runs) | p99 ms, median (runs) | samples | missing |",
        "|---|---|---|---|---|",
    ]
    medians: dict[str, tuple[float, float]] = {}
    for runner in worker.LATENCY_RUNNERS:
        mine = [s for s in samples if s.runner == runner and s.seconds]
        if not mine:
            continue
        p50 = [1000 * common.percentile(s.seconds, 0.5) for s in mine]
        p99 = [1000 * common.percentile(s.seconds, 0.99) for s in mine]
        medians[runner] = (common.median(p50), common.median(p99))
        rows.append(
            f"| {runner} | {seconds_cell(list(p50), 2)} | {seconds_cell(list(p99), 2)} "
            f"| {sum(len(s.seconds) for s in mine):,} | {sum(s.missing for s in mine)} |"
        )
    notes = []
    for runner in worker.LATENCY_RUNNERS[:2]:
        if runner in medians:
            p50, p99 = medians[runner]
            notes.append(
                f"- Goal {runner}: p50 under 5 ms ({p50:.2f}) and p99 under 10 ms ({p99:.2f}) → "
                f"{verdict(p50 < 5 and p99 < 10)}"
            )
    return "### Latency: enqueue to job start, idle worker\n\n" + "\n".join([*rows, "", *notes])


def _worker_crash(samples: list[worker.Crash]) -> str:
    rows = [
        "| worker | jobs | s until every job ended | SIGKILLs | of them with a job in flight "
        "| requeued after, ms p50 / p90 / max | not requeued | end states | lost | run twice |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in samples:
        requeue = "never (RQ does not requeue)" if s.runner != "procman worker" else "—"
        if s.requeue_seconds:
            ms = [1000 * common.percentile(s.requeue_seconds, f) for f in (0.5, 0.9, 1.0)]
            requeue = " / ".join(f"{v:.0f}" for v in ms)
        kills = ", ".join(f"{n} {kind}" for kind, n in s.kills.items())
        states = ", ".join(f"{n:,} {state}" for state, n in sorted(s.states.items()))
        took = f"{s.seconds:.1f}" if s.seconds else "not all"
        rows.append(
            f"| {s.runner} | {s.jobs:,} | {took} | {kills} | {s.in_flight_kills} | {requeue} "
            f"| {s.not_requeued} | {states} | **{s.lost}** | {s.twice} |"
        )
    notes = []
    for s in samples:
        if s.runner == "procman worker":
            notes.append(f"- Goal procman loses no job: {s.lost} lost → {verdict(s.lost == 0)}")
            if s.requeue_seconds:
                worst = max(s.requeue_seconds)
                notes.append(
                    f"- Goal a dead worker's jobs requeued within 30 s: max {worst:.2f} s → "
                    f"{verdict(worst <= 30 and not s.not_requeued)}"
                )
    return (
        f"### Crash: {worker.CRASH_CONCURRENCY} workers, one SIGKILLed every "
        f"{1000 * worker.KILL_EVERY[0]:.0f}-{1000 * worker.KILL_EVERY[1]:.0f} ms\n\n"
        + "\n".join([*rows, "", *notes])
    )


def _deploys(rounds: list[deploy.Round], attribute: str, shell: str) -> list[deploy.Deploy]:
    found = [getattr(r, attribute) for r in rounds if r.shell == shell]
    return [d for d in found if d is not None]


def _ok_median(samples: list[deploy.Deploy]) -> float | None:
    done = [d.seconds for d in samples if d.ok]
    return common.median(done) if done else None


def _wall(samples: list[deploy.Deploy]) -> str:
    return seconds_cell([d.seconds if d.ok else None for d in samples], 2)


def _deploy_cells(samples: list[deploy.Deploy]) -> str:
    """wall | phases | uploaded / built on | CLI CPU | machine CPU, for successful runs."""
    if not samples:
        return "not run | — | — | — | —"
    ok = [d for d in samples if d.ok]
    phases = [d.phases() for d in ok if d.phases()]
    names = ("artifact", "ship", "restart", "finish", "exit")
    shown = "—"
    if phases:
        shown = " / ".join(f"{common.median([p[n] for p in phases]):.2f}" for n in names)
    counts = ", ".join(sorted({f"{d.uploaded} / {d.built_on}" for d in ok})) or "—"
    cli = f"{common.median([d.cli_cpu_seconds for d in ok]):.2f}" if ok else "—"
    machine = "—"
    if ok:
        cpu = common.median([d.machine_cpu_seconds for d in ok])
        cores = common.median([d.machine_cpu_seconds / d.seconds for d in ok])
        machine = f"{cpu:.2f} ({cores:.2f})"
    return f"{_wall(samples)} | {shown} | {counts} | {cli} | {machine}"


def _deploy_scaling(rounds: list[deploy.Round], baseline_skipped: str | None) -> str:
    rows = [
        "| hosts' shell | command | hosts | wall s, median (runs) | phases s, median: artifact / "
        "ship / restart / finish / exit | uploaded / built on | procman CLI CPU s "
        "| machine CPU s (cores busy) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for shell in deploy.SHELLS:
        one, three = _deploys(rounds, "one", shell), _deploys(rounds, "three", shell)
        if not one and not three:
            continue
        rows.append(f"| `{shell}` | `procman deploy staging` | 1 | {_deploy_cells(one)} |")
        rows.append(f"| `{shell}` | `procman deploy staging3` | 3 | {_deploy_cells(three)} |")
        base: dict[int, float] = {}
        for count, attribute in ((1, "baseline_one"), (3, "baseline_three")):
            samples = [
                getattr(r, attribute)
                for r in rounds
                if r.shell == shell and getattr(r, attribute) is not None
            ]
            if not samples:
                continue
            values = [s.seconds if s.ok else None for s in samples]
            done = [v for v in values if v is not None]
            if done:
                base[count] = common.median(done)
            rows.append(
                f"| `{shell}` | baseline: `git archive \\| gzip`, `scp` + `ssh` per host "
                f"| {count} | {seconds_cell(values, 2)} | — | {count} / 0 | — | — |"
            )
        ours_one, ours_three = _ok_median(one), _ok_median(three)
        if ours_one and ours_three:
            ratio = ours_three / ours_one
            notes.append(
                f"- `{shell}`: goal a deploy to 3 hosts under 1.5x a deploy to 1 host: "
                f"{ours_three:.2f} s ÷ {ours_one:.2f} s = {ratio:.2f}x → {verdict(ratio < 1.5)}"
            )
        if 1 in base and 3 in base:
            notes.append(f"- `{shell}`: baseline, 3 hosts ÷ 1 host: {base[3] / base[1]:.2f}x")
        shown = [
            f"{ours / base[count]:.1f}x with {count} host{'s' if count > 1 else ''}"
            for count, ours in ((1, ours_one), (3, ours_three))
            if ours and count in base
        ]
        if shown:
            notes.append(f"- `{shell}`: procman ÷ baseline: {', '.join(shown)}")
    notes.append(
        "- the baseline only copies and unpacks: no lock, no checksum, no build command, no env "
        "file, no shared files, no history, no restart, no health check"
    )
    if baseline_skipped:
        notes.append(f"- baseline skipped: {baseline_skipped}")
    return (
        "### A deploy to 1 host and to 3 hosts (fresh /srv, the artifact built each time)\n\n"
        + "\n".join([*rows, "", *notes])
    )


def _deploy_again(rounds: list[deploy.Round]) -> str:
    rows = [
        "| hosts' shell | hosts | first deploy s, median | the same commit again s, median "
        "(runs) | again ÷ first | phases s, again: artifact / ship / restart / finish / exit "
        "| uploaded to / built on, again (every run) | same release |",
        "|---|---|---|---|---|---|---|---|",
    ]
    uploads: list[int | None] = []
    for shell in deploy.SHELLS:
        for count, first_name, again_name in (
            (1, "one", "one_again"),
            (3, "three", "three_again"),
        ):
            firsts = _deploys(rounds, first_name, shell)
            agains = _deploys(rounds, again_name, shell)
            if not agains:
                continue
            first, again = _ok_median(firsts), _ok_median(agains)
            ratio = f"{again / first:.2f}" if first and again else "—"
            counts = " ; ".join(f"{d.uploaded} / {d.built_on}" for d in agains)
            uploads += [d.uploaded for d in agains]
            same = all(
                a.release_id is not None and a.release_id == f.release_id
                for f, a in zip(firsts, agains, strict=False)
            )
            phases = [d.phases() for d in agains if d.ok and d.phases()]
            names = ("artifact", "ship", "restart", "finish", "exit")
            shown = "—"
            if phases:
                shown = " / ".join(f"{common.median([p[n] for p in phases]):.2f}" for n in names)
            rows.append(
                f"| `{shell}` | {count} | {first or 0:.2f} | {_wall(agains)} | {ratio} "
                f"| {shown} | {counts} | {'yes' if same else 'no'} |"
            )
    met = bool(uploads) and all(u == 0 for u in uploads)
    notes = [
        f"- Goal a repeated deploy of the same commit uploads nothing: uploaded to "
        f"{sum(u or 0 for u in uploads)} hosts in {len(uploads)} repeated deploys → "
        f"{verdict(met)}"
    ]
    return "### The same commit deployed again\n\n" + "\n".join([*rows, "", *notes])


def _deploy_promotion(rounds: list[deploy.Round]) -> str:
    rows = [
        "| hosts' shell | command | hosts | wall s, median (runs) | launch → its release line "
        "s, median | that line | uploaded / built on | local artifact store |",
        "|---|---|---|---|---|---|---|---|",
    ]
    promoted_all: list[deploy.Deploy] = []
    for shell in deploy.SHELLS:
        built, promoted = _deploys(rounds, "one", shell), _deploys(rounds, "promote", shell)
        promoted_all += promoted
        for label, samples in (
            ("`procman deploy staging` (builds the artifact)", built),
            ("`procman deploy production` (promotion from staging)", promoted),
        ):
            if not samples:
                continue
            ok = [d for d in samples if d.ok]
            at = [d.artifact_seconds for d in ok if d.artifact_seconds is not None]
            words = ", ".join(sorted({str(d.artifact) for d in ok})) or "—"
            counts = ", ".join(sorted({f"{d.uploaded} / {d.built_on}" for d in ok})) or "—"
            store = "—"
            if any(d.store_unchanged is not None for d in samples):
                unchanged = sum(bool(d.store_unchanged) for d in samples)
                store = f"unchanged in {unchanged} of {len(samples)} runs"
            rows.append(
                f"| `{shell}` | {label} | {samples[0].hosts} | {_wall(samples)} "
                f"| {common.median(at) if at else 0:.2f} | {words} | {counts} | {store} |"
            )
    met = bool(promoted_all) and all(
        d.ok and d.store_unchanged and d.artifact == "promoted" for d in promoted_all
    )
    notes = [
        "- Goal a promotion with the artifact cached spends no time building it: "
        + (
            f"all {len(promoted_all)} promotions reused the staging artifact (local store "
            f'unchanged, a "promoting" line, no "built") → {verdict(met)}'
            if promoted_all
            else "not run"
        )
    ]
    return "### Promotion to production (2 fresh hosts)\n\n" + "\n".join([*rows, "", *notes])


def _deploy_problems(results: deploy.Results) -> str:
    failed = [
        deploy.describe(d)
        for r in results.rounds
        for d in (r.one, r.one_again, r.promote, r.three, r.three_again)
        if d is not None and not d.ok
    ]
    failed += [
        f"baseline, {b.hosts} host(s): {b.error}"
        for r in results.rounds
        for b in (r.baseline_one, r.baseline_three)
        if b is not None and not b.ok
    ]
    left = [n for r in results.rounds for n in r.left_running] + results.left_at_exit
    lines = [
        "- failed runs: " + ("; ".join(failed) if failed else "none"),
        "- processes still running on the hosts 5 s after procman stopped them (then killed): "
        + ("; ".join(left) if left else "none"),
        "- local processes left behind: " + common.summarize(results.local_leftovers),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.pop("PYTHONUNBUFFERED", None)
    sys.exit(main())
