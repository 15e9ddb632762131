"""Append one benchmark run to benchmarks/RESULTS.md as a dated section of tables."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path

from benchmarks import run as settings

GIB = 1024**3


def _machine() -> str:
    cores = os.cpu_count()
    memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{cores} cores, {memory_bytes / GIB:.1f} GiB, {platform.platform()}, Python {platform.python_version()}"


def _seconds(step: dict, key: str = "median_s") -> str:
    if not step or "error" in step:
        return f"failed: {step.get('error', 'not run') if step else 'not run'}"
    return f"{step[key]:.3f}"


def _memory(step: dict) -> str:
    if not step or "peak_rss_bytes" not in step:
        return "—"
    return f"{step['peak_rss_bytes'] / GIB:.2f}"


def _load(values) -> str:
    return "/".join(f"{value:.1f}" for value in values) if values else "—"


def _verdict(ok: bool | None) -> str:
    if ok is None:
        return "—"
    return "met" if ok else "**missed**"


def append_results(path: Path, results: dict, options) -> None:
    """Append the run's tables to ``path``, creating the file with a heading if needed."""
    lines: list[str] = []
    if not path.exists():
        lines += [
            "# Benchmark results",
            "",
            "Each section is one run of `python -m benchmarks.run`; newer runs are appended.",
            "Times are medians of the timed runs after one warm-up, in seconds; memory is the",
            "peak resident set of the process that ran the step, in GiB.",
            "",
        ]
    size = results.get("size", {})
    lines += [
        f"## Run of {dt.date.today().isoformat()}",
        "",
        f"- Machine: {_machine()}",
        f"- Portfolio: {size.get('loans', 0):,} loans, {size.get('loan_months', 0):,} month-end rows, "
        f"{size.get('collection_actions', 0):,} collection actions (demo, seed {options.seed}, as-of {options.as_of})",
        f"- Timed runs per step: {options.runs} (imports: {options.import_runs})",
        f"- Started {results.get('started')}, finished {results.get('finished')}; load average "
        f"(1, 5, 15 min) {_load(results.get('load_average_start'))} at the start and "
        f"{_load(results.get('load_average_end'))} at the end (other work on the machine raises it)",
        "",
    ]
    generate = results.get("generate", {})
    if "seconds" in generate:
        lines += [
            f"Demo generation: {generate['seconds']:.1f} s, peak {generate['peak_rss_bytes'] / GIB:.2f} GiB "
            "(not a target).",
            "",
        ]

    rebuilt = results.get("facts", {})
    if rebuilt.get("rebuilt"):
        lines += [
            f"The reused demo database had no current fact tables; rebuilding them took "
            f"{rebuilt['seconds']:.1f} s (not a target; an import includes this step).",
            "",
        ]

    if "import" in results:
        lines += ["### Import of loans + month-end table", "",
                  "| source | median s | target s | peak GiB | verdict |", "|---|---|---|---|---|"]
        for file_format, step in results["import"].items():
            target = settings.IMPORT_TARGET_S[file_format]
            ok = None if "error" in step else step["median_s"] < target and step["peak_rss_bytes"] < settings.MEMORY_TARGET_BYTES
            lines.append(f"| {file_format} | {_seconds(step)} | {target:.0f} | {_memory(step)} | {_verdict(ok)} |")
        lines.append("")

    if not results.get("reports"):
        lines += _pages_section(results)
        with path.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        return

    lines += ["### Report tables", "",
              "| report | rows | median s | target s | peak GiB | scan floor s | ÷ floor | pandas s | pandas ÷ LoanLens | results equal | verdict |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, step in results.get("reports", {}).items():
        target = settings.COX_TARGET_S if name == "cox" else settings.REPORT_TARGET_S
        floor = results.get("floor", {}).get(name)
        pandas_step = results.get("pandas", {}).get(name)
        comparison = results.get("comparison", {}).get(name)
        ok = None
        floor_text = ratio_text = pandas_text = speedup_text = equal_text = "—"
        if "error" not in step:
            ok = step["median_s"] < target and step["peak_rss_bytes"] < settings.MEMORY_TARGET_BYTES
            if floor and "error" not in floor:
                ratio = step["median_s"] / floor["median_s"]
                floor_text, ratio_text = f"{floor['median_s']:.3f}", f"{ratio:.1f}"
                ok = ok and ratio <= settings.FLOOR_RATIO_TARGET
            if pandas_step and "error" not in pandas_step:
                speedup = pandas_step["median_s"] / step["median_s"]
                pandas_text, speedup_text = f"{pandas_step['median_s']:.2f}", f"{speedup:.1f}"
                ok = ok and speedup >= settings.PANDAS_SPEEDUP_TARGET
            elif pandas_step:
                pandas_text = _seconds(pandas_step)
            if comparison is not None:
                equal_text = "yes" if comparison["equal"] else f"**no**: {comparison['detail']}"
                ok = ok and comparison["equal"]
        rows = step.get("rows", "—")
        lines.append(
            f"| {name} | {rows} | {_seconds(step)} | {target:.0f} | {_memory(step)} | {floor_text} | "
            f"{ratio_text} | {pandas_text} | {speedup_text} | {equal_text} | {_verdict(ok)} |"
        )
    lines.append("")

    lines += _pages_section(results)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def _pages_section(results: dict) -> list[str]:
    lines: list[str] = []
    if "pages" in results:
        lines += ["### Dashboard pages in headless Chromium", "",
                  "| page | first load s | warm median s | target s | verdict |", "|---|---|---|---|---|"]
        for page, step in results["pages"].items():
            if "error" in step:
                lines.append(f"| {page} | failed: {step['error']} | | {settings.PAGE_TARGET_S:.0f} | **missed** |")
                continue
            ok = step["first_s"] < settings.PAGE_TARGET_S
            lines.append(
                f"| {page} | {step['first_s']:.2f} | {step['median_s']:.2f} | "
                f"{settings.PAGE_TARGET_S:.0f} | {_verdict(ok)} |"
            )
        lines.append("")
    return lines
