"""Checks python/aiayn_torch.py against the executables: the greedy outputs of
aiayn-translate and the maps of an aiayn-attention dump of the same lines.

    /usr/bin/python3 tests/reference/aiayn_torch_check.py CHECKPOINT SOURCES GREEDY_OUT DUMP
Prints "ok" and exits 0, or names the first difference and exits 1.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import aiayn_torch  # noqa: E402


def main():
    checkpoint, sources, greedy_out, dump = sys.argv[1:]
    model = aiayn_torch.load(checkpoint)
    lines = open(sources, encoding="utf-8").read().splitlines()
    expected = open(greedy_out, encoding="utf-8").read().splitlines()
    records = [json.loads(line) for line in open(dump, encoding="utf-8")]
    worst = 0.0
    for i, line in enumerate(lines):
        src = model.encode_source(line)
        out = model.greedy(src)
        text = model.decode_target(out)
        if text != expected[i]:
            sys.exit(f"line {i + 1}: aiayn_torch translates {text!r}, aiayn-translate {expected[i]!r}")
        record = records[i]
        tgt = [model.target_tokenizer.piece_to_id(p) for p in record["decoder_tokens"][1:]]
        maps = model.attention(src, tgt)
        if maps["encoder_tokens"] != record["encoder_tokens"] or maps["decoder_tokens"] != record["decoder_tokens"]:
            sys.exit(f"line {i + 1}: tokens differ: {maps['encoder_tokens']} / {record['encoder_tokens']}")
        for ours, key in (("encoder", "encoder_attention"), ("decoder", "decoder_attention"), ("cross", "cross_attention")):
            for layer, dumped in zip(maps[ours], record[key]):
                diff = (layer[0] - aiayn_torch.torch.tensor(dumped)).abs().max().item()
                worst = max(worst, diff)
    if worst > 1e-4:
        sys.exit(f"attention maps differ by up to {worst}")
    print(f"ok: {len(lines)} sentences, maps within {worst:.2e}")


if __name__ == "__main__":
    main()
