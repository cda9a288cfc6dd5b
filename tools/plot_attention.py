#!/usr/bin/env python3
"""Draw attention maps of one dump entry as a PNG grid: one row per layer,
one column per head (or one "mean" column for --average-heads dumps).

    /usr/bin/python3 tools/plot_attention.py DUMP.jsonl OUT.png [--index 0]
        [--kind cross_attention] [--layer all|N] [--heads all|H,H,...]

DUMP is the JSON Lines output of aiayn-attention (docs/attention-format.md),
made with any --kinds, --layers, --heads or --average-heads. --layer and
--heads take the layer and head numbers the dump names (its "layers" and
"heads" fields), not positions. Uses Debian's python3-matplotlib.
"""
import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

KINDS = ["encoder_attention", "decoder_attention", "cross_attention"]


def fail(message):
    sys.exit(f"plot_attention.py: {message}")


def read_entry(path, index):
    try:
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i == index:
                    try:
                        return json.loads(line)
                    except json.JSONDecodeError as e:
                        fail(f"{path}:{i + 1}: not JSON: {e}")
    except OSError as e:
        fail(f"{path}: {e.strerror}")
    fail(f"{path} has no entry {index} (0-based)")


def layer_numbers(entry, kind):
    """The layer numbers of entry[kind]'s maps, in order."""
    layers = entry.get("layers")
    if isinstance(layers, dict):  # format 1: {"encoder": [...], "decoder": [...]}
        return layers["encoder" if kind == "encoder_attention" else "decoder"]
    if isinstance(layers, list):  # dumps written before the stacks could differ in depth
        return layers
    return list(range(len(entry[kind])))


def pick(selection, available, what):
    """Positions of the selected numbers ("all" or "a,b,...") among `available`."""
    if selection == "all":
        return list(range(len(available)))
    positions = []
    for item in selection.split(","):
        try:
            number = int(item)
        except ValueError:
            fail(f"--{what} {selection}: give 'all' or numbers separated by commas")
        if number not in available:
            fail(f"--{what} {number} is not in this dump (it has {what} {available})")
        positions.append(available.index(number))
    return positions


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dump")
    ap.add_argument("out")
    ap.add_argument("--index", type=int, default=0, help="entry (sentence) number in the dump, from 0")
    ap.add_argument("--kind", default="cross_attention", choices=KINDS)
    ap.add_argument("--layer", default="all", help="'all' or a layer number the dump holds")
    ap.add_argument("--heads", default="all", help="'all' or head numbers the dump holds, e.g. 0,3")
    args = ap.parse_args()

    entry = read_entry(args.dump, args.index)
    if args.kind not in entry:
        present = [k for k in KINDS if k in entry]
        fail(f"entry {args.index} has no {args.kind} (dumped with --kinds {','.join(k.split('_')[0] for k in present)})")
    maps = entry[args.kind]  # [layer][head][query][key]
    numbers = layer_numbers(entry, args.kind)
    layers = pick(args.layer, numbers, "layer")
    mean = entry["heads"] == "mean"
    head_numbers = ["mean"] if mean else entry["heads"]
    heads = [0] if mean else pick(args.heads, head_numbers, "heads")
    if not maps or not maps[0]:
        fail(f"entry {args.index} has empty maps (an empty or invalid input line)")

    queries = entry["encoder_tokens"] if args.kind == "encoder_attention" else entry["decoder_tokens"]
    keys = entry["decoder_tokens"] if args.kind == "decoder_attention" else entry["encoder_tokens"]
    rows, cols = len(layers), len(heads)
    size = max(2.5, 0.3 * max(len(keys), len(queries)))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for r, layer in enumerate(layers):
        for c, head in enumerate(heads):
            ax = axes[r][c]
            ax.imshow(maps[layer][head], cmap="Blues", vmin=0, vmax=1)
            ax.set_xticks(range(len(keys)))
            ax.set_xticklabels(keys, rotation=90, fontsize=8)
            ax.set_yticks(range(len(queries)))
            ax.set_yticklabels(queries, fontsize=8)
            ax.set_title(f"layer {numbers[layer]}, head {head_numbers[head]}", fontsize=9)
    fig.suptitle(f"{args.kind}: {entry['source']} => {entry['target']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}: {args.kind}, {rows} layer(s) x {cols} head(s)", file=sys.stderr)


if __name__ == "__main__":
    main()
