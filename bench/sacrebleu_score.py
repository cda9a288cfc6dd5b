#!/usr/bin/env python3
"""Corpus BLEU of a hypothesis file by sacreBLEU itself (cased, 13a, its
defaults), for the benchmarks that run on an interpreter without it:

    .venv-tools/bin/python bench/sacrebleu_score.py HYP REF   -> prints the score

bench/translate_bench.py calls it through `score(hyp, ref)`. Lines are split
on '\\n' only (newline=""), as aiayn-translate reads them.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = os.path.join(os.path.dirname(HERE), ".venv-tools", "bin", "python")


def score(hyp_path, ref_path):
    """sacreBLEU's corpus BLEU of two files, through .venv-tools."""
    if not os.access(PYTHON, os.X_OK):
        sys.exit(f"sacrebleu_score: {PYTHON} missing (bash scripts/setup.sh installs sacrebleu there)")
    out = subprocess.run([PYTHON, os.path.abspath(__file__), hyp_path, ref_path], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"sacrebleu_score: {hyp_path}: {out.stderr.strip()}")
    return float(out.stdout)


def main():
    import sacrebleu
    hyp_path, ref_path = sys.argv[1:3]
    with open(hyp_path, encoding="utf-8", newline="") as f:
        hyps = f.read().split("\n")[:-1]
    with open(ref_path, encoding="utf-8", newline="") as f:
        refs = f.read().split("\n")[:-1]
    if len(hyps) != len(refs):
        sys.exit(f"{len(hyps)} hypotheses but {len(refs)} references")
    print(sacrebleu.corpus_bleu(hyps, [refs]).score)


if __name__ == "__main__":
    main()
