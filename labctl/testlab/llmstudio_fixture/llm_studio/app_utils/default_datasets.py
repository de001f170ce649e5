"""Default data sets (labctl fixture): the OASST preparation of LLM Studio, from a bundled sample.

The real function downloads OpenAssistant/oasst1 from the Hugging Face hub; this one reads the small
OASST-like sample in data/oasst_sample.jsonl and writes the same four files with the same columns.
"""

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "data", "oasst_sample.jsonl")


def _load_messages():
    with open(SAMPLE, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def prepare_default_dataset_causal_language_modeling(path):
    """Write train_full.pq (+ _allrank, _multilang, _multilang_allrank) to `path`; returns its path."""
    messages = _load_messages()
    by_id = {m["message_id"]: m for m in messages}
    rows = []
    for m in messages:
        if m["role"] != "assistant":
            continue
        parent = by_id.get(m["parent_id"])
        if parent is None:
            continue
        rows.append({"instruction": parent["text"], "output": m["text"], "id": m["message_id"],
                     "parent_id": parent["parent_id"], "lang": m["lang"], "rank": m["rank"]})
    os.makedirs(path, exist_ok=True)
    variants = {
        "train_full.pq": lambda r: r["rank"] == 0 and r["lang"] == "en",
        "train_full_allrank.pq": lambda r: r["lang"] == "en",
        "train_full_multilang.pq": lambda r: r["rank"] == 0,
        "train_full_multilang_allrank.pq": lambda r: True,
    }
    for name, keep in variants.items():
        chosen = [r for r in rows if keep(r)]
        columns = ("instruction", "output", "id", "parent_id")
        table = pa.table({col: [r[col] for r in chosen] for col in columns})
        tmp = os.path.join(path, f".{name}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, os.path.join(path, name))
    return os.path.join(path, "train_full.pq")
