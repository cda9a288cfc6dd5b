#!/usr/bin/env python3
"""Per-head importance and statistics of a checkpoint, as a table and a heatmap.

    /usr/bin/python3 tools/head_importance.py BLEU_TSV ATTENTION_JSONL OUT_DIR

BLEU_TSV (scripts/head_importance.sh writes it): kind, layer, head, BLEU with
that head masked alone (aiayn-translate --mask-heads), the first row the
unmasked BLEU. ATTENTION_JSONL: an aiayn-attention dump of validation
sentences (docs/attention-format.md). For every head of every kind it
computes, over all queries of all sentences:
  - confidence: the mean of a query's largest weight (Voita et al., 2019);
  - entropy: the mean entropy of a query's weights, in nats;
  - prev / same / next: the mean weight on the key one position before, at,
    and one after the query's own position (self-attention only; Voita's
    positional heads put most of their weight on one of them).
Writes OUT_DIR/heads.tsv and heads.md (one row per head) and
OUT_DIR/heads.png: one row of panels per kind (encoder, decoder, cross), one
column per measure (BLEU change when masked, confidence, entropy, the largest
of prev/same/next), each a layers x heads grid with its numbers written in.
Uses Debian's python3-matplotlib.
"""
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

KINDS = [("enc", "encoder_attention", "encoder self-attention"),
         ("dec", "decoder_attention", "decoder self-attention"),
         ("cross", "cross_attention", "encoder-decoder attention")]


def read_bleu(path):
    base, masked = None, {}
    with open(path) as f:
        next(f)  # header
        for line in f:
            kind, layer, head, bleu = line.rstrip("\n").split("\t")
            value = float(bleu) if bleu else math.nan
            if kind == "none":
                base = value
            else:
                masked[(kind, int(layer), int(head))] = value
    if base is None:
        sys.exit(f"{path}: no unmasked ('none') row")
    return base, masked


def head_stats(dump_path):
    """(kind, layer, head) -> sums of confidence, entropy, prev, same, next and counts."""
    sums = {}
    with open(dump_path) as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{dump_path}:{number}: not JSON: {e}")
            layers = record["layers"]
            heads = record["heads"]
            if heads == "mean":
                sys.exit(f"{dump_path}:{number}: a dump of averaged heads; dump every head")
            for kind, key, _ in KINDS:
                if key not in record:
                    continue
                layer_ids = layers["encoder"] if kind == "enc" else layers["decoder"]
                for li, layer_maps in zip(layer_ids, record[key]):
                    for hi, head_map in zip(heads, layer_maps):
                        s = sums.setdefault((kind, li, hi), [0.0] * 5 + [0, 0])
                        for q, row in enumerate(head_map):
                            if not row:
                                continue
                            s[0] += max(row)
                            s[1] -= sum(w * math.log(w) for w in row if w > 0)
                            s[5] += 1
                            if kind != "cross":
                                s[2] += row[q - 1] if q >= 1 else 0.0
                                s[3] += row[q] if q < len(row) else 0.0
                                s[4] += row[q + 1] if q + 1 < len(row) else 0.0
                                s[6] += 1
    stats = {}
    for ref, s in sums.items():
        n, m = max(s[5], 1), s[6]
        stats[ref] = {"confidence": s[0] / n, "entropy": s[1] / n,
                      "prev": s[2] / m if m else math.nan, "same": s[3] / m if m else math.nan,
                      "next": s[4] / m if m else math.nan}
    return stats


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    bleu_path, dump_path, out = sys.argv[1:]
    base, masked = read_bleu(bleu_path)
    stats = head_stats(dump_path)
    refs = sorted(set(masked) | set(stats), key=lambda r: ([k for k, _, _ in KINDS].index(r[0]), r[1], r[2]))
    rows = []
    for ref in refs:
        st = stats.get(ref, {})
        rows.append({"kind": ref[0], "layer": ref[1], "head": ref[2],
                     "bleu": masked.get(ref, math.nan), "delta": masked.get(ref, math.nan) - base,
                     **{k: st.get(k, math.nan) for k in ("confidence", "entropy", "prev", "same", "next")}})
    columns = ["kind", "layer", "head", "bleu", "delta", "confidence", "entropy", "prev", "same", "next"]
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    with open(os.path.join(out, "heads.tsv"), "w") as f:
        f.write("\t".join(columns) + "\n")
        for r in rows:
            f.write("\t".join(fmt(r[c]) for c in columns) + "\n")
    with open(os.path.join(out, "heads.md"), "w") as f:
        f.write(f"Unmasked validation BLEU: {base:.2f}. One row per head masked alone.\n\n")
        f.write("| " + " | ".join(columns) + " |\n|" + " --- |" * len(columns) + "\n")
        for r in sorted(rows, key=lambda r: r["delta"]):
            # prev/same/next compare query and key positions: undefined across two sequences.
            f.write("| " + " | ".join("—" if isinstance(r[c], float) and math.isnan(r[c]) else fmt(r[c])
                                      for c in columns) + " |\n")

    measures = [("delta", "BLEU change when masked", "RdBu"), ("confidence", "confidence (mean max weight)", "viridis"),
                ("entropy", "entropy (nats)", "magma"), ("positional", "max(prev, same, next)", "viridis")]
    fig, axes = plt.subplots(len(KINDS), len(measures), figsize=(4.2 * len(measures), 2.6 * len(KINDS)), squeeze=False)
    for i, (kind, _, title) in enumerate(KINDS):
        layers = sorted({r["layer"] for r in rows if r["kind"] == kind})
        heads = sorted({r["head"] for r in rows if r["kind"] == kind})
        for j, (measure, label, cmap) in enumerate(measures):
            ax = axes[i][j]
            grid = [[math.nan] * len(heads) for _ in layers]
            for r in rows:
                if r["kind"] != kind:
                    continue
                value = max(r["prev"], r["same"], r["next"]) if measure == "positional" else r[measure]
                grid[layers.index(r["layer"])][heads.index(r["head"])] = value
            finite = [v for row in grid for v in row if not math.isnan(v)]
            if measure == "delta" and finite:
                bound = max(abs(v) for v in finite) or 1.0
                image = ax.imshow(grid, cmap=cmap, vmin=-bound, vmax=bound, aspect="auto")
            else:
                image = ax.imshow(grid, cmap=cmap, aspect="auto")
            for y, row in enumerate(grid):
                for x, v in enumerate(row):
                    if not math.isnan(v):
                        ax.text(x, y, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black",
                                bbox=dict(facecolor="white", alpha=0.6, lw=0, pad=0.5))
            ax.set_xticks(range(len(heads)))
            ax.set_xticklabels(heads)
            ax.set_yticks(range(len(layers)))
            ax.set_yticklabels(layers)
            ax.set_xlabel("head")
            ax.set_ylabel("layer")
            ax.set_title(f"{title}\n{label}", fontsize=9)
            if finite:
                fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
            else:
                ax.text(0.5, 0.5, "not defined: query and key\npositions are of two sequences",
                        ha="center", va="center", fontsize=8, transform=ax.transAxes)
    fig.suptitle(f"Head importance: validation BLEU {base:.2f} unmasked", fontsize=11)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "heads.png"), dpi=110)
    print(f"wrote {out}/heads.tsv, heads.md, heads.png ({len(rows)} heads)")


if __name__ == "__main__":
    main()
