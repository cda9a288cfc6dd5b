#!/usr/bin/env python3
"""Translation speed: ours against CTranslate2 on the same model, one session.

Exports the checkpoint to CTranslate2 (tools/export_ctranslate2.py), float32
and int8, then for each cell (fp32 | int8) x (greedy | beam 4) x (1 | 2
threads) translates the test input with
  ours   build/bin/aiayn-translate --threads T [--int8] (its default workers)
  ct2    bench/ct2_decode.py with CTranslate2's best settings for the cell,
         chosen on the validation input: inter_threads against intra_threads,
         and max_batch_size (batch_type "tokens")
each in a process of its own, repeated; prints medians (sentences/s, target
tokens/s), peak RSS, the ratio ours/ct2, and sacreBLEU (cased) of each output.
Both sides read text and write pieces; both time tokenization and
translation, not process start or loading. Length penalty 0 on both sides
(the only value where the two penalties agree), so the outputs are the same.

Then CTranslate2's own protocol (its README's benchmark): beam 4, batches of
32 sentences, length penalty 0, target tokens/s of translation alone (CT2's
translate_batch; ours: its loop, which includes tokenization), all threads.

    .venv-tools/bin/python bench/ctranslate2_bench.py --checkpoint runs/m30k-small-de-en/averaged \
        --input ../shared/data/multi30k/test_2016_flickr.de --reference ...en \
        --valid-input ../shared/data/multi30k/val.de [--repeat 3] [--json out.json] [--markdown out.md]
"""
import argparse
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, HERE)
from peak_rss import run_captured  # noqa: E402


def run_measured(cmd):
    """cmd -> (stdout, stderr, the command's own peak RSS in MiB, bench/peak_rss.py)."""
    return run_captured(cmd, "ctranslate2_bench")


def count_pieces(path):
    with open(path, encoding="utf-8", newline="") as f:
        return sum(len(line.split()) for line in f)


def ours(args, source, output, beam, threads, int8, batch=None):
    cmd = [args.aiayn_translate, "--checkpoint", args.checkpoint, "--input", source, "--output", output,
           "--beam", str(beam), "--alpha", "0", "--max-len-a", "1", "--max-len-b", "50",
           "--threads", str(threads), "--output-format", "pieces"]
    if int8:
        cmd.append("--int8")
    if batch:
        cmd += ["--batch-size", str(batch), "--batch-tokens", "10000000"]
    _, err, rss = run_measured(cmd)
    m = re.search(r"translated (\d+) sentences \((\d+) tokens\) in ([0-9.e+-]+) s", err)
    if not m:
        sys.exit(f"ctranslate2_bench: no summary line from aiayn-translate:\n{err}")
    seconds = float(m.group(3))
    return dict(sentences=int(m.group(1)), tokens=count_pieces(output), seconds=seconds,
                translate_seconds=seconds, rss=rss)


def ct2(args, model, source, output, beam, setting):
    cmd = [sys.executable, os.path.join(HERE, "ct2_decode.py"), "--model", model, "--input", source,
           "--output", output, "--beam", str(beam), "--inter-threads", str(setting["inter"]),
           "--intra-threads", str(setting["intra"]), "--max-batch-size", str(setting["batch"]),
           "--batch-type", setting["batch_type"]]
    out, _, rss = run_measured(cmd)
    r = json.loads(out.strip().splitlines()[-1])
    return dict(r, rss=rss)


def choose_ct2_setting(args, model, threads, work):
    """CTranslate2's fastest threading and batch size for `threads`, on the
    validation input, greedy and beam 4 together."""
    splits = [(1, threads)] + ([(threads, 1)] if threads > 1 else [])
    best = None
    for (inter, intra), batch in itertools.product(splits, args.ct2_batches):
        setting = dict(inter=inter, intra=intra, batch=batch, batch_type="tokens")
        seconds = sum(ct2(args, model, args.valid_input, os.path.join(work, "valid.out"), beam, setting)["seconds"]
                      for beam in (1, 4))
        if best is None or seconds < best[0]:
            best = (seconds, setting)
    return best[1]


def bleu(path, refs, detok):
    import sacrebleu
    with open(path, encoding="utf-8", newline="") as f:
        hyps = [detok(line.split()) for line in f.read().split("\n")[:-1]]
    return sacrebleu.corpus_bleu(hyps, [refs]).score


def measure(fn, repeat):
    runs = [fn() for _ in range(repeat)]
    return dict(sent_s=statistics.median(r["sentences"] / r["seconds"] for r in runs),
                tok_s=statistics.median(r["tokens"] / r["seconds"] for r in runs),
                translate_tok_s=statistics.median(r["tokens"] / r["translate_seconds"] for r in runs),
                rss_mib=max(r["rss"] for r in runs), runs=len(runs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--valid-input", required=True, help="chooses CTranslate2's settings (never the test input)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--ct2-batches", default="256,1024,4096", help="max_batch_size candidates, in tokens")
    ap.add_argument("--aiayn-translate", default=os.path.join(ROOT, "build/bin/aiayn-translate"))
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    args = ap.parse_args()
    args.ct2_batches = [int(b) for b in args.ct2_batches.split(",")]
    import ctranslate2
    import sentencepiece
    from export_ctranslate2 import export

    work = tempfile.mkdtemp(prefix="ctranslate2_bench.")
    models = {}
    for kind, quantization in (("fp32", "float32"), ("int8", "int8")):
        models[kind] = export(args.checkpoint, os.path.join(work, f"ct2-{kind}"), quantization)
    target_sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(models["fp32"], "target.spm"))
    with open(args.reference, encoding="utf-8", newline="") as f:
        refs = f.read().split("\n")[:-1]
    detok = target_sp.decode_pieces
    threads_list = [int(t) for t in args.threads.split(",")]

    settings = {}
    for kind, threads in itertools.product(models, threads_list):
        settings[f"{kind}.t{threads}"] = choose_ct2_setting(args, models[kind], threads, work)
        print(f"  CTranslate2 {kind}, {threads} thread(s): chosen on validation {settings[f'{kind}.t{threads}']}",
              flush=True)

    cells = {}
    for kind, beam, threads in itertools.product(models, (1, 4), threads_list):
        key = f"{kind}.beam{beam}.t{threads}"
        out_ours = os.path.join(work, f"ours.{key}.txt")
        out_ct2 = os.path.join(work, f"ct2.{key}.txt")
        setting = settings[f"{kind}.t{threads}"]
        a = measure(lambda: ours(args, args.input, out_ours, beam, threads, kind == "int8"), args.repeat)
        b = measure(lambda: ct2(args, models[kind], args.input, out_ct2, beam, setting), args.repeat)
        with open(out_ours, encoding="utf-8", newline="") as f1, open(out_ct2, encoding="utf-8", newline="") as f2:
            same = sum(x == y for x, y in zip(f1, f2))
        cells[key] = dict(kind=kind, beam=beam, threads=threads, ours=a, ct2=b, ct2_setting=setting,
                          ratio=a["sent_s"] / b["sent_s"], identical=same,
                          bleu_ours=bleu(out_ours, refs, detok), bleu_ct2=bleu(out_ct2, refs, detok))
        print(f"  {key:18s} ours {a['sent_s']:8.1f} sent/s {a['rss_mib']:5.0f} MiB | ct2 {b['sent_s']:8.1f} sent/s "
              f"{b['rss_mib']:5.0f} MiB | {cells[key]['ratio']:.2f}x | BLEU {cells[key]['bleu_ours']:.2f} / "
              f"{cells[key]['bleu_ct2']:.2f} | identical {same}", flush=True)

    # CTranslate2's README protocol: beam 4, 32 sentences a batch, length penalty 0.
    threads = max(threads_list)
    protocol = {}
    for kind in models:
        out_ours = os.path.join(work, f"ours.protocol.{kind}.txt")
        out_ct2 = os.path.join(work, f"ct2.protocol.{kind}.txt")
        best = settings[f"{kind}.t{threads}"]
        setting = dict(inter=best["inter"], intra=best["intra"], batch=32, batch_type="examples")
        a = measure(lambda: ours(args, args.input, out_ours, 4, threads, kind == "int8", batch=32), args.repeat)
        b = measure(lambda: ct2(args, models[kind], args.input, out_ct2, 4, setting), args.repeat)
        protocol[kind] = dict(ours=a, ct2=b, ct2_setting=setting, threads=threads,
                              ratio=a["translate_tok_s"] / b["translate_tok_s"])
        print(f"  protocol {kind}: ours {a['translate_tok_s']:.0f} tok/s, ct2 {b['translate_tok_s']:.0f} tok/s, "
              f"{protocol[kind]['ratio']:.2f}x", flush=True)

    result = dict(date=time.strftime("%Y-%m-%d %H:%M"), ctranslate2=ctranslate2.__version__,
                  checkpoint=args.checkpoint, input=os.path.basename(args.input), cells=cells, protocol=protocol)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    md = markdown(result)
    print(md)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)


def markdown(r):
    def setting(s):
        return f"inter {s['inter']} × intra {s['intra']}, {s['batch']} {s['batch_type']}"
    lines = [f"Ours against CTranslate2 {r['ctranslate2']} on the same model ({r['input']}; length penalty 0 on "
             "both sides; medians; each side in its own process; sentences/s include tokenization):", "",
             "| weights | search | threads | ours sent/s | CTranslate2 sent/s | ours / CT2 | ours RSS MiB | "
             "CT2 RSS MiB | BLEU ours / CT2 | same outputs | CT2 setting (chosen on val) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |"]
    for c in r["cells"].values():
        lines.append(f"| {c['kind']} | {'greedy' if c['beam'] == 1 else 'beam 4'} | {c['threads']} | "
                     f"{c['ours']['sent_s']:,.0f} | {c['ct2']['sent_s']:,.0f} | **{c['ratio']:.2f}×** | "
                     f"{c['ours']['rss_mib']:,.0f} | {c['ct2']['rss_mib']:,.0f} | {c['bleu_ours']:.2f} / "
                     f"{c['bleu_ct2']:.2f} | {c['identical']} | {setting(c['ct2_setting'])} |")
    lines += ["", "CTranslate2's own protocol (beam 4, 32 sentences a batch, length penalty 0, target tokens/s; "
              "CT2: translate_batch alone; ours: its loop, tokenization included):", "",
              "| weights | threads | ours tok/s | CTranslate2 tok/s | ours / CT2 | ours RSS MiB | CT2 RSS MiB |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for kind, p in r["protocol"].items():
        lines.append(f"| {kind} | {p['threads']} | {p['ours']['translate_tok_s']:,.0f} | "
                     f"{p['ct2']['translate_tok_s']:,.0f} | **{p['ratio']:.2f}×** | {p['ours']['rss_mib']:,.0f} | "
                     f"{p['ct2']['rss_mib']:,.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
