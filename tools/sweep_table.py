#!/usr/bin/env python3
"""Table and plot of a sweep's runs (scripts/sweep.sh writes them).

    /usr/bin/python3 tools/sweep_table.py OUT_DIR NAME...

Reads OUT_DIR/NAME/metrics.jsonl (and NAME/arguments, NAME/finished,
NAME/failed and NAME/last/config.json) and writes OUT_DIR/sweep.md, a
Markdown table with each variant's rank, updates (also as a multiple of its
warm-up), minutes, target tokens/s, the best validation perplexity and BLEU
with the update they came at, and the last validation BLEU, then, for
variants run with several seeds (NAME.seedK), their mean and spread; and
OUT_DIR/sweep.png, every variant's validation perplexity and BLEU against
updates. Only finished variants past their warm-up are ranked.
Uses Debian's python3-matplotlib.
"""
import json
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_run(out, name):
    run = os.path.join(out, name)
    metrics = os.path.join(run, "metrics.jsonl")
    r = {"name": name, "args": "", "train": [], "valid": [], "status": "finished"}
    def text(marker):
        path = os.path.join(run, marker)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            return f.read().strip()

    r["args"] = text("arguments") or ""
    if text("failed") is not None:
        r["status"] = "failed (" + text("failed") + ")"
    elif text("finished") is None:
        r["status"] = "unfinished"
    if not os.path.exists(metrics):
        r["status"] = r["status"] if r["status"] != "finished" else "no metrics.jsonl"
        r["minutes"] = None
        return r
    with open(metrics, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                sys.exit(f"sweep_table.py: {metrics}:{number}: not JSON")
            if rec.get("kind") in ("train", "valid"):
                r[rec["kind"]].append(rec)
    meta = os.path.join(run, "last", "meta.json")
    r["minutes"] = None
    if os.path.exists(meta):
        with open(meta, encoding="utf-8") as f:
            r["minutes"] = json.load(f).get("train_seconds", 0) / 60
    config = os.path.join(run, "last", "config.json")
    r["warmup"] = None
    if os.path.exists(config):
        with open(config, encoding="utf-8") as f:
            r["warmup"] = json.load(f).get("train", {}).get("warmup_steps")
    return r


def updates_of(r):
    return max((v["step"] for v in r["train"] + r["valid"]), default=None)


def rankable(r):
    """Finished and past its warm-up: before its end the learning rate still
    rises and validation wobbles, so such a run ranks nothing."""
    updates = updates_of(r)
    return r["status"] == "finished" and r["valid"] and r["warmup"] and updates and updates > r["warmup"]


def merit(r):
    """Best validation BLEU when there is one, else minus the best perplexity."""
    bleus = [v["bleu"] for v in r["valid"] if "bleu" in v]
    return max(bleus) if bleus else -min(v["ppl"] for v in r["valid"])


def cell(value, fmt):
    return "–" if value is None else fmt.format(*value) if isinstance(value, tuple) else fmt.format(value)


def row(r, ranks):
    updates = updates_of(r)
    warmup = (f"{updates / r['warmup']:.1f}×" if updates and r["warmup"] else "–")
    toks = statistics.median(t["tgt_tok_s"] for t in r["train"]) if r["train"] else None
    best_ppl = min(((v["ppl"], v["step"]) for v in r["valid"]), default=None)
    bleus = [(v["bleu"], v["step"]) for v in r["valid"] if "bleu" in v]
    best_bleu = max(bleus, key=lambda b: (b[0], -b[1]), default=None)
    last_bleu = bleus[-1][0] if bleus else None
    return (f"| {ranks.get(r['name'], '–')} | {r['name']} | {('`' + r['args'] + '`') if r['args'] else '(base)'} "
            f"| {r['status']} | {cell(updates, '{}')} | {warmup} | {cell(r.get('minutes'), '{:.1f}')} | {cell(toks, '{:.0f}')} "
            f"| {cell(best_ppl, '{:.2f} ({})')} | {cell(best_bleu, '{:.2f} ({})')} "
            f"| {cell(last_bleu, '{:.2f}')} |")


def seed_summary(runs):
    """Variants trained with SEEDS=N (named NAME.seedK): each one's mean and
    standard deviation (n - 1) over its seeds."""
    groups = {}
    for r in runs:
        base, dot, seed = r["name"].rpartition(".seed")
        if dot and seed.isdigit() and rankable(r):
            groups.setdefault(base, []).append(merit(r))
    if not groups:
        return []
    lines = ["", "| variant | seeds | best valid BLEU (or −ppl): mean ± sd | values |", "|---|---:|---|---|"]
    for base, values in sorted(groups.items(), key=lambda g: -statistics.mean(g[1])):
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        lines.append(f"| {base} | {len(values)} | {statistics.mean(values):.2f} ± {sd:.2f} "
                     f"| {', '.join(f'{v:.2f}' for v in values)} |")
    return lines


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, names = sys.argv[1], sys.argv[2:]
    runs = [read_run(out, n) for n in names]
    ranked = sorted((r for r in runs if rankable(r)), key=merit, reverse=True)
    ranks = {r["name"]: str(i + 1) for i, r in enumerate(ranked)}
    lines = ["| rank | variant | arguments | status | updates | updates / warm-up | minutes | tgt tok/s (median) "
             "| best valid ppl (update) | best valid BLEU (update) | last valid BLEU |",
             "|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [row(r, ranks) for r in runs]
    lines += ["", "Ranked by best validation BLEU (perplexity without BLEU) among finished variants "
              "that ended past their warm-up; '–': not ranked (failed, unfinished, or inside the warm-up, "
              "where the learning rate still rises and validation cannot tell settings apart)."]
    lines += seed_summary(runs)
    table = os.path.join(out, "sweep.md")
    with open(table + ".tmp", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(table + ".tmp", table)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for r in runs:
        if r["valid"]:
            left.plot([v["step"] for v in r["valid"]], [v["ppl"] for v in r["valid"]], "o-", ms=3, label=r["name"])
        bleu = [v for v in r["valid"] if "bleu" in v]
        if bleu:
            right.plot([v["step"] for v in bleu], [v["bleu"] for v in bleu], "o-", ms=3, label=r["name"])
    left.set_title("validation perplexity")
    right.set_title("validation BLEU")
    for ax in (left, right):
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    left.set_yscale("log")
    fig.tight_layout()
    png = os.path.join(out, "sweep.png")
    fig.savefig(png, dpi=100)
    print("\n".join(lines))
    print(f"wrote {table} and {png}", file=sys.stderr)


if __name__ == "__main__":
    main()
