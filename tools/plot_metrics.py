#!/usr/bin/env python3
"""Plot training loss and validation loss/BLEU from a run's metrics.jsonl.

    /usr/bin/python3 tools/plot_metrics.py RUN_DIR/metrics.jsonl OUT.png

Uses Debian's python3-matplotlib.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    train, valid = [], []
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            # "run" records say what the run ran on; they hold no curve.
            {"train": train, "valid": valid}.get(r["kind"], []).append(r)
    if not train:
        sys.exit(f"plot_metrics.py: {sys.argv[1]} holds no training records")
    fig, left = plt.subplots(figsize=(8, 4.5))
    left.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss (smoothed)", lw=1)
    left.plot([r["step"] for r in valid], [r["loss"] for r in valid], "o-", label="valid loss (NLL)")
    left.set_xlabel("update")
    left.set_ylabel("loss (nats/token)")
    lines, labels = left.get_legend_handles_labels()
    if any("bleu" in r for r in valid):
        right = left.twinx()
        pts = [(r["step"], r["bleu"]) for r in valid if "bleu" in r]
        right.plot([p[0] for p in pts], [p[1] for p in pts], "s-", color="tab:green", label="valid BLEU")
        right.set_ylabel("BLEU")
        more_lines, more_labels = right.get_legend_handles_labels()
        lines, labels = lines + more_lines, labels + more_labels
    left.legend(lines, labels, loc="center right")
    left.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=100)
    print(f"wrote {sys.argv[2]}: {len(train)} training and {len(valid)} validation records", file=sys.stderr)


if __name__ == "__main__":
    main()
