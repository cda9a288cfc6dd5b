#!/usr/bin/env python3
"""README's speed tables from one run of bench/all.sh.

Reads OUT/meta.json (date, CPU, commit: written by all.sh before anything
runs), OUT/translate.json (bench/translate_bench.py) and OUT/train.json
(bench/train_bench.py) and prints Markdown: the figures against issue 24's
targets, then each benchmark's sides.

    /usr/bin/python3 bench/tables.py runs/bench > runs/bench/tables.md
"""
import json
import os
import statistics
import sys


def load(out, name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        sys.exit(f"tables.py: {path} missing (did that step of bench/all.sh run?)")
    with open(path) as f:
        return json.load(f)


def mark(met):
    return "met" if met else "**not met**"


def training_rows(train):
    peak = train["sgemm_gflops"]
    figures = train["figures"]
    rows = {}
    for name, fig in figures.items():
        rows[name] = dict(rate=statistics.median(fig["rates"]),
                          mfu=100 * statistics.median(fig["flops_s"]) / 1e9 / peak,
                          rss=max(fig["rss"]))
    return rows


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    meta, tr, train = load(out, "meta.json"), load(out, "translate.json")["results"], load(out, "train.json")
    where = f"{meta['date']}, {meta['cpu']}, commit {meta['commit']}, {train['threads']} threads"
    t = training_rows(train)
    ref_b = "torch-cache-tuned"
    ratio = lambda a, b, beam: tr[f"{a}.beam{beam}"]["sent_s"] / tr[f"{b}.beam{beam}"]["sent_s"]  # noqa: E731

    lines = [f"Measured by one `bash bench/all.sh` ({where}).", ""]
    lines += ["| target | figure | |", "| --- | --- | --- |"]
    train_ratio = t["ours"]["rate"] / t["torch-tuned"]["rate"]
    lines.append(f"| training ≥ 1.5× the tuned torch.nn reference | {train_ratio:.2f}× "
                 f"({t['ours']['rate']:,.0f} vs {t['torch-tuned']['rate']:,.0f} target tokens/s) | {mark(train_ratio >= 1.5)} |")
    lines.append(f"| model-FLOP utilisation ≥ 65% (`small`) | {t['ours']['mfu']:.1f}% of "
                 f"{train['sgemm_gflops']:.0f} GFLOP/s | {mark(t['ours']['mfu'] >= 65)} |")
    curves = train.get("curves")
    if curves:
        c = curves
        lines.append(f"| same loss curve from the same weights and batches, within dropout-seed noise | "
                     f"mean \\|diff\\| {c['ours']['mean']:.4f} vs noise {c['noise']['mean']:.4f} "
                     f"({c['ours']['mean'] / c['noise']['mean']:.2f}×; signed {c['ours']['signed']:+.4f}) | "
                     f"{mark(c['within_noise'])} |")
    for beam, label in ((1, "greedy"), (4, "beam 4")):
        r = ratio("ours", ref_b, beam)
        lines.append(f"| {label} ≥ 3× the tuned cached reference (b) | {r:.2f}× "
                     f"({tr[f'ours.beam{beam}']['sent_s']:.1f} vs {tr[f'{ref_b}.beam{beam}']['sent_s']:.1f} sent/s) | {mark(r >= 3)} |")
    for beam, label in ((1, "greedy"), (4, "beam 4")):
        r = ratio("ours-1worker", ref_b, beam)
        lines.append(f"| {label} with `--workers 1` ≥ 2× (b) | {r:.2f}× | {mark(r >= 2)} |")
    int8 = ratio("ours-int8", "ours", 4)
    bleu = tr["ours-int8.beam4"]["bleu"] - tr["ours.beam4"]["bleu"]
    rss = tr["ours-int8.beam4"]["rss_mib"]
    lines.append(f"| `--int8` ≥ 2× our fp32 (beam 4) for ≤ 0.3 BLEU | {int8:.2f}×, BLEU {bleu:+.2f} | "
                 f"{mark(int8 >= 2 and bleu >= -0.3)} |")
    lines.append(f"| `--int8` peak RSS ≤ 500 MiB | {rss:.0f} MiB | {mark(rss <= 500)} |")

    lines += ["", f"Training: {train['steps']} updates of `small` per side, median target tokens/s after "
              f"update {train['warmup']}; MFU over this run's sgemm peak.", "",
              "| side | target tokens/s | MFU | peak RSS | ours / side |", "| --- | --- | --- | --- | --- |"]
    for name, row in t.items():
        rel = "—" if name == "ours" else f"{t['ours']['rate'] / row['rate']:.2f}×"
        lines.append(f"| {name} | {row['rate']:,.0f} | {row['mfu']:.1f}% | {row['rss']:.0f} MiB | {rel} |")

    sides = sorted({k.rsplit(".beam", 1)[0] for k in tr}, key=lambda s: (not s.startswith("ours"), s))
    lines += ["", "Translation: test_2016_flickr (1,000 sentences), medians of the runs.", "",
              "| side | greedy sent/s | beam 4 sent/s | beam-4 BLEU | peak RSS (beam 4) | greedy identical to ours | ours / side (greedy, beam 4) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for s in sides:
        g, b = tr.get(f"{s}.beam1"), tr.get(f"{s}.beam4")
        if not g or not b:
            continue
        same = "—" if s == "ours" else f"{g.get('greedy_identical', '?')}"
        rel = "—" if s == "ours" else f"{ratio('ours', s, 1):.2f}×, {ratio('ours', s, 4):.2f}×"
        lines.append(f"| {s} | {g['sent_s']:.1f} | {b['sent_s']:.1f} | {b['bleu']:.2f} | {b['rss_mib']:.0f} MiB | {same} | {rel} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
