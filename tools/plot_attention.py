#!/usr/bin/env python3
"""Draw one layer's attention heads of one dump entry as a PNG grid.

    /usr/bin/python3 tools/plot_attention.py DUMP.jsonl OUT.png [--index 0]
        [--kind cross_attention] [--layer 0]

DUMP is the JSON Lines output of aiayn-attention (docs/attention-format.md).
Uses Debian's python3-matplotlib.
"""
import argparse
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump")
    ap.add_argument("out")
    ap.add_argument("--index", type=int, default=0, help="entry (sentence) number in the dump")
    ap.add_argument("--kind", default="cross_attention",
                    choices=["encoder_attention", "decoder_attention", "cross_attention"])
    ap.add_argument("--layer", type=int, default=0, help="position in the entry's layers list")
    args = ap.parse_args()
    entry = None
    with open(args.dump, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i == args.index:
                entry = json.loads(line)
                break
    if entry is None:
        sys.exit(f"plot_attention.py: {args.dump} has no entry {args.index}")
    if args.kind not in entry:
        sys.exit(f"plot_attention.py: entry {args.index} has no {args.kind} (dumped with --kinds?)")
    maps = entry[args.kind]
    if not 0 <= args.layer < len(maps):
        sys.exit(f"plot_attention.py: --layer {args.layer} is outside 0..{len(maps) - 1}")
    heads = maps[args.layer]
    queries = entry["encoder_tokens"] if args.kind == "encoder_attention" else entry["decoder_tokens"]
    keys = entry["decoder_tokens"] if args.kind == "decoder_attention" else entry["encoder_tokens"]
    names = ["mean"] if entry["heads"] == "mean" else [str(h) for h in entry["heads"]]
    cols = min(4, len(heads))
    rows = math.ceil(len(heads) / cols)
    size = max(2.5, 0.3 * max(len(keys), len(queries)))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(heads):
            ax.axis("off")
            continue
        ax.imshow(heads[i], cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(keys)), keys, rotation=90, fontsize=8)
        ax.set_yticks(range(len(queries)), queries, fontsize=8)
        ax.set_title(f"layer {entry['layers'][args.layer]}, head {names[i]}", fontsize=9)
    fig.suptitle(f"{args.kind}: {entry['source']} => {entry['target']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)


if __name__ == "__main__":
    main()
