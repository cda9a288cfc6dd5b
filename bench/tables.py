#!/usr/bin/env python3
"""README's speed tables from one bench/all.sh run.

Reads OUT/meta.json (date, CPU, commit; all.sh writes it first),
OUT/translate.json (bench/translate_bench.py) and OUT/train.json
(bench/train_bench.py --same-init) and prints Markdown: the issue's targets
with this run's figures, then every side of each benchmark. Reference (b) is
the cached torch.nn decoder with every process setting ours gives itself
(torch-cache-tuned); the training reference is torch-tuned likewise.

    /usr/bin/python3 bench/tables.py runs/bench > runs/bench/tables.md
"""
import json
import os
import statistics
import sys


def load(out, name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        sys.exit(f"tables.py: {path} missing (run bench/all.sh)")
    with open(path) as f:
        return json.load(f)


def mark(ok):
    return "met" if ok else "**not met**"


def target_rows(tr, tn):
    """(what, figure, target, verdict) for each of the issue's targets present."""
    rows = []
    res = tr["results"] if tr else {}
    ref = "torch-cache-tuned"
    for beam, label in ((1, "greedy"), (4, "beam 4")):
        b = res.get(f"{ref}.beam{beam}")
        for side, target, what in (("ours", 3.0, "one worker per core"), ("ours-1worker", 2.0, "`--workers 1`")):
            mine = res.get(f"{side}.beam{beam}")
            if b and mine:
                r = mine["sent_s"] / b["sent_s"]
                rows.append((f"{label} translation, {what}, vs reference (b)", f"{r:.2f}×", f"≥ {target:g}×",
                             mark(r >= target)))
    fp32, int8 = res.get("ours.beam4"), res.get("ours-int8.beam4")
    if fp32 and int8:
        r = int8["sent_s"] / fp32["sent_s"]
        rows.append(("`--int8` vs our fp32, beam 4", f"{r:.2f}×", "≥ 2×", mark(r >= 2.0)))
        d = int8["bleu"] - fp32["bleu"]
        rows.append(("`--int8` BLEU change, beam 4", f"{d:+.2f}", "≥ −0.3", mark(d >= -0.3)))
        rss = max(res[k]["rss_mib"] for k in ("ours-int8.beam1", "ours-int8.beam4") if k in res)
        rows.append(("`--int8` peak RSS", f"{rss:.0f} MiB", "≤ 500 MiB", mark(rss <= 500)))
    if tn:
        figs, peak = tn["figures"], tn["sgemm_gflops"]
        if "ours" in figs and "torch-tuned" in figs:
            r = statistics.median(figs["ours"]["rates"]) / statistics.median(figs["torch-tuned"]["rates"])
            rows.insert(0, ("training vs the tuned reference", f"{r:.2f}×", "≥ 1.5×", mark(r >= 1.5)))
        if "ours" in figs:
            mfu = 100 * statistics.median(figs["ours"]["flops_s"]) / 1e9 / peak
            rows.insert(1, ("model-FLOP utilisation, `small`", f"{mfu:.1f}%", "≥ 65%", mark(mfu >= 65)))
        curves = tn.get("curves")
        if curves and "ours" in curves["sides"]:
            c = curves["sides"]["ours"]
            rows.insert(2, ("loss curve vs the reference, same weights and batches",
                            f"mean \\|diff\\| {c['mean_abs']:.4f}, bias {c['mean_signed']:+.4f} "
                            f"(noise {curves['noise_mean_abs']:.4f})",
                            "within the noise", mark(c["within_noise"])))
    return rows


def translation_rows(tr):
    res = tr["results"]
    for key, e in res.items():
        side, beam = key.rsplit(".beam", 1)
        mine = res.get(f"ours.beam{beam}")
        bleu = f"{e['bleu']:.2f}" if "bleu" in e else "—"
        same = f"{e['greedy_identical']}" if "greedy_identical" in e else "—"
        yield (side, beam, f"{e['sent_s']:.1f}", f"{e['tok_s']:.0f}", f"{e['rss_mib']:.0f}", bleu, same,
               f"{mine['sent_s'] / e['sent_s']:.2f}×" if mine else "—")


def training_rows(tn):
    figs, peak = tn["figures"], tn["sgemm_gflops"]
    ours = statistics.median(figs["ours"]["rates"]) if "ours" in figs else None
    for side, f in figs.items():
        rate = statistics.median(f["rates"])
        mfu = 100 * statistics.median(f["flops_s"]) / 1e9 / peak
        yield (side, f"{rate:.0f}", f"{mfu:.1f}%", f"{max(f['rss']):.0f}",
               f"{ours / rate:.2f}×" if ours else "—")


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tables.py OUT_DIR (the directory bench/all.sh wrote)")
    out = sys.argv[1]
    meta = load(out, "meta.json")
    tr = load(out, "translate.json") if os.path.exists(os.path.join(out, "translate.json")) else None
    tn = load(out, "train.json") if os.path.exists(os.path.join(out, "train.json")) else None
    if not tr and not tn:
        sys.exit(f"tables.py: neither {out}/translate.json nor {out}/train.json (run bench/all.sh)")
    print(f"One `bash bench/all.sh` run: {meta['date']}, {meta['cpu']}, commit {meta['commit']}, "
          f"{meta['threads']} threads, {meta.get('blas', 'BLAS kernel not recorded')}, "
          f"model {meta['run']} ({meta['pair']}).\n")
    print(table(("target", "this run", "target", ""), target_rows(tr, tn)))
    if tr:
        print(f"\nTranslation ({meta['input']}, {tr['threads']} threads; medians of the runs):\n")
        print(table(("side", "beam", "sent/s", "tok/s", "peak RSS MiB", "BLEU", "greedy = ours", "ours / side"),
                    translation_rows(tr)))
    if tn:
        print(f"\nTraining (`small`, {tn['steps']} updates from the same initial weights and batches, "
              f"steady state after update {tn['warmup']}; sgemm peak {tn['sgemm_gflops']:.1f} GFLOP/s):\n")
        print(table(("side", "tgt tokens/s", "MFU", "peak RSS MiB", "ours / side"), training_rows(tn)))


if __name__ == "__main__":
    main()
