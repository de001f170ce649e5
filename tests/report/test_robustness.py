"""Garbage and truncated input yields skip counts, never an exception (hypothesis property tests)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.synthbundle import SynthCheckpoint, SynthSpec, write_run
from labctl.analysis.bpftrace import parse_bpftrace
from labctl.analysis.clock import HostClock
from labctl.analysis.dmon import parse_dmon
from labctl.analysis.mountstats import parse_mountstats_log
from labctl.analysis.nfsiostat import parse_nfsiostat
from labctl.analysis.series import SeriesStore
from labctl.analysis.trainlog import parse_trainlog
from labctl.report.analyse import analyse
from tests.report.conftest import FIXTURES

CLOCK = HostClock()
PARSERS = {
    "dmon_a_new_dt_ctrlc.log": lambda p, s: parse_dmon(p, "h", s, CLOCK, start_ts=0.0),
    "dmon_d_8gpu_gpm.log": lambda p, s: parse_dmon(p, "h", s, CLOCK, start_ts=0.0),
    "nfsiostat_s3_2.6.2.log": lambda p, s: parse_nfsiostat(p, "h", s, CLOCK, skip_first=False),
    "mountstats_a1_v41.txt": lambda p, s: parse_mountstats_log(p, "h", s, CLOCK)[0],
    "bpftrace_v0.17_records.jsonl": lambda p, s: parse_bpftrace(p, "h", s, CLOCK, 0.0).stats,
    "train_llmstudio.log": lambda p, s: parse_trainlog(p, "h", s, CLOCK).stats,
}
LINES = st.lists(st.one_of(st.binary(max_size=120), st.sampled_from([
    b"#ts 12 3", b"#ts x", b"# gpu sm", b"# Idx %", b"    0   50", b"device a mounted on /m with fstype nfs4",
    b"\tbytes:\t1 2 3", b"\tper-op statistics", b"\t  READ: 1 2", b"read:   ops/s  kB/s", b"  1.0 2.0",
    b'{"type": "printf", "data": "tick 5"}', b'{"type": "map", "data": {"@read_bytes": {"a": "x"}}}',
    b'{"type": "hist", "data": {"@read_size": [{"count": "z"}]}}', b"\xff\xfe\x00", b"",
    b"2024-01-01 12:00:00,000 - INFO: Training Epoch: 0 / 0"])), max_size=40)


def _run(name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_bytes(data)
        stats = PARSERS[name](p, SeriesStore())
        assert stats.records >= 0 and all(n > 0 for n in stats.skipped.values())


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(PARSERS)), lines=LINES)
def test_garbage_lines_are_counted_not_fatal(name, lines):
    _run(name, b"\n".join(lines))


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(PARSERS)), cut=st.floats(0, 1), junk=st.binary(max_size=64),
       at=st.floats(0, 1))
def test_real_captures_cut_or_spliced_anywhere(name, cut, junk, at):
    data = (FIXTURES / name).read_bytes()
    data = data[: int(len(data) * cut)]
    pos = int(len(data) * at)
    _run(name, data[:pos] + junk + data[pos:])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(victim=st.sampled_from(["dmon.log", "mountstats.log", "nfsiostat.log", "bpftrace.jsonl", "train.log",
                               "clock.json", "bpftrace.meta.json", "monitors.json"]),
       cut=st.floats(0, 1), junk=st.binary(max_size=200))
def test_a_damaged_bundle_still_analyses(tmp_path_factory, victim, cut, junk):
    base = tmp_path_factory.getbasetemp() / "bundle-src"
    if not base.exists():
        write_run(base, SynthSpec(warmup_s=5, train_s=120, cooldown_s=5, suppression_s=3, dataset_read_s=10,
                                  checkpoints=[SynthCheckpoint(40, 5, 400_000_000)]))
    with tempfile.TemporaryDirectory() as d:
        run = Path(d) / "run"
        shutil.copytree(base, run)
        p = run / "raw" / "gpu1" / victim
        data = p.read_bytes()
        p.write_bytes(data[: int(len(data) * cut)] + junk)
        s = analyse(run).summary
        assert isinstance(s["checkpoints"], list) and isinstance(s["warnings"], list)
