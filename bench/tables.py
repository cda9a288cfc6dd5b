#!/usr/bin/env python3
"""README's speed tables from one bench/all.sh run.

Reads OUT/meta.json (date, CPU, commit; all.sh writes it first),
OUT/translate.json (bench/translate_bench.py), OUT/ctranslate2.json and .md
(bench/ctranslate2_bench.py) and OUT/train.json (bench/train_bench.py
--same-init) and prints Markdown: issue 38's targets
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


def target_rows(tr, tn, ct):
    """(what, figure, target, verdict) for each of issue 38's targets present."""
    rows = []
    cells = ct["cells"] if ct else {}
    for c in cells.values():
        label = f"{c['kind']} {'greedy' if c['beam'] == 1 else 'beam 4'}, {c['threads']} thread{'s' * (c['threads'] > 1)}"
        rows.append((f"vs CTranslate2, {label}", f"{c['ratio']:.2f}×", "≥ 1.0× (stretch 1.25×)",
                     mark(c["ratio"] >= 1.0) + (", stretch met" if c["ratio"] >= 1.25 else "")))
    for c in cells.values():
        label = f"{c['kind']} {'greedy' if c['beam'] == 1 else 'beam 4'}, {c['threads']} thread{'s' * (c['threads'] > 1)}"
        a, b = c["ours"]["rss_mib"], c["ct2"]["rss_mib"]
        rows.append((f"peak RSS vs CTranslate2, {label}", f"{a:.0f} vs {b:.0f} MiB", "≤ CTranslate2's", mark(a <= b)))
    for threads in sorted({c["threads"] for c in cells.values()}):
        fp32, int8 = cells.get(f"fp32.beam4.t{threads}"), cells.get(f"int8.beam4.t{threads}")
        if fp32 and int8:
            r = int8["ours"]["sent_s"] / fp32["ours"]["sent_s"]
            rows.append((f"our int8 vs our fp32, beam 4, {threads} thread(s)", f"{r:.2f}×", "≥ 1.8×", mark(r >= 1.8)))
            d = int8["bleu_ours"] - fp32["bleu_ours"]
            rows.append((f"our int8 BLEU change, beam 4", f"{d:+.2f}", "≥ −0.3", mark(d >= -0.3)))
    if tn:
        figs, peak = tn["figures"], tn["sgemm_gflops"]
        refs = [n for n in ("torch-tuned", "torch2-tuned") if n in figs]
        if "ours" in figs and refs:
            fastest = max(refs, key=lambda n: statistics.median(figs[n]["rates"]))
            r = statistics.median(figs["ours"]["rates"]) / statistics.median(figs[fastest]["rates"])
            rows.insert(0, (f"training vs the fastest PyTorch reference ({fastest})", f"{r:.2f}×", "≥ 1.5×",
                            mark(r >= 1.5)))
        if "ours" in figs:
            mfu = 100 * statistics.median(figs["ours"]["flops_s"]) / 1e9 / peak
            rows.insert(1, ("model-FLOP utilisation, `small`", f"{mfu:.1f}%", "≥ 60%", mark(mfu >= 60)))
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
    ct = load(out, "ctranslate2.json") if os.path.exists(os.path.join(out, "ctranslate2.json")) else None
    if not tr and not tn and not ct:
        sys.exit(f"tables.py: none of {out}/translate.json, train.json, ctranslate2.json (run bench/all.sh)")
    print(f"One `bash bench/all.sh` run: {meta['date']}, {meta['cpu']}, commit {meta['commit']}, "
          f"{meta['threads']} threads, {meta.get('blas', 'BLAS kernel not recorded')}, "
          f"model {meta['run']} ({meta['pair']}).\n")
    print(table(("target", "this run", "target", ""), target_rows(tr, tn, ct)))
    if ct:
        print()
        with open(os.path.join(out, "ctranslate2.md"), encoding="utf-8") as f:
            print(f.read().rstrip("\n"))
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
