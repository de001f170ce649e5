"""`labctl report RUN_DIR` and `labctl compare RUN…`: thin wrappers over labctl.analysis / labctl.report."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from labctl.errors import StateError, UsageError

console = Console(highlight=False)


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir: Path) -> None:
    """Analyse a run bundle: write timeline.parquet, summary.json and report.html into RUN_DIR."""
    from labctl.report.analyse import analyse

    if not run_dir.exists():
        raise StateError("run bundle not found", where=str(run_dir),
                         fix="pass the directory of a run (runs/<run-id>) written by `labctl run`")
    with console.status("analysing", spinner="dots") as status:
        result = analyse(run_dir, progress=lambda what: status.update(f"analysing: {what}"))
        status.update("writing report.html")
        from labctl.report.html import write_report  # matplotlib: only for a bundle that analysed

        write_report(result, run_dir / "report.html")
    s = result.summary
    util, stall = s["gpu"]["util_mean_pct"], s["stall_fraction"]
    util_txt = "—" if util is None else f"{util:.1f} %"
    stall_txt = "—" if stall is None else f"{stall * 100:.2f} %"
    console.print(f"GPU util {util_txt} · {len(s['checkpoints'])} checkpoint(s) · stall {stall_txt}")
    for w in s["warnings"]:
        console.print(f"[yellow]warning:[/] {w}", markup=True, soft_wrap=True)
    console.print(f"wrote {run_dir / 'report.html'}, summary.json, timeline.parquet")


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the comparison as a self-contained HTML page.")
def compare(runs: tuple[Path, ...], html_file: Path | None) -> None:
    """Set runs side by side, one column per RUN directory (for example nconnect=1 vs 16)."""
    from labctl.report.compare import compare_html, compare_table, load_summary

    if len(runs) < 1:
        raise UsageError("give at least one run directory")
    header, rows = compare_table([load_summary(r) for r in runs])
    table = Table(*header, title="labctl compare")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if html_file is not None:
        html_file.write_text(compare_html(header, rows), encoding="utf-8")
        console.print(f"wrote {html_file}")


COMMANDS = [report, compare]
