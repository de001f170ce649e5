"""The compiled scanner (labctl/analysis/_scan.c) against the pure-Python parser it speeds up: same output on
every fixture, on generated traces with every odd record, and across read-block boundaries."""

from __future__ import annotations

import re
import shutil
import sysconfig
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labctl.analysis import bpftrace as bt
from labctl.analysis.clock import HostClock
from labctl.analysis.native import PURE_ENV, scanner
from labctl.analysis.series import SeriesStore
from tests.report.conftest import FIXTURES

built = pytest.mark.skipif(scanner() is None, reason="labctl.analysis._scan is not built (no C compiler)")


def test_the_scanner_is_built_where_a_compiler_is(monkeypatch):
    """With a C compiler at install time the module must exist (a silent fallback would hide a bad build)."""
    if shutil.which(sysconfig.get_config_var("CC").split()[0]) is None:
        pytest.skip("no C compiler here: the pure-Python parsers are the only ones")
    monkeypatch.delenv(PURE_ENV, raising=False)
    scan = scanner()
    assert scan is not None
    source = Path(bt.__file__).with_name("_scan.c")
    if source.exists():  # a source checkout: the module must be built from the current source
        assert Path(scan.__file__).stat().st_mtime >= source.stat().st_mtime, "rerun: pip install -e ."


def parsed(path: Path, monkeypatch: pytest.MonkeyPatch, *, pure: bool, workers: int = 1) -> dict:
    """Everything `parse_bpftrace` reports, in comparable form."""
    if pure:
        monkeypatch.setenv(PURE_ENV, "1")
    else:
        monkeypatch.delenv(PURE_ENV, raising=False)
    store = SeriesStore()
    res = bt.parse_bpftrace(path, "h", store, HostClock(), 7.0, workers=workers)
    return {"series": {k: (list(s.ts), list(s.values)) for k, s in store.series.items()},
            "by_comm": res.by_comm, "hists": res.hists, "opens": res.opens, "lost": res.lost_events,
            "probes": res.probes, "lines": res.stats.lines, "skipped": dict(res.stats.skipped),
            "records": res.stats.records}


@built
@pytest.mark.parametrize("name", ["bpftrace_io_by_second_v0.17.jsonl", "bpftrace_v0.17_records.jsonl"])
def test_fixtures_parse_the_same(name, monkeypatch):
    native = parsed(FIXTURES / name, monkeypatch, pure=False)
    assert native == parsed(FIXTURES / name, monkeypatch, pure=True)
    assert native["series"]


@built
def test_a_synthetic_trace_split_over_threads_and_tiny_blocks(tmp_path, monkeypatch):
    from labctl.analysis.synth import SynthCheckpoint, SynthSpec, write_run

    write_run(tmp_path / "run", SynthSpec(sources=("bpftrace",), train_s=200,
                                          checkpoints=[SynthCheckpoint(80, 10, 300_000_000)]))
    path = tmp_path / "run" / "raw" / "gpu1" / "bpftrace.jsonl"
    pure = parsed(path, monkeypatch, pure=True)
    assert parsed(path, monkeypatch, pure=False) == pure
    monkeypatch.setattr(bt, "PARALLEL_MIN", 1)
    monkeypatch.setattr(bt, "CHUNK", 997)  # lines cut by every block boundary
    assert parsed(path, monkeypatch, pure=False, workers=3) == pure


COMMS = ["python", "pt_data_worker", "a b", "x: y", "", "ü", "tab\\there", "q\\\"uote", "br{ace"]
NUMS = st.one_of(st.integers(0, 10**6), st.integers(10**17, 10**19),
                 st.sampled_from([0, 2**63 - 1, 2**63, 10**19]))


def _map(name: str, pairs: list[tuple[str, int]], sep: str) -> str:
    inner = sep.join(f'"{c}": {v}' for c, v in pairs)
    return f'{{"type": "map", "data": {{"@{name}": {{{inner}}}}}}}'


def _hist(name: str, buckets: list[tuple[int, int, int]], drop_min: bool) -> str:
    items = [(f'{{"max": {hi}, "count": {n}}}' if drop_min and k == 0 else
              f'{{"min": {lo}, "max": {hi}, "count": {n}}}') for k, (lo, hi, n) in enumerate(buckets)]
    return f'{{"type": "hist", "data": {{"@{name}": [{", ".join(items)}]}}}}'


RECORD = st.one_of(
    st.builds(lambda n: f'{{"type": "printf", "data": "tick {n}\\n"}}', NUMS),
    st.builds(_map, st.sampled_from([*bt.SUM_MAPS, "ckpt_open", "odd"]),
              st.lists(st.tuples(st.sampled_from(COMMS), NUMS), max_size=8), st.sampled_from([", ", ","])),
    st.builds(_hist, st.sampled_from([*bt.HIST_MAPS, "odd"]),
              st.lists(st.tuples(st.integers(-5, 2**40), st.integers(-1, 2**40), NUMS), max_size=6),
              st.booleans()),
    st.builds(lambda w, n: f'{{"type": "printf", "data": "{w} {n}\\n"}}', st.sampled_from(["start", "end"]),
              st.integers(0, 10**12)),
    st.sampled_from(['{"type": "lost_events", "data": {"events": 3}}',
                     '{"type": "attached_probes", "data": {"probes": 9}}', "", "   ", "not json",
                     '{"type": "map", "data": {"@ckpt_open": {"python,/mnt/fg_llm/ck.bin": 2}}}',
                     '{"type": "map", "data": {"@read_bytes": 12}}', '{"type": "stats", "data": {}}']),
    st.text(max_size=40),
)


@built
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(RECORD, max_size=40), cr=st.booleans(), cut=st.integers(0, 30),
       chunk=st.sampled_from([5, 64, 1 << 20]))
def test_generated_traces_parse_the_same(tmp_path, monkeypatch, records, cr, cut, chunk):
    text = ("\r\n" if cr else "\n").join(records) + "\n"
    raw = text.encode("utf-8", "surrogatepass")[: max(len(text) - cut, 0)] if cut else text.encode(
        "utf-8", "surrogatepass")
    path = tmp_path / "t.jsonl"
    path.write_bytes(raw)
    monkeypatch.setattr(bt, "CHUNK", chunk)
    assert parsed(path, monkeypatch, pure=False) == parsed(path, monkeypatch, pure=True)


def ms_parsed(path: Path, monkeypatch: pytest.MonkeyPatch, *, pure: bool) -> dict:
    """Everything `parse_mountstats_log` reports, in comparable form."""
    from labctl.analysis.mountstats import parse_mountstats_log

    if pure:
        monkeypatch.setenv(PURE_ENV, "1")
    else:
        monkeypatch.delenv(PURE_ENV, raising=False)
    store = SeriesStore()
    stats, info = parse_mountstats_log(path, "h", store, HostClock(offset_s=0.25))
    return {"series": {k: (s.unit, list(s.ts), list(s.values)) for k, s in store.series.items()},
            "info": info, "lines": stats.lines, "records": stats.records, "skipped": dict(stats.skipped)}


def _synth_snapshots(tmp: Path) -> list[str]:
    """The bodies of a synthetic run's mountstats snapshots (the fast, tab-formatted layout)."""
    from labctl.analysis.synth import SynthCheckpoint, SynthSpec, write_run

    write_run(tmp / "run", SynthSpec(sources=("mountstats",), train_s=40, warmup_s=0, cooldown_s=5,
                                     dataset_read_s=10,
                                     checkpoints=[SynthCheckpoint(15, 5, 200_000_000)]))
    text = (tmp / "run" / "raw" / "gpu1" / "mountstats.log").read_text()
    return [part.split("\n", 1)[1] for part in text.split("#ts ")[1:]]


@built
def test_mountstats_fixtures_and_a_synthetic_log_parse_the_same(tmp_path, monkeypatch):
    a1 = (FIXTURES / "mountstats_a1_v41.txt").read_text()
    s2 = (FIXTURES / "mountstats_a1_v41_snap2_synthetic.txt").read_text()
    overflow = s2.replace("READ: 39096 39096 0 8143096 2448102744 2312",
                          "READ: 39096 39096 0 8143096 2448102744 18446743919241604546")
    snaps = [a1, s2, s2, a1, overflow, (FIXTURES / "mountstats_nconnect16_head.txt").read_text(),
             (FIXTURES / "mountstats_escaped_path_overflow_constructed.txt").read_text(), a1, s2]
    snaps += _synth_snapshots(tmp_path)
    path = tmp_path / "m.log"
    path.write_text("".join(f"#ts {1000 + k}.5 {500 + k}.25\n{body}" for k, body in enumerate(snaps)))
    native = ms_parsed(path, monkeypatch, pure=False)
    assert native == ms_parsed(path, monkeypatch, pure=True)
    assert len(native["series"]) > 20


TARGETS = ("READ:", "WRITE:", "COMMIT:", "GETATTR:", "events:", "bytes:", "age:", "xprt:", "opts:", "device",
           "per-op", "")


def _mutate(snaps: list[str], ops: list[tuple[int, int, int, int, str]]) -> list[str]:
    """Apply (kind, snapshot, target line, position, text) edits to snapshot bodies."""
    snaps = list(snaps)
    for kind, which, target, at, text in ops:
        k = which % len(snaps)
        lines = snaps[k].split("\n")
        hits = [j for j, line in enumerate(lines) if line.strip().startswith(TARGETS[target % len(TARGETS)])]
        j = hits[at % len(hits)] if hits else at % len(lines)
        words = lines[j].split(" ")
        numbers = [i for i, word in enumerate(words) if word.isdigit()] or [0]
        w = numbers[at % len(numbers)]
        if kind == 0 and words[w].isdigit():  # a number replaced (maybe huge, maybe smaller: a reset)
            words[w] = text
        elif kind == 1:  # a counter fewer
            del words[w]
        elif kind == 2:  # a counter more
            words.append(text if text.isdigit() else "5")
        elif kind == 3:
            del lines[j]
        elif kind == 4:
            lines.insert(j, lines[j])
        elif kind == 5:
            lines.insert(j, text)
        elif kind == 6:
            lines[j] = lines[j].replace("\t", "    ", 1)
        elif kind == 8:  # text after a line's own
            lines[j] += text
        elif kind == 7 and k > 0:  # the previous snapshot again, with the same, a lower or a higher age
            if (found := re.search(r"\tage:\t(\d+)", snaps[k - 1])) is not None:  # an edit may remove it
                snaps[k] = re.sub(r"\tage:\t\d+", f"\tage:\t{int(found[1]) - 1 + at % 3}", snaps[k - 1])
            continue
        if kind in (0, 1, 2):
            lines[j] = " ".join(words)
        snaps[k] = "\n".join(lines)
    return snaps


@pytest.fixture(scope="module")
def synth_snaps(tmp_path_factory) -> list[str]:
    return _synth_snapshots(tmp_path_factory.mktemp("ms"))


@built
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 99), st.integers(0, len(TARGETS) - 1),
                              st.integers(0, 10**6),
                              st.sampled_from(["0", "1", "7", str(2**53 + 1), str(2**63), str(2**64 - 1),
                                               "9" * 30, "9" * 31, "READ: 1 2 3", "\tWRITE:   ", "junk",
                                               "device x mounted on /y with fstype nfs4", "  ",
                                               " READ: 1 2 3 4 5 6 7 8 9", " per-op statistics",
                                               "\tage:\t7"])),
                    max_size=8),
       same_mono=st.integers(0, 40), cut=st.integers(0, 400), chunk=st.sampled_from([16, 3000, 1 << 20]),
       head=st.sampled_from(["", "junk\n", "junk"]),
       odd_heads=st.lists(st.tuples(st.integers(0, 40), st.sampled_from(
           ["1000.5", "x y", "1000 500x", "1000 500 7", " 1000 500", "1e3 500", "1000 .5", "1000\t500", ""])),
           max_size=3), split=st.booleans())
def test_mangled_mountstats_logs_parse_the_same(tmp_path, monkeypatch, synth_snaps, ops, same_mono, cut,
                                                chunk, head, odd_heads, split):
    from labctl.analysis import mountstats

    monkeypatch.setattr(mountstats, "CHUNK", chunk)  # snapshots cut by block boundaries, or longer than one
    monkeypatch.setattr(mountstats, "PARALLEL_MIN", 0 if split else 1 << 40)  # halves parsed by two threads
    snaps = _mutate(synth_snaps, ops)
    heads = [f"#ts {1000 + k} {500 + (k if k != same_mono else k - 1)}\n" for k in range(len(snaps))]
    for k, odd in odd_heads:  # heads `_head` reads otherwise, or not at all
        heads[k % len(heads)] = f"#ts {odd}\n"
    text = head + "".join(h + body for h, body in zip(heads, snaps, strict=True))
    path = tmp_path / "m.log"
    path.write_text(text[: len(text) - cut])
    assert ms_parsed(path, monkeypatch, pure=False) == ms_parsed(path, monkeypatch, pure=True)


@built
def test_mountstats_latency_beyond_2_53_is_rounded_as_python_rounds_it(tmp_path, monkeypatch, synth_snaps):
    """Python divides such integers exactly; the scanner leaves them to Python rather than round twice."""
    snaps = synth_snaps[:4]
    line = next(x for x in snaps[2].split("\n") if x.strip().startswith("READ:"))
    head, nums = line.split(":")
    n = [int(x) for x in nums.split()]
    n[0] += 3
    n[6] += 2**53 + 1
    snaps[2] = snaps[2].replace(line, f"{head}: {' '.join(map(str, n))}")
    n[6] += 2**60 + 7
    snaps[3] = snaps[3].replace(next(x for x in snaps[3].split("\n") if x.strip().startswith("READ:")),
                                f"{head}: {' '.join(map(str, [n[0] + 1, *n[1:]]))}")
    path = tmp_path / "m.log"
    path.write_text("".join(f"#ts {1000 + k} {500 + k}\n{body}" for k, body in enumerate(snaps)))
    native = ms_parsed(path, monkeypatch, pure=False)
    assert native == ms_parsed(path, monkeypatch, pure=True)
    assert max(native["series"][("h", -1, "mountstats", "nfs.read.rtt_ms")][2]) > 2**53  # the case was made


def nf_parsed(path: Path, monkeypatch: pytest.MonkeyPatch, *, pure: bool, nconnect: int = 1,
              skip_first: bool = True) -> dict:
    """Everything `parse_nfsiostat` reports, in comparable form."""
    from labctl.analysis.nfsiostat import parse_nfsiostat

    if pure:
        monkeypatch.setenv(PURE_ENV, "1")
    else:
        monkeypatch.delenv(PURE_ENV, raising=False)
    store = SeriesStore()
    clock = HostClock(offset_s=0.25, utc_offset_s=3600.0, utc_offset_known=True)
    stats = parse_nfsiostat(path, "h", store, clock, nconnect=nconnect, skip_first=skip_first)
    return {"series": {k: (s.unit, list(s.ts), list(s.values)) for k, s in store.series.items()},
            "lines": stats.lines, "records": stats.records, "skipped": dict(stats.skipped)}


NFSIOSTAT_FIXTURES = sorted(p.name for p in FIXTURES.glob("nfsiostat_*.log"))


@built
@pytest.mark.parametrize("name", NFSIOSTAT_FIXTURES)
@pytest.mark.parametrize(("nconnect", "skip_first", "block"), [(1, True, 1 << 20), (16, False, 7)])
def test_nfsiostat_fixtures_parse_the_same(name, nconnect, skip_first, block, tmp_path, monkeypatch):
    from labctl.analysis import lines
    from tests.report.conftest import with_ts

    text = (FIXTURES / name).read_text()
    path = tmp_path / "n.log"
    path.write_text(with_ts(text, 1000.0, 5.0) + with_ts(text, 2000.0, 5.0))  # every mount seen again
    monkeypatch.setattr(lines, "BLOCK", block)
    native = nf_parsed(path, monkeypatch, pure=False, nconnect=nconnect, skip_first=skip_first)
    assert native == nf_parsed(path, monkeypatch, pure=True, nconnect=nconnect, skip_first=skip_first)
    assert native["records"] > 0


_NF_READ = ("read:              ops/s            kB/s           kB/op         retrans    avg RTT (ms)"
            "    avg exe (ms)  avg queue (ms)          errors")
_NF_HEADS = [_NF_READ, _NF_READ.replace("read", "write"),
             "read:    ops/s   MB/s   MB/op   retrans   avg RTT (ms)", "getattr:   op/s   errors",
             "ops/s       rpc bklog", "  ops/s\trpc bklog  "]
_NF_CELL = st.sampled_from(["0.000", "976.562", "0 (0.0%)", "12 (3.5%)", "3  (100%)", "-1.5", "7", "1.", ".5",
                            "1e3", "nan", "١٢", "9" * 25, "0." + "1" * 30, "2 (x%)", "4(1%)", "5 (1.%)", "-",
                            "--3", "1.2.3", "0.1", "123456789.987654321", "6 (2%", "8 (1.5%"])
_NF_SEP = st.sampled_from(["  ", "   ", "\t", " ", ""])
_NF_VALUES = st.builds(lambda cells, seps: "".join(f"{s}{c}" for c, s in zip(cells, seps, strict=False)),
                       st.lists(_NF_CELL, min_size=1, max_size=9), st.lists(_NF_SEP, min_size=9, max_size=9))
_NF_TS = st.builds(lambda t: f"#ts {t}",
                   st.sampled_from(["1000.5", "1001", "999.25", "1000.5 7", "x", "", "1e3", "  1002.125",
                                    "1_003", "1003.", "١٢", "1004.75"]))
_NF_MOUNT = st.sampled_from(["10.0.0.3:/fg_llm mounted on /mnt/fg_llm:", "10.0.0.3:/b mounted on /mnt/b:",
                             "srv:/x mounted on /mnt/fg_llm", "a b mounted on /c:",
                             "  10.0.0.3:/fg_llm mounted on /mnt/fg_llm:  "])
_NF_ODD = st.one_of(st.sampled_from(["Timestamp         :02/26/2026 05:20:00", "Timestamp bad", "", "   ",
                                     "\t", "free text", "ünïcode", "\x0b", "\x1c", "read: ops/s",
                                     "12 (3.5%)"]),
                    st.text(max_size=30))
# a block as nfsiostat prints it: timestamp, mount, the top line and op lines with their values
_NF_BLOCK = st.builds(lambda ts, mount, pairs: [ts, "", mount, "", *(x for p in pairs for x in (*p, ""))],
                      _NF_TS, _NF_MOUNT,
                      st.lists(st.tuples(st.sampled_from(_NF_HEADS), _NF_VALUES), max_size=4))


def _nf_log(blocks: list[list[str]], odd: list[tuple[int, str]]) -> list[str]:
    out = [line for block in blocks for line in block]
    for at, line in odd:  # stray lines anywhere
        out.insert(at % (len(out) + 1), line)
    return out


@built
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blocks=st.lists(_NF_BLOCK, max_size=8),
       odd=st.lists(st.tuples(st.integers(0, 500), _NF_ODD), max_size=5), cr=st.booleans(),
       cut=st.integers(0, 20), block=st.sampled_from([3, 50, 1 << 20]),
       nconnect=st.sampled_from([1, 4]), skip_first=st.booleans())
def test_generated_nfsiostat_logs_parse_the_same(tmp_path, monkeypatch, blocks, odd, cr, cut, block, nconnect,
                                                 skip_first):
    from labctl.analysis import lines

    text = ("\r\n" if cr else "\n").join(_nf_log(blocks, odd)) + "\n"
    raw = text.encode("utf-8", "surrogatepass")
    path = tmp_path / "n.log"
    path.write_bytes(raw[: len(raw) - cut] if cut else raw)
    monkeypatch.setattr(lines, "BLOCK", block)
    assert nf_parsed(path, monkeypatch, pure=False, nconnect=nconnect, skip_first=skip_first) == nf_parsed(
        path, monkeypatch, pure=True, nconnect=nconnect, skip_first=skip_first)


@built
def test_a_long_nfsiostat_log_goes_almost_wholly_through_the_scanner(tmp_path, monkeypatch):
    """The scanner must take the common layout itself: Python sees only the first block's new lines."""
    from labctl.analysis import nfsiostat

    block = (FIXTURES / "nfsiostat_s3_variant_HEAD_m.log").read_text()
    path = tmp_path / "n.log"
    path.write_text("".join(f"#ts {1000 + k}.5\n{block}" for k in range(200)))
    seen: list[str] = []
    real = nfsiostat._Parse.line
    monkeypatch.setattr(nfsiostat._Parse, "line", lambda self, line: (seen.append(line), real(self, line)))
    native = nf_parsed(path, monkeypatch, pure=False)
    assert len(seen) < 20, seen
    assert native["records"] > 199 * 10


@built
def test_op_names_that_share_a_known_ops_hash_are_other_ops(tmp_path, monkeypatch, synth_snaps):
    """The scanner finds op names by a hash of (length, first, last character): names in a known op's bucket
    (READ/RXAD, WRITE/WXITE, LAYOUTCOMMIT/LAYOUTXOMMIT) are still compared whole, so they stay unknown ops."""
    from labctl.analysis import mountstats

    nines = " ".join(["99"] * 9)
    twins = "".join(f"\t{name}: {nines}\n" for name in ("RXAD", "WXITE", "LAYOUTXOMMIT", "READX"))
    plain, twinned = tmp_path / "plain.log", tmp_path / "twins.log"
    bodies = synth_snaps[:8]
    plain.write_text("".join(f"#ts {1000 + k} {500 + k}\n{body}" for k, body in enumerate(bodies)))
    # after the real op lines: a twin taken for its op would overwrite the op's counters
    twinned.write_text("".join(f"#ts {1000 + k} {500 + k}\n" + body.rstrip("\n") + "\n" + twins + "\n"
                               for k, body in enumerate(bodies)))
    in_python, real = [], mountstats._LogParse.one

    def one(self, *args):  # a snapshot read by the Python code
        in_python.append(args)
        return real(self, *args)

    monkeypatch.setattr(mountstats._LogParse, "one", one)
    native = ms_parsed(twinned, monkeypatch, pure=False)
    assert len(in_python) == 1  # the first snapshot; the scanner read the others
    assert native == ms_parsed(twinned, monkeypatch, pure=True)
    assert native["series"] == ms_parsed(plain, monkeypatch, pure=False)["series"]


@built
def test_text_on_the_per_op_marker_line_is_read_as_python_reads_it(tmp_path, monkeypatch, synth_snaps):
    """Python's op pattern searches from the marker itself, wherever it is: an op on the marker's line or
    after another op's counters counts; a marker inside another line makes that line unreadable."""
    snaps = []
    for k, body in enumerate(synth_snaps[:6]):
        getattr_line = next(x for x in body.split("\n") if x.strip().startswith("GETATTR:"))
        nums = " ".join(str(100 * k + i) for i in range(9))
        body = body.replace(getattr_line + "\n", "")
        if k in (3, 4):  # an op hidden after another op's counters: Python's pattern finds it there too
            body = re.sub(r"(\n\s+NULL: [0-9 ]+)", rf"\1 GETATTR: {nums}", body)
        else:
            body = body.replace("per-op statistics", f"per-op statistics GETATTR: {nums}")
        if k == 5:
            body = re.sub(r"(\tage:\t\d+)", r"\1 per-op statistics", body)
        snaps.append(body)
    path = tmp_path / "m.log"
    path.write_text("".join(f"#ts {1000 + k} {500 + k}\n{body}" for k, body in enumerate(snaps)))
    native = ms_parsed(path, monkeypatch, pure=False)
    assert native == ms_parsed(path, monkeypatch, pure=True)
    assert native["series"][("h", -1, "mountstats", "nfs.getattr.ops_rate")][2][:4] == [100.0] * 4


@built
def test_a_log_split_in_two_parses_as_a_whole(tmp_path, monkeypatch, synth_snaps):
    """The second half starts from the complete snapshot before the split, as the whole parse would."""
    from labctl.analysis import mountstats

    snaps = [*synth_snaps, *synth_snaps[1:]]
    snaps[len(snaps) // 2] = snaps[len(snaps) // 2].replace("\tbytes:", "\tbytes-gone:")  # incomplete
    path = tmp_path / "m.log"
    path.write_text("".join(f"#ts {1000 + k} {500 + k}\n{body}" for k, body in enumerate(snaps)))
    monkeypatch.setattr(mountstats, "PARALLEL_MIN", 0)
    cut = mountstats._split(path, None)
    assert cut is not None and 0 < cut[0] < path.stat().st_size
    assert path.read_bytes()[cut[0]:cut[0] + 4] == b"#ts "
    native = ms_parsed(path, monkeypatch, pure=False)
    assert native == ms_parsed(path, monkeypatch, pure=True)
    assert len(native["series"][("h", -1, "mountstats", "nfs.read.bytes")][1]) == len(snaps) - 3


@built
def test_a_ts_line_inside_a_snapshot_ends_it_in_the_scanner_too(tmp_path, monkeypatch, synth_snaps):
    """The scanner looks for a snapshot's end near where the last one's length puts it; a `#ts ` line before
    that (here inside the header lines, where Python's split ends the snapshot) must still end it."""
    snaps = list(synth_snaps[:12])
    snaps[6] = snaps[6].replace("\tbytes:", "#ts junk 1\n\tbytes:")
    snaps[9] = snaps[9].replace("\tage:", "#ts 1009.5 509.5\n\tage:")
    path = tmp_path / "m.log"
    path.write_text("".join(f"#ts {1000 + k} {500 + k}\n{body}" for k, body in enumerate(snaps)))
    native = ms_parsed(path, monkeypatch, pure=False)
    assert native == ms_parsed(path, monkeypatch, pure=True)
    assert native["skipped"]
