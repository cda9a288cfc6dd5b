#!/usr/bin/env python3
"""Scores of the Multi30k recipe (scripts/multi30k.sh), and their spread over seeds.

  recipe_scores.py score HYP REF --setting ours|literature --lang L --label NAME --tsv FILE
      ours: sacreBLEU BLEU (13a) cased and lowercased and chrF2, each with its
            signature, and BLEU in Wu et al.'s convention (HYP and REF
            lowercased, normalised and Moses-tokenized, then BLEU over tokens);
      literature: HYP and REF are already Moses-processed text: BLEU over
            tokens, as Wu et al. (ACL 2021) report it.
      Prints each score; appends "NAME<TAB>metric<TAB>value" lines to FILE.
  recipe_scores.py summary RUN_DIR
      mean +- standard deviation (n - 1) of every score over RUN_DIR/seed*/scores.tsv.

Bad input (a missing file, unequal line counts) is one line on stderr, exit 2.
"""
import argparse
import glob
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from moses_text import InputError, MosesPipeline, read_lines  # noqa: E402


def scores(hyps, refs, setting, lang):
    """[(metric, value, signature)] for one output."""
    from sacrebleu.metrics import BLEU, CHRF
    out = []
    if setting == "ours":
        for metric, name in ((BLEU(), "bleu"), (BLEU(lowercase=True), "bleu_lc"), (CHRF(), "chrf2")):
            out.append((name, metric.corpus_score(hyps, [refs]).score, str(metric.get_signature())))
        pipeline = MosesPipeline(lang)
        hyps, refs = [pipeline(h) for h in hyps], [pipeline(r) for r in refs]
    tokens = BLEU(tokenize="none", lowercase=True, force=True)
    out.append(("bleu_tok", tokens.corpus_score(hyps, [refs]).score,
                str(tokens.get_signature()) + " (Moses-processed text, Wu et al.'s convention)"))
    return out


def score(args):
    hyps, refs = read_lines(args.hyp), read_lines(args.ref)
    if len(hyps) != len(refs):
        raise InputError(f"{args.hyp}: {len(hyps)} lines, but {args.ref} has {len(refs)}")
    rows = scores(hyps, refs, args.setting, args.lang)
    for metric, value, signature in rows:
        print(f"{args.label}: {metric} = {value:.2f}  {signature}")
    with open(args.tsv, "a", encoding="utf-8") as f:
        f.writelines(f"{args.label}\t{metric}\t{value:.4f}\n" for metric, value, _ in rows)


def summary(args):
    files = sorted(glob.glob(os.path.join(args.run_dir, "seed*", "scores.tsv")))
    if not files:
        raise InputError(f"{args.run_dir}: no seed*/scores.tsv")
    values = {}
    for path in files:
        for number, line in enumerate(read_lines(path), 1):
            fields = line.split("\t")
            try:
                values.setdefault((fields[0], fields[1]), []).append(float(fields[2]))
            except (IndexError, ValueError):
                raise InputError(f"{path}:{number}: expected label, metric and value separated by tabs")
    print(f"over {len(files)} seeds ({', '.join(os.path.basename(os.path.dirname(f)) for f in files)}):")
    for (label, metric), v in values.items():
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        print(f"  {label} {metric}: {statistics.mean(v):.2f} +- {sd:.2f}  ({', '.join(f'{x:.2f}' for x in v)})")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("score", help="score one output")
    s.add_argument("hyp")
    s.add_argument("ref")
    s.add_argument("--setting", choices=["ours", "literature"], required=True)
    s.add_argument("--lang", required=True, help="the target language (Moses processing)")
    s.add_argument("--label", required=True)
    s.add_argument("--tsv", required=True)
    m = commands.add_parser("summary", help="mean and spread over seeds")
    m.add_argument("run_dir")
    args = parser.parse_args(argv)
    try:
        score(args) if args.command == "score" else summary(args)
    except InputError as e:
        print(f"recipe_scores: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
