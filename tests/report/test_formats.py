"""labctl.formats: writer → reader round trips on the research notes' samples (the report's fixtures), and
the host agent's compact records give the same series as the verbatim logs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labctl.analysis.clock import HostClock
from labctl.analysis.mountstats import parse_mountstats_log, read_mountstats_record
from labctl.analysis.series import SeriesStore
from labctl.formats import mountstats, procmounts, records

FIXTURES = Path(__file__).parent / "fixtures"


def test_octal_escaping_round_trips_and_mount_lines_parse():
    odd = "/mnt/with space\tand\\slash\nline"
    assert procmounts.unescape(procmounts.escape(odd)) == odd
    line = procmounts.MountLine("srv:/a b", odd, "nfs4", "rw,vers=4.1").format()
    assert procmounts.find(line + "\n", odd)[0].device == "srv:/a b"


def test_a_mountstats_entry_written_back_reads_the_same():
    text = (FIXTURES / "mountstats_a1_v41.txt").read_text()
    entry = mountstats.pick(mountstats.parse_entries(text.splitlines()))
    (again,) = mountstats.parse_entries(entry.format().splitlines())
    assert again == entry and entry.complete()


def test_compact_mountstats_records_give_the_series_of_the_verbatim_log(tmp_path):
    bodies = [(FIXTURES / "mountstats_a1_v41.txt").read_text()]
    bodies += [(FIXTURES / "mountstats_a1_v41_snap2_synthetic.txt").read_text()] * 3
    log, compact_path = tmp_path / "mountstats.log", tmp_path / "mountstats.f64"
    rows = records.Appender(compact_path, mountstats.COLUMNS)
    with log.open("w") as fh:
        for k, body in enumerate(bodies):
            fh.write(mountstats.format_snapshot(1000 + 5 * k, 500 + 5 * k, body))
            entry = mountstats.pick(mountstats.parse_entries(body.splitlines()))
            rows.row(mountstats.record(1000 + 5 * k, 500 + 5 * k, entry))
    rows.fh.write(b"\0" * 12)  # a row cut short (the sampler stopped mid-row): not a row
    rows.close()
    verbatim, compact = SeriesStore(), SeriesStore()
    parse_mountstats_log(log, "h", verbatim, HostClock(offset_s=2.5))
    assert read_mountstats_record(compact_path, "h", compact, HostClock(offset_s=2.5)) is not None
    assert sorted(verbatim.series) == sorted(compact.series)
    for key, s in verbatim.series.items():
        np.testing.assert_allclose(np.asarray(compact.series[key].ts), np.asarray(s.ts))
        np.testing.assert_allclose(np.asarray(compact.series[key].values), np.asarray(s.values))


def test_compact_nfsiostat_records_give_the_series_of_the_verbatim_log(tmp_path):
    """The agent's rows (its Reader over the lines it logs) read back as the verbatim log parses."""
    from labctl.analysis.nfsiostat import parse_nfsiostat, read_nfsiostat_record
    from labctl.formats import nfsiostat
    from tests.report.conftest import with_ts

    text = with_ts((FIXTURES / "nfsiostat_s3_2.6.2.log").read_text(), 1000.0, 5.0)
    log, compact_path = tmp_path / "nfsiostat.log", tmp_path / "nfsiostat.f64"
    log.write_text(text)
    rows: list = []
    wide = nfsiostat.Rows(rows.append)
    reader = nfsiostat.Reader(wide.sink)
    for line in text.splitlines():
        reader.line(line)
    wide.flush()
    records.write(compact_path, nfsiostat.COLUMNS, rows)
    verbatim, compact = SeriesStore(), SeriesStore()
    parse_nfsiostat(log, "h", verbatim, HostClock(offset_s=1.0))
    assert read_nfsiostat_record(compact_path, "h", compact, HostClock(offset_s=1.0)) is not None
    assert len(rows) == 1 and sorted(verbatim.series) == sorted(compact.series)
    names, back = records.read(compact_path)  # the stdlib reader: the same numbers, NaN where none
    assert names == nfsiostat.COLUMNS
    np.testing.assert_array_equal(np.array(back), np.array([[np.nan if v is None else v for v in rows[0]]]))
    for key, s in verbatim.series.items():
        other = compact.series[key]
        assert list(other.ts) == list(s.ts) and list(other.values) == list(s.values)


def test_nfsiostat_blocks_written_by_the_writer_read_back():
    from labctl.formats import nfsiostat

    got: list[tuple[str, float]] = []
    reader = nfsiostat.Reader(lambda m, u, t, v: got.append((m, round(v, 3))), skip_first=False)
    read = ("read", [0.408, 21.038, 51.533, 13.633, 13.724, 0.067], (0, 0.0), (0, 0.0))
    block = nfsiostat.format_block("srv:/a", "/mnt/a", (11.237, 0.0), [read])
    fixture = (FIXTURES / "nfsiostat_s3_2.6.2.log").read_text()
    assert block.splitlines()[3] in fixture and block.splitlines()[6] in fixture  # the header lines, verbatim
    for line in ["#ts 100.0", *block.splitlines()]:
        reader.line(line)
    assert ("nfsiostat.read.bytes_rate", round(21.038 * 1024, 3)) in got
    assert ("nfsiostat.read.rtt_ms", 13.633) in got and ("nfsiostat.rpc.ops_rate", 11.237) in got


def test_the_shipped_bpftrace_shape_and_the_older_one_read_the_same():
    from labctl.formats import bpftrace

    def read(lines: list[str]) -> bpftrace.Trace:
        trace = bpftrace.Trace()
        for line in lines:
            trace.line(line.encode())
        trace.close()
        return trace

    tick = [bpftrace.marker("start", 1), bpftrace.marker("tick", 10**9)]
    shipped = read([*tick, bpftrace.record("map", {"@io": {"0": 300, "2": 3}}),
                    bpftrace.marker("tick", 2 * 10**9), bpftrace.marker("totals", 2 * 10**9),
                    bpftrace.record("map", {"@read_bytes": {"python": 100, "pt_data_worker": 200}}),
                    bpftrace.record("map", {"@read_calls": {"python": 1, "pt_data_worker": 2}}),
                    bpftrace.marker("end", 2 * 10**9)])
    older = read([*tick, bpftrace.record("map", {"@read_bytes": {"python": 100, "pt_data_worker": 200}}),
                  bpftrace.record("map", {"@read_calls": {"python": 1, "pt_data_worker": 2}}),
                  bpftrace.marker("tick", 2 * 10**9), bpftrace.marker("end", 2 * 10**9)])
    assert shipped.ticks == older.ticks == [10**9, 2 * 10**9] and shipped.start == 1
    assert shipped.sums == older.sums and shipped.sums["read_bytes"] == [300.0, 0.0]
    assert shipped.by_comm == older.by_comm and shipped.by_comm["read_calls"]["pt_data_worker"] == 2


def test_dmon_rows_and_the_agent_s_last_sample():
    from labctl.formats import dmon

    lines = (FIXTURES / "dmon_d_8gpu_gpm.log").read_text().splitlines()
    rows = [r for r in dmon.rows(lines) if r is not None]
    assert rows and all(len(toks) == len(names) for names, _, toks in rows[:-1])
    written = (dmon.format_header(["gpu", "sm"], ["Idx", "%"]) + dmon.format_row(["0", "40"])
               + dmon.format_row(["1", "60"]) + dmon.format_row(["0", "9"])).splitlines()
    assert dmon.last_sample_sm(written, complete=True) == 9.0  # no Date/Time: the last row
    assert dmon.last_sample_sm(written, complete=False, gpus=2) == 60.0  # the last line still being written


def test_trainer_log_lines_written_read_back_and_progress():
    from labctl.formats import trainlog

    line = trainlog.format_line((2024, 1, 1, 12, 0, 5, 7), "INFO", "Training Epoch: 2 / 3")
    m = trainlog.PREFIX.match(line)
    assert m is not None and m[8] == "INFO" and trainlog.EPOCH.search(m[9])
    bar = "train loss: 1.25:  50%|#####     | 5/10 [00:10<00:10,  1.00it/s]"
    text = "\n".join([line, trainlog.format_line((2024, 1, 1, 12, 0, 6, 0), "INFO", bar)])
    assert trainlog.progress(text) == {"epoch": 2, "epochs": 3, "step": 5, "total": 10, "loss": 1.25,
                                       "phase": "train"}


def _same_series(a: SeriesStore, b: SeriesStore) -> None:
    assert a.series and sorted(a.series) == sorted(b.series)
    for key, s in a.series.items():
        assert b.series[key].unit == s.unit
        assert list(b.series[key].ts) == list(s.ts) and list(b.series[key].values) == list(s.values)


def test_the_agent_s_dmon_csv_gives_the_series_of_the_verbatim_log(tmp_path):
    from labctl.analysis.dmon import parse_dmon
    from labctl.formats import dmon

    clock = HostClock(offset_s=3.0, utc_offset_s=3600.0, utc_offset_known=True)
    for name in ("dmon_a_new_dt_ctrlc.log", "dmon_b_old_5char.log"):
        log = tmp_path / name / "dmon.log"
        log.parent.mkdir()
        log.write_bytes((FIXTURES / name).read_bytes())
        verbatim, compact = SeriesStore(), SeriesStore()
        by_rows = parse_dmon(log, "h", verbatim, clock)
        assert dmon.write_compact(log)
        by_columns = parse_dmon(log, "h", compact, clock)
        assert by_columns.path.endswith("dmon.f64") and by_columns.records == by_rows.records
        assert by_columns.skipped.get("short_sample") == by_rows.skipped.get("short_sample")
        _same_series(verbatim, compact)


def test_a_dmon_log_without_dates_gets_no_compact_record(tmp_path):
    from labctl.formats import dmon

    log = tmp_path / "dmon.log"
    log.write_bytes((FIXTURES / "dmon_d_8gpu_gpm.log").read_bytes())
    assert not dmon.write_compact(log) and not (tmp_path / "dmon.f64").exists()


def test_the_agent_s_compact_bpftrace_gives_what_the_verbatim_trace_gives(tmp_path):
    from labctl.analysis.bpftrace import parse_bpftrace
    from labctl.formats import bpftrace

    for name in ("bpftrace_io_by_second_v0.17.jsonl", "bpftrace_v0.17_records.jsonl"):
        trace = tmp_path / name / "bpftrace.jsonl"
        trace.parent.mkdir()
        trace.write_bytes((FIXTURES / name).read_bytes() + b'{"type": "printf", "da')  # a last line cut short
        verbatim, compact = SeriesStore(), SeriesStore()
        a = parse_bpftrace(trace, "h", verbatim, HostClock(offset_s=2.0), 1000.0)
        bpftrace.write_compact(trace)
        assert all((trace.parent / f).exists() for f in bpftrace.COMPACT)
        b = parse_bpftrace(trace, "h", compact, HostClock(offset_s=2.0), 1000.0)
        _same_series(verbatim, compact)
        assert a.stats.to_dict() == b.stats.to_dict() and a.stats.skipped["truncated_last_line"] == 1
        assert (a.by_comm, a.hists, a.opens, a.lost_events, a.probes) == \
            (b.by_comm, b.hists, b.opens, b.lost_events, b.probes)
    (trace.parent / "bpftrace.totals.json").write_text('{"start": null}')  # damaged: the verbatim trace
    again = SeriesStore()
    assert parse_bpftrace(trace, "h", again, HostClock(offset_s=2.0), 1000.0).stats.to_dict() \
        == a.stats.to_dict()
    _same_series(verbatim, again)


def test_the_agent_s_nfsiostat_sampler_writes_a_row_per_block_that_reads_as_its_log(tmp_path):
    """hostmon.py's nfsiostat sampler over a stand-in `nfsiostat` printing a real capture three times."""
    import os
    import subprocess
    import sys

    from labctl.analysis.nfsiostat import parse_nfsiostat, read_nfsiostat_record

    source = FIXTURES / "nfsiostat_s3_2.6.2.log"
    capture = source.read_text()
    fake = tmp_path / "bin" / "nfsiostat"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ncat {source} {source} {source}\n")
    fake.chmod(0o755)
    log = tmp_path / "nfsiostat.log"
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    subprocess.run([sys.executable, "-m", "labctl.experiment.agent", "hostmon", "nfsiostat", "1", "/mnt/x",
                    str(log)], env=env, check=True, timeout=60)
    assert log.read_text().count("#ts ") == 3 * capture.count(" mounted on ")
    verbatim, compact = SeriesStore(), SeriesStore()
    parse_nfsiostat(log, "h", verbatim, HostClock(), nconnect=4)
    stats = read_nfsiostat_record(tmp_path / "nfsiostat.f64", "h", compact, HostClock(), nconnect=4)
    assert stats is not None and stats.lines == 1 + 5  # every block but the first (since mount)
    assert stats.skipped == {"top_line_nconnect": 5}
    _same_series(verbatim, compact)


@pytest.mark.parametrize("content", [
    b"ts,mono,age\n1795959001,1001,101\n",  # a CSV record, as an older agent wrote it
    records.header(("ts", "mono", "age")) + records.pack([1795959001.0, 1001.0, 101.0]),  # other columns
    b"",  # the sampler stopped before its header
], ids=["csv", "other-columns", "empty"])
def test_a_compact_record_the_report_cannot_use_leaves_it_to_the_verbatim_log(tmp_path, content):
    from benchmarks.synthbundle import SynthSpec, write_run
    from labctl.report.analyse import analyse

    spec = SynthSpec(warmup_s=5, train_s=60, cooldown_s=5, checkpoints=[], dataset_read_s=10,
                     sources=("mountstats",))
    write_run(tmp_path / "good", spec)
    write_run(tmp_path / "bad", spec)
    (tmp_path / "bad" / "raw" / "gpu1" / "mountstats.f64").write_bytes(content)
    good, bad = (analyse(tmp_path / name, write=False) for name in ("good", "bad"))
    assert [Path(p.path).name for p in good.run.parse if p.source == "mountstats"] == ["mountstats.f64"]
    assert [Path(p.path).name for p in bad.run.parse if p.source == "mountstats"] == ["mountstats.log"]
    assert sorted(bad.binned) == sorted(good.binned) and len(good.binned) > 10
    for key, b in good.binned.items():
        np.testing.assert_array_equal(bad.binned[key].secs, b.secs)
        np.testing.assert_allclose(bad.binned[key].values, b.values, rtol=1e-12, err_msg=str(key))
