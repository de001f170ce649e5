"""Make a tiny Llama and its tokenizer without any download: `PYTHON tiny_llama.py DEST TRAIN_FULL_PQ`.

Run by provision (`labctl_llmstudio_backbone_script`) with the venv's Python of the installed LLM Studio, so
the model is written by that release's own transformers/tokenizers. The tokenizer is a byte-level BPE trained
on the data set's text with LLM Studio's prompt/answer tokens, wrapped as LlamaTokenizerFast; the model is a
LlamaConfig of hidden 64, intermediate 128, 2 layers, 4 heads (about 140 k parameters, randomly initialised).
DEST appears whole or not at all (written beside it, then renamed). Imports only the venv's packages.
"""

import os
import shutil
import sys

SPECIAL = ["<unk>", "<s>", "</s>", "<|prompt|>", "<|answer|>"]


def texts(train_full_pq):
    import pyarrow.parquet as pq

    table = pq.read_table(train_full_pq, columns=["instruction", "output"])
    for column in ("instruction", "output"):
        for value in table.column(column).to_pylist():
            if value:
                yield value


def make(dest, train_full_pq):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(list(texts(train_full_pq)), vocab_size=1024, min_frequency=1,
                            special_tokens=SPECIAL)
    tokenizer = LlamaTokenizerFast(tokenizer_object=bpe._tokenizer, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", pad_token="</s>")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    tmp = f"{dest}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    LlamaForCausalLM(config).save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    os.replace(tmp, dest)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: tiny_llama.py DEST TRAIN_FULL_PQ")
    make(sys.argv[1], sys.argv[2])
