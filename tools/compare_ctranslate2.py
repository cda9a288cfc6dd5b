#!/usr/bin/env python3
"""Prove that a CTranslate2 export decodes as aiayn-translate does.

    .venv-tools/bin/python tools/compare_ctranslate2.py --checkpoint CKPT --ct2 CT2_DIR \
        --input test.src --reference test.tgt [--require-greedy 100 --require-bleu-diff 0.1 \
        --require-score-diff 1e-3] [--json out.json]

On the same input, with the same threads, it compares
  greedy        token for token (pieces), sentence by sentence;
  beam 4        corpus BLEU (sacreBLEU, cased, default 13a) of both sides
                against --reference, at length penalty 0 (alpha 0 for us,
                length_penalty 0 for CTranslate2: the two penalties differ
                otherwise, tools/export_ctranslate2.py);
  forced scores aiayn-translate --score-targets against
                ctranslate2.Translator.score_batch on our greedy outputs:
                the summed log-probability of each target, </s> included.
Each --require-* turns a figure into a condition: exit 1 names each unmet one.
"""
import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_lines(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read().split("\n")[:-1]


def ours(args, work, name, extra):
    """aiayn-translate with extra options -> its output lines."""
    out = os.path.join(work, name)
    cmd = [args.aiayn_translate, "--checkpoint", args.checkpoint, "--input", args.input, "--output", out,
           "--threads", str(args.threads)] + extra
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"compare_ctranslate2: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return read_lines(out)


def length_limits(source, positions, a=1.0, b=50):
    """aiayn-translate's output limit per sentence, a*|x|+b (its defaults),
    within the model's positions; CTranslate2 counts max_decoding_length the
    same way (tokens before </s>)."""
    return [max(1, min(int(a * len(x)) + b, positions - 1)) for x in source]


def translate(translator, source, limits, **options):
    """translate_batch with one length limit per sentence: CTranslate2 takes
    one per call, so sentences are grouped by limit; results in input order."""
    out = [None] * len(source)
    for limit in sorted(set(limits)):
        rows = [i for i, l in enumerate(limits) if l == limit]
        results = translator.translate_batch([source[i] for i in rows], max_decoding_length=limit, **options)
        for i, r in zip(rows, results):
            out[i] = r.hypotheses[0]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="the aiayn checkpoint that was exported")
    ap.add_argument("--ct2", required=True, help="its CTranslate2 model directory")
    ap.add_argument("-i", "--input", required=True, help="source sentences, one per line")
    ap.add_argument("-r", "--reference", help="references, for beam-4 BLEU (without: no BLEU)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--aiayn-translate", default=os.path.join(ROOT, "build/bin/aiayn-translate"))
    ap.add_argument("--require-greedy", type=float, help="least %% of greedy outputs equal token for token")
    ap.add_argument("--require-bleu-diff", type=float, help="largest |BLEU ours - BLEU CTranslate2| at beam 4")
    ap.add_argument("--require-score-diff", type=float, help="largest |forced log-prob ours - CTranslate2|")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    import ctranslate2
    import sacrebleu
    import sentencepiece

    marker = os.path.join(args.ct2, "aiayn_export.json")
    if not os.path.isfile(marker):
        print(f"compare_ctranslate2: {marker} missing: --ct2 must be a directory written by "
              "tools/export_ctranslate2.py", file=sys.stderr)
        return 2
    for path in [args.input] + ([args.reference] if args.reference else []):
        if not os.path.exists(path):
            print(f"compare_ctranslate2: {path}: no such file", file=sys.stderr)
            return 2
    with open(marker, encoding="utf-8") as f:
        export = json.load(f)
    if args.reference and len(read_lines(args.reference)) != len(read_lines(args.input)):
        print(f"compare_ctranslate2: {args.reference} has {len(read_lines(args.reference))} lines but "
              f"{args.input} has {len(read_lines(args.input))}: give the references of these sources",
              file=sys.stderr)
        return 2
    limit = export["max_positions"] - 1
    source_sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(args.ct2, "source.spm"))
    target_sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(args.ct2, "target.spm"))
    lines = read_lines(args.input)
    source = [source_sp.encode(line, out_type=str)[:limit] for line in lines]
    translator = ctranslate2.Translator(args.ct2, device="cpu", inter_threads=1, intra_threads=args.threads)
    figures = dict(sentences=len(lines), ct2_model=args.ct2, checkpoint=args.checkpoint)
    failures = []
    work = tempfile.mkdtemp(prefix="compare_ctranslate2.")
    # Our outputs are only compared here; left behind, every CI run would add to $TMPDIR.
    atexit.register(shutil.rmtree, work, True)

    # Greedy, token for token.
    lengths = ["--max-len-a", "1", "--max-len-b", "50"]
    mine = [l.split() for l in ours(args, work, "greedy", ["--greedy", "--output-format", "pieces"] + lengths)]
    limits = length_limits(source, export["max_positions"])
    theirs = translate(translator, source, limits, beam_size=1, max_input_length=limit)
    same = sum(a == b for a, b in zip(mine, theirs))
    figures["greedy_identical"] = same
    figures["greedy_identical_pct"] = 100.0 * same / max(1, len(lines))
    print(f"greedy: {same} of {len(lines)} outputs identical, token for token "
          f"({figures['greedy_identical_pct']:.2f}%)")
    for i, (a, b) in enumerate(zip(mine, theirs)):
        if a != b and figures.setdefault("first_differences", 0) < 3:
            figures["first_differences"] += 1
            print(f"  line {i + 1}: ours  {' '.join(a)}\n  line {i + 1}: ct2   {' '.join(b)}")
    if args.require_greedy is not None and figures["greedy_identical_pct"] < args.require_greedy:
        failures.append(f"greedy identical {figures['greedy_identical_pct']:.2f}% < {args.require_greedy}%")

    # Beam 4 at length penalty 0, scored by sacreBLEU.
    if args.reference:
        refs = read_lines(args.reference)
        mine4 = [target_sp.decode_pieces(l.split()) for l in
                 ours(args, work, "beam4", ["--beam", "4", "--alpha", "0", "--output-format", "pieces"] + lengths)]
        theirs4 = [target_sp.decode_pieces(h) for h in translate(
            translator, source, limits, beam_size=4, length_penalty=0, max_input_length=limit)]
        bleu_mine = sacrebleu.corpus_bleu(mine4, [refs]).score
        bleu_theirs = sacrebleu.corpus_bleu(theirs4, [refs]).score
        figures.update(bleu_beam4_ours=bleu_mine, bleu_beam4_ct2=bleu_theirs,
                       beam4_identical=sum(a == b for a, b in zip(mine4, theirs4)))
        print(f"beam 4: BLEU ours {bleu_mine:.2f}, CTranslate2 {bleu_theirs:.2f} "
              f"(|diff| {abs(bleu_mine - bleu_theirs):.2f}); {figures['beam4_identical']} outputs identical")
        if args.require_bleu_diff is not None and abs(bleu_mine - bleu_theirs) > args.require_bleu_diff:
            failures.append(f"beam-4 BLEU differs by {abs(bleu_mine - bleu_theirs):.3f} > {args.require_bleu_diff}")

    # Forced scores of our greedy outputs.
    targets = os.path.join(work, "greedy.text")
    with open(targets, "w", encoding="utf-8") as f:
        f.writelines(target_sp.decode_pieces(p) + "\n" for p in mine)
    scored = ours(args, work, "scores", ["--score-targets", targets])
    mine_lp = [float(l.split(" ||| ")[3]) for l in scored]
    target_pieces = [target_sp.encode(target_sp.decode_pieces(p), out_type=str) for p in mine]
    theirs_lp = [sum(r.log_probs) for r in translator.score_batch(source, target_pieces, max_input_length=limit)]
    worst = max(abs(a - b) for a, b in zip(mine_lp, theirs_lp))
    figures["score_max_abs_diff"] = worst
    print(f"forced scores: largest |log-prob ours - CTranslate2| {worst:.2e} over {len(mine_lp)} targets")
    if args.require_score_diff is not None and worst > args.require_score_diff:
        failures.append(f"forced scores differ by {worst:.2e} > {args.require_score_diff}")

    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=1)
    for failure in failures:
        print(f"compare_ctranslate2: NOT MET: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
