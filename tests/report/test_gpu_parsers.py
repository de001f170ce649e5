"""nvidia-smi dmon (samples A–E) fixtures parse to the expected numbers."""

from __future__ import annotations

import calendar

from labctl.analysis.clock import HostClock
from labctl.analysis.dmon import parse_dmon
from tests.report.conftest import FIXTURES, times, values


def test_dmon_sample_a_new_driver_with_ctrl_c_partial_line(store, utc):
    stats = parse_dmon(FIXTURES / "dmon_a_new_dt_ctrlc.log", "h", store, utc)
    assert stats.skipped["truncated_last_line"] == 1  # the ^C row has no newline
    assert stats.skipped["no_header"] == 1  # the echoed command line
    assert stats.records == 3 * 18  # 21 value columns, 3 of them "-"
    assert values(store, "gpu.sm", 0) == [0.0, 0.0, 0.0]
    assert values(store, "gpu.pwr", 0) == [6.0, 6.0, 6.0]
    assert values(store, "gpu.fb", 0) == [2 * 2**20] * 3  # MB -> bytes (MiB)
    assert values(store, "gpu.txpci", 0) == [2e6, 0.0, 2e6]  # MB/s -> B/s
    assert values(store, "gpu.mtemp", 0) == []  # "-" is no record, never 0
    assert times(store, "gpu.sm", 0)[0] == calendar.timegm((2026, 8, 16, 9, 22, 34, 0, 0, 0))


def test_dmon_ctrl_c_row_with_newline_is_a_column_count_skip(tmp_path, store, utc):
    p = tmp_path / "dmon.log"
    p.write_text((FIXTURES / "dmon_a_new_dt_ctrlc.log").read_text() + "\n")
    stats = parse_dmon(p, "h", store, utc)
    assert stats.skipped["column_count"] == 1 and "truncated_last_line" not in stats.skipped


def test_dmon_sample_b_old_widths_and_local_time_offset(store):
    clock = HostClock(offset_s=0.0, utc_offset_s=3600.0, utc_offset_known=True)  # host at UTC+1
    parse_dmon(FIXTURES / "dmon_b_old_5char.log", "h", store, clock)
    assert values(store, "gpu.pclk", 0) == [582.0, 1582.0]
    assert values(store, "gpu.mclk", 0) == [4006.0, 4006.0]
    ts = times(store, "gpu.pclk", 0)
    assert ts[1] - ts[0] == 2.0  # -d 2
    assert ts[0] == calendar.timegm((2021, 1, 2, 19, 12, 31, 0, 0, 0)) - 3600


def test_dmon_sample_c_single_temp_column(tmp_path, store, utc):
    stats = parse_dmon(FIXTURES / "dmon_c_single_temp.log", "h", store, utc)
    assert stats.records == 0 and not stats.skipped
    p = tmp_path / "c.log"  # constructed row under the real header, no Date/Time: placed from start_ts
    p.write_text((FIXTURES / "dmon_c_single_temp.log").read_text()
                 + "    0    37    19     5     1     0     0  4006   582     0     0   100     2     -     -"
                   "     0     0     1\n")
    parse_dmon(p, "h", store, utc, start_ts=1000.0)
    assert values(store, "gpu.temp", 0) == [19.0]
    assert times(store, "gpu.temp", 0) == [1000.0]


def test_dmon_sample_d_eight_gpus_gpm_dashes(store, utc):
    stats = parse_dmon(FIXTURES / "dmon_d_8gpu_gpm.log", "h", store, utc, start_ts=500.0)
    assert stats.records == 11 + 7 * 24
    assert values(store, "gpu.smutil", 0) == []  # GPU 0's first GPM sample is "-"
    assert values(store, "gpu.smutil", 3) == [0.0]
    assert values(store, "gpu.pwr", 7) == [54.0]
    assert {k[1] for k in store.series} == set(range(8))
    assert all(times(store, "gpu.pwr", g) == [500.0] for g in range(8))  # one sample: all rows share it
    assert store.get("h", 1, "dmon", "gpu.nvlrx").unit == "B/s"


def test_dmon_sample_e_index_wraparound_starts_a_new_sample(store, utc):
    parse_dmon(FIXTURES / "dmon_e_dash.log", "h", store, utc, start_ts=100.0, interval_s=1.0)
    assert values(store, "gpu.sm", 0) == [1.0, 0.0]
    assert times(store, "gpu.sm", 0) == [100.0, 101.0]
    assert values(store, "gpu.mtemp", 0) == []


def test_dmon_repeated_headers_rebind_columns(tmp_path, store, utc):
    text = ("# gpu   pwr    sm\n# Idx     W     %\n    0    10    50\n"
            "# gpu    sm   pwr\n# Idx     %     W\n    0    70    20\n")
    p = tmp_path / "d.log"
    p.write_text(text)
    parse_dmon(p, "h", store, utc, start_ts=0.0)
    assert values(store, "gpu.sm", 0) == [50.0, 70.0]
    assert values(store, "gpu.pwr", 0) == [10.0, 20.0]
