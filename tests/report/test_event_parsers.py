"""bpftrace JSON (record shapes of 0.17, labctl's program), the trainer log and ansible-runner events."""

from __future__ import annotations

import json
import re

import pytest

from labctl.analysis.bpftrace import parse_bpftrace
from labctl.analysis.runner_events import parse_runner_events
from labctl.analysis.trainlog import parse_trainlog
from labctl.experiment.bpfprogram import MAPS, render_program
from tests.report.conftest import FIXTURES, times, values


def test_bpftrace_record_shapes_and_quirks(store, utc):
    res = parse_bpftrace(FIXTURES / "bpftrace_v0.17_records.jsonl", "h", store, utc, 1000.0)
    s = res.stats
    assert s.skipped["blank"] == 2 and s.skipped["bad_marker"] == 1  # "start\n" without nsecs
    assert s.skipped["other_record"] == 3  # time + two value records
    assert s.skipped["unknown_map"] == 9  # other programs' maps are counted, not parsed
    assert res.lost_events == 533 and res.probes == 14
    assert times(store, "io.write.bytes") == [1005.0, 1006.0]
    assert values(store, "io.write.bytes") == [0.0, 1048576 + 4096]  # absent map = zero
    assert values(store, "io.write.bytes_rate") == [0.0, 1052672.0]
    assert res.by_comm["write_bytes"] == {"python": 1048576, "pt_data_worker": 4096}
    (opened,) = res.opens
    assert opened["comm"] == "python"
    assert opened["path"] == "/mnt/fg_llm/out/café,1.pth"  # path last (keeps its comma), UTF-8 fixed
    assert res.hists["read_size"][(None, -1)] == 2 and res.hists["read_size"][(4096, 8191)] == 3
    assert not res.hists["write_size"]


def test_bpftrace_labctl_program_output_measured_on_0_17(store, utc):
    res = parse_bpftrace(FIXTURES / "bpftrace_io_by_second_v0.17.jsonl", "h", store, utc, 0.0)
    assert sum(values(store, "io.write.bytes")) == 8 * 2**20
    assert sum(values(store, "io.read.bytes")) == 8 * 2**20  # read by a forked child: the tree is followed
    assert sum(values(store, "io.fsync.calls")) == 1
    assert res.hists["write_size"] == {(1048576, 2097151): 8}
    assert [o["path"] for o in res.opens] == ["/tmp/bt/mnt/checkpoint.pth"]
    assert len(times(store, "io.read.bytes")) == 7  # 6 interval ticks + the END tick
    assert not res.stats.skipped


def test_bpftrace_truncated_last_line_and_garbage(tmp_path, store, utc):
    p = tmp_path / "b.jsonl"
    p.write_text('{"type": "printf", "data": "tick 1000000000\\n"}\nnot json\n{"type": 5}\n[1, 2]\n'
                 '{"type": "map", "data": {"@read_bytes": {"python": "9007199254740993"}}}\n'
                 '{"type": "map", "data": {"@read_bytes": {"python": 12')
    res = parse_bpftrace(p, "h", store, utc, 0.0)
    assert res.stats.skipped["truncated_last_line"] == 1 and res.stats.skipped["bad_json"] == 2
    assert values(store, "io.read.bytes") == [9007199254740993.0]  # ≥0.24 writes big integers as strings


def test_program_declares_every_map_the_parser_reads():
    text = render_program("/mnt/fg_llm")
    assert '"/mnt/fg_llm/", 12)' in text and "__MOUNT" not in text
    for name in MAPS:
        assert f"@{name}" in text
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    assert "args." not in code.replace("args->", "")  # 0.14-0.18 reject args.field
    assert 'printf("tick %lld\\n", nsecs)' in text
    with pytest.raises(ValueError, match="64 bytes"):
        render_program("/" + "x" * 70)


def test_trainer_log_epochs_loss_saves(store, utc):
    tl = parse_trainlog(FIXTURES / "train_llmstudio.log", "h", store, utc)
    assert tl.epochs == 2
    assert [s["text"].split(" to ")[0] for s in tl.saves] == [
        "Saving last model checkpoint", "Saving best model checkpoint: val_Perplexity 4.91234 -> 4.70000"]
    assert tl.saves[0]["next_ts"] - tl.saves[0]["ts"] == 30.0  # next log line: validation starts
    assert values(store, "train.loss") == [1.23, 1.10, 1.10, 0.98]  # nan is no record
    assert values(store, "train.step")[-1] == 86.0
    kinds = [e["kind"] for e in tl.events]
    assert "exception" in kinds and "evaluation" in kinds and "model_loaded" in kinds
    assert tl.stats.skipped["no_prefix"] == 3  # the traceback
    assert tl.train_end - tl.train_start == 120.0


def test_runner_events_per_phase(tmp_path):
    ev = tmp_path / "events" / "provision" / "artifacts" / "a1" / "job_events"
    ev.mkdir(parents=True)
    records = [{"event": "playbook_on_start", "created": "2026-11-29T10:00:00.000000+00:00"},
               {"event": "runner_on_ok", "created": "2026-11-29T10:00:05", "event_data":
                {"host": "gpu1", "task": "mount", "res": {"changed": True}}},
               {"event": "runner_on_failed", "created": "2026-11-29T10:00:09Z", "event_data":
                {"host": "gpu2", "task": "mount", "res": {}}}]
    for i, r in enumerate(records):
        (ev / f"{i}-x.json").write_text(json.dumps(r))
    (ev / "9-bad.json").write_text("{trunc")
    (ev.parent / "status").write_text("failed")
    phases, stats = parse_runner_events(tmp_path / "events")
    (p,) = phases
    assert p["hosts"] == {"gpu1": {"ok": 1, "changed": 1}, "gpu2": {"failed": 1}}
    assert p["failed_tasks"] == ["gpu2: mount"] and p["status"] == "failed"
    assert p["end"] - p["start"] == 9.0
    assert stats.skipped["bad_event"] == 1


def test_bpftrace_tick_beyond_int64_is_a_bad_marker_not_a_crash(tmp_path, store, utc):
    p = tmp_path / "t.jsonl"
    p.write_text('{"type": "printf", "data": "tick 1000000000\\n"}\n'
                 '{"type": "printf", "data": "tick 10000000000000000000\\n"}\n'
                 '{"type": "printf", "data": "tick 2000000000\\n"}\n')
    res = parse_bpftrace(p, "h", store, utc, 0.0)
    assert res.stats.skipped["bad_marker"] == 1
    assert times(store, "io.read.bytes") == [1.0, 2.0]


def test_trainer_log_real_llmstudio_v1_2_0_lines(store, utc):
    """Lines LLM Studio v1.2.0 itself wrote (research §8): epochs, steps, loss, the best-checkpoint save."""
    tl = parse_trainlog(FIXTURES / "train_llmstudio_v1.2.0_real.log", "h", store, utc)
    assert tl.epochs == 2
    assert values(store, "train.loss") == [6.11, 5.82]
    assert values(store, "train.step") == [4.0, 90.0]
    assert [s["text"] for s in tl.saves] == [
        "Saving best model checkpoint: val_BLEU -inf -> 0.83369 to /path/to/output_directory"
    ]
    assert round(tl.saves[0]["next_ts"] - tl.saves[0]["ts"], 3) == 0.026  # the next epoch starts
    assert tl.stats.skipped.get("no_prefix", 0) == 0


def test_trainer_log_a_whole_real_llmstudio_cpu_run(store, utc):
    """logs.log of LLM Studio v1.2.0 training the simulated lab's tiny Llama on CPU (2 epochs, best saves)."""
    tl = parse_trainlog(FIXTURES / "train_llmstudio_v1.2.0_cpu_logs.log", "h", store, utc)
    assert tl.epochs == 2 and len(tl.saves) == 2
    assert tl.saves[0]["text"].startswith("Saving best model checkpoint: val_Perplexity inf -> ")
    assert values(store, "train.step")[-1] == 22.0
    assert "model_loaded" in [e["kind"] for e in tl.events]
