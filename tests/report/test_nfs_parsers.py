"""nfsiostat (every format variant) and mountstats (snapshots, resets, overflow, nconnect, pNFS) fixtures."""

from __future__ import annotations

import calendar

import pytest

from labctl.analysis.clock import HostClock
from labctl.analysis.lines import ParseStats
from labctl.analysis.mountstats import parse_mountstats_log
from labctl.analysis.nfsiostat import parse_nfsiostat
from labctl.formats.mountstats import format_snapshot, parse_entries
from tests.report.conftest import FIXTURES, values, with_ts


def _nfsiostat(tmp_path, store, name, *, nconnect=1, skip_first=True, ts=True):
    text = (FIXTURES / name).read_text()
    p = tmp_path / "nfsiostat.log"
    p.write_text(with_ts(text, 1000.0, 5.0) if ts else text)  # the bundle's "#ts" line before each block
    return parse_nfsiostat(p, "h", store, HostClock(), nconnect=nconnect, skip_first=skip_first)


def test_nfsiostat_2_6_2_drops_the_since_mount_block(tmp_path, store):
    stats = _nfsiostat(tmp_path, store, "nfsiostat_s3_2.6.2.log")
    assert stats.skipped["first_block_since_mount"] == 1
    assert values(store, "nfsiostat.read.ops_rate") == [1000.0]
    assert values(store, "nfsiostat.read.bytes_rate") == [pytest.approx(128324.219 * 1024)]
    assert values(store, "nfsiostat.read.bytes_per_op") == [pytest.approx(128.324 * 1024)]
    assert values(store, "nfsiostat.read.rtt_ms") == [1.9]
    assert values(store, "nfsiostat.read.exe_ms") == [2.02]
    assert values(store, "nfsiostat.read.queue_ms") == [0.008]
    assert values(store, "nfsiostat.read.retrans") == [0.0]
    assert values(store, "nfsiostat.read.errors") == [0.0]
    assert values(store, "nfsiostat.write.ops_rate") == [24.0]
    assert values(store, "nfsiostat.write.queue_ms") == [1.25]
    assert values(store, "nfsiostat.rpc.ops_rate") == [1034.0]
    assert values(store, "nfsiostat.read.bytes") == [pytest.approx(128324.219 * 1024 * 5)]  # rate × 5 s


@pytest.mark.parametrize(("name", "has_queue", "has_errors"), [
    ("nfsiostat_s3_variant_2.1.1.log", False, False),
    ("nfsiostat_s3_variant_2.3.4.log", True, False),
    ("nfsiostat_s3_variant_HEAD_m.log", True, True),
])
def test_nfsiostat_version_variants_map_columns_by_header(tmp_path, store, name, has_queue, has_errors):
    _nfsiostat(tmp_path, store, name)
    assert values(store, "nfsiostat.read.ops_rate") == [1000.0]
    assert values(store, "nfsiostat.read.bytes_rate")[0] == pytest.approx(128324.219 * 1024, rel=1e-4)
    assert values(store, "nfsiostat.read.exe_ms") == [2.02]
    assert bool(values(store, "nfsiostat.read.queue_ms")) is has_queue
    assert bool(values(store, "nfsiostat.read.errors")) is has_errors


def test_nfsiostat_nconnect_top_line_is_not_trusted(tmp_path, store):
    stats = _nfsiostat(tmp_path, store, "nfsiostat_s3_nconnect4_underreport.log", nconnect=4)
    assert values(store, "nfsiostat.rpc.ops_rate") == []  # 258.4 would under-report 1034 by 4x
    assert stats.skipped["top_line_nconnect"] == 1
    assert values(store, "nfsiostat.read.ops_rate") == [1000.0]  # per-op rows are unaffected


def test_nfsiostat_pre_2_2_1_single_block(tmp_path, store):
    _nfsiostat(tmp_path, store, "nfsiostat_s1_pre221.log", skip_first=False)
    assert values(store, "nfsiostat.read.ops_rate") == [0.687]
    assert values(store, "nfsiostat.read.rtt_ms") == [9.235]
    assert values(store, "nfsiostat.write.exe_ms") == [3.767]
    assert values(store, "nfsiostat.read.queue_ms") == []
    assert values(store, "nfsiostat.rpc.ops_rate") == [12.14]


def test_nfsiostat_very_old_op_s_format(tmp_path, store):
    _nfsiostat(tmp_path, store, "nfsiostat_s2_very_old.log", skip_first=False)
    assert values(store, "nfsiostat.rpc.ops_rate") == [2579.2]
    assert values(store, "nfsiostat.write.ops_rate") == [2578.2]
    assert values(store, "nfsiostat.write.exe_ms") == [13980.817]


def test_nfsiostat_pcp_variant_uses_its_timestamp(tmp_path, store):
    _nfsiostat(tmp_path, store, "nfsiostat_s4_pcp.log", skip_first=False, ts=False)
    assert values(store, "nfsiostat.read.ops_rate") == [108.0]
    assert values(store, "nfsiostat.read.queue_ms") == [0.019]
    key = next(k for k in store.series if k[3] == "nfsiostat.read.ops_rate")
    assert store.series[key].ts[0] == calendar.timegm((2026, 2, 26, 5, 20, 0, 0, 0, 0))


def _entries(name: str, stats: ParseStats | None = None):
    text = (FIXTURES / name).read_text()
    return list(parse_entries(text.split("\n"), stats or ParseStats("t")))


def test_mountstats_appendix_a1_entry():
    entries = _entries("mountstats_a1_v41.txt")
    assert [e.fstype for e in entries] == ["rootfs", "proc", "nfs4"]
    e = entries[2]
    assert e.opts["vers"] == "4.1" and e.statvers == "1.1" and e.age == 83520
    assert len(e.events) == 27 and len(e.bytes) == 8 and e.bytes[4] == 1788561151
    assert e.xprts == [("tcp", [940, 0, 2, 0, 1, 938505, 938504, 0, 12756069, 0, 32, 254729, 10823602])]
    assert e.ops["READ"][:2] == [34096, 34096] and len(e.ops["READ"]) == 9
    assert e.nfsv4["pnfs"] == "not configured"


def test_mountstats_interval_from_two_snapshots_matches_nfsiostat(tmp_path, store, utc):
    p = tmp_path / "mountstats.log"
    snap2 = (FIXTURES / "mountstats_a1_v41_snap2_synthetic.txt").read_text()
    p.write_text("#ts 1000.000 500.000\n" + (FIXTURES / "mountstats_a1_v41.txt").read_text()
                 + "#ts 1005.000 505.000\n" + snap2)
    stats, info = parse_mountstats_log(p, "h", store, utc)
    assert info is not None and info.opts["vers"] == "4.1" and info.xprt_count == 1
    assert values(store, "nfs.read.ops_rate") == [1000.0]
    assert values(store, "nfs.read.bytes_rate") == [131_072_000.0]
    assert values(store, "nfs.read.bytes") == [655_360_000.0]
    assert values(store, "nfs.read.rtt_ms") == [1.9]
    assert values(store, "nfs.read.exe_ms") == [2.02]
    assert values(store, "nfs.read.queue_ms") == [0.008]
    assert values(store, "nfs.write.ops_rate") == [24.0]
    assert values(store, "nfs.xprt.sends_rate") == [1034.0]
    assert values(store, "nfs.getattr.ops_rate") == [10.0]
    assert values(store, "nfs.errors") == [0.0]
    assert stats.records > 0 and not stats.skipped


def test_mountstats_reset_overflow_and_garbage(tmp_path, store, utc):
    a1 = (FIXTURES / "mountstats_a1_v41.txt").read_text()
    s2 = (FIXTURES / "mountstats_a1_v41_snap2_synthetic.txt").read_text()
    remount = a1.replace("\tage:\t83520", "\tage:\t3").replace("2021340783 39056395530", "1 2")
    overflow = s2.replace("READ: 39096 39096 0 8143096 2448102744 2312",
                          "READ: 39096 39096 0 8143096 2448102744 18446743919241604546")
    p = tmp_path / "mountstats.log"
    p.write_text("garbage before any snapshot\n#ts 1000 500\n" + a1 + "#ts 1005 505\n" + s2
                 + "#ts 1010 510\n" + remount + "#ts bad\n" + s2 + "#ts 1020 520\n" + a1
                 + "#ts 1025 525\n" + overflow + "#ts 1030 530\n" + a1[:900])
    stats, _ = parse_mountstats_log(p, "h", store, utc)
    # 1000→1005; 1010 is a remount (new baseline); 1010→1020 (no decrease: zero traffic); 1020→1025
    assert values(store, "nfs.read.ops_rate") == [1000.0, 0.0, 1000.0]
    assert values(store, "nfs.read.queue_ms") == [0.008]  # the overflowed queue counter is dropped
    assert len(values(store, "nfs.read.rtt_ms")) == 2  # none for the interval without READs
    assert stats.skipped["counter_reset"] >= 1  # remount (age and bytes went down)
    assert stats.skipped["absurd_delta"] == 1
    assert stats.skipped["bad_ts_line"] == 1 and stats.skipped["outside_snapshot"] >= 1
    assert stats.skipped["incomplete_snapshot"] >= 1  # the cut-off last one


def test_mountstats_nconnect16_head_and_pnfs_scsi_excerpt():
    stats = ParseStats("t")
    (e,) = _entries("mountstats_nconnect16_head.txt", stats)
    assert e.opts["nconnect"] == "16" and e.fstype == "nfs" and len(e.xprts) == 2
    assert stats.skipped["bad_counter_line"] == 1  # the cut-short third xprt line
    (p,) = _entries("mountstats_pnfs_scsi_excerpt.txt")
    assert p.nfsv4["pnfs"] == "LAYOUT_SCSI"
    assert p.ops["LAYOUTGET"] == [49, 49, 0, 11172, 9604, 2, 19448, 19454]  # 8 fields, no marker line
    assert p.ops["READ"] == [0] * 8


def test_mountstats_escaped_names_two_xprts_and_overflowed_access(tmp_path, store):
    (e,) = _entries("mountstats_escaped_path_overflow_constructed.txt")
    assert e.mount == "/mnt/my share" and e.device == "10.0.0.3:/fg llm"
    assert len(e.xprts) == 2 and len(e.events) == 25
    assert e.ops["ACCESS"][5] == 18446743919241604546
    later = _entries("mountstats_escaped_path_overflow_constructed.txt")[0]
    later.bytes = [b + 10 for b in later.bytes]
    later.xprts = [(p, [v + (5 if i == 5 else 0) for i, v in enumerate(n)]) for p, n in later.xprts]
    log = tmp_path / "mountstats.log"
    log.write_text(format_snapshot(1000, 10, e.format()) + format_snapshot(1001, 11, later.format()))
    parse_mountstats_log(log, "h", store, HostClock())
    assert values(store, "nfs.xprt.sends_rate") == [10.0]  # summed over both transports
    assert values(store, "nfs.xprt.count") == [2.0]


def test_nfsiostat_values_after_a_garbled_timestamp_are_not_given_the_last_block(tmp_path, store):
    """`#ts` starts a new sample: values before its mount line belong to no block (was a TypeError when the
    `#ts` line was garbled and the mount line unreadable)."""
    p = tmp_path / "nfsiostat.log"
    head = "getattr:   op/s   errors"
    p.write_text(f"#ts 1000.5\nsrv:/a mounted on /mnt/a:\n{head}\n 1.0 0\n"
                 f"#ts 1001.5\nsrv:/a mounted on /mnt/a:\n{head}\n 2.0 0\n"
                 f"#ts x\nodd mount line mounted on /mnt/a:\n{head}\n 3.0 0\n"
                 f"#ts 1002.5\nodd mount line mounted on /mnt/a:\n{head}\n 4.0 0\n")
    stats = parse_nfsiostat(p, "h", store, HostClock())
    assert values(store, "nfsiostat.getattr.ops_rate") == [2.0]
    assert stats.skipped["bad_ts_line"] == 1


def test_mountstats_times_are_moved_onto_the_controller_clock(tmp_path, store):
    """Each interval is stamped with its snapshot's host epoch minus the host's clock offset."""
    from tests.report.conftest import times

    a1 = (FIXTURES / "mountstats_a1_v41.txt").read_text()
    snap2 = (FIXTURES / "mountstats_a1_v41_snap2_synthetic.txt").read_text()
    p = tmp_path / "mountstats.log"
    p.write_text("".join(f"#ts {1000 + 5 * k}.000 {500 + 5 * k}.000\n{body}"
                         for k, body in enumerate([a1, snap2, snap2, snap2])))
    parse_mountstats_log(p, "h", store, HostClock(offset_s=2.5))
    assert times(store, "nfs.read.ops_rate") == [1002.5, 1007.5, 1012.5]
    assert times(store, "nfs.interval_s") == [1002.5, 1007.5, 1012.5]


def test_an_unterminated_last_nfsiostat_line_is_counted_as_truncated(tmp_path, store):
    """The lines before it are read and counted; the cut one is skipped, not parsed."""
    text = with_ts((FIXTURES / "nfsiostat_s3_2.6.2.log").read_text(), 1000.0, 5.0)
    whole = tmp_path / "whole.log"
    whole.write_text(text)
    complete = parse_nfsiostat(whole, "h", store, HostClock())
    cut = tmp_path / "cut.log"
    cut.write_text(text + "#ts 10")  # a line the monitor was still writing
    stats = parse_nfsiostat(cut, "h2", store, HostClock())
    assert stats.skipped["truncated_last_line"] == 1 and "truncated_last_line" not in complete.skipped
    assert stats.lines == complete.lines + 1 and stats.records == complete.records
    assert "bad_ts_line" not in stats.skipped  # the cut line was not parsed
