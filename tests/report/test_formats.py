"""labctl.formats: writer → reader round trips on the research notes' samples (the report's fixtures), and
the host agent's compact records give the same series as the verbatim logs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labctl.analysis.clock import HostClock
from labctl.analysis.compact import read_mountstats
from labctl.analysis.mountstats import parse_mountstats_log
from labctl.analysis.series import SeriesStore
from labctl.formats import mountstats, procmounts

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
    log, csv = tmp_path / "mountstats.log", tmp_path / "mountstats.csv"
    rows = [",".join(mountstats.COLUMNS)]
    with log.open("w") as fh:
        for k, body in enumerate(bodies):
            fh.write(mountstats.format_snapshot(1000 + 5 * k, 500 + 5 * k, body))
            entry = mountstats.pick(mountstats.parse_entries(body.splitlines()))
            rows.append(",".join(mountstats.record(1000 + 5 * k, 500 + 5 * k, entry)))
    csv.write_text("\n".join(rows) + "\n")
    verbatim, compact = SeriesStore(), SeriesStore()
    parse_mountstats_log(log, "h", verbatim, HostClock(offset_s=2.5))
    assert read_mountstats(csv, "h", compact, HostClock(offset_s=2.5)) is not None
    assert sorted(verbatim.series) == sorted(compact.series)
    for key, s in verbatim.series.items():
        np.testing.assert_allclose(np.asarray(compact.series[key].ts), np.asarray(s.ts))
        np.testing.assert_allclose(np.asarray(compact.series[key].values), np.asarray(s.values))
