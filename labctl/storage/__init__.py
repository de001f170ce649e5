"""The storage side of a run: ONTAP's raw counters, polled by the controller into `raw/_ontap/stats.jsonl`,
turned into bytes, ops and latency per FlexGroup, constituent, node, aggregate and LIF (`counters`), and into
summary.json's `ontap` section (`findings`). Formulas: docs/ontap-counters.md."""
