#!/usr/bin/env python3
"""Reference numbers for test_bleu: NLTK's corpus BLEU and independent checks.

Reads from DIR, written by the C++ test (UTF-8, one segment per line):
  hyp.txt, ref.txt   raw hypotheses and references
  hyp.tok, ref.tok   the same after the C++ 13a tokenizer (and lowercasing)
  lower.in, lower.out  (optional) text and the C++ lowercase_utf8 of it

Prints one JSON object:
  bleu        100 * nltk.translate.bleu_score.corpus_bleu on the C++ tokens
              (default 4-gram uniform weights, no smoothing)
  hyp_len, ref_len   token counts of the C++ tokens
  tok_mismatches     lines where a Python re-based 13a tokenizer, written here
                     from sacreBLEU's published rules, differs from the C++ one
  chrf        sacreBLEU-2.x-default chrF2 of the raw lines, computed here with
              Python's own Unicode strings (an independent transcription of
              the definition, not a copy of sacreBLEU)
  lower_mismatches   lines where str.lower() differs from the C++ lowercasing

Run with Debian's /usr/bin/python3 (python3-nltk):
    nltk_bleu.py DIR [--lowercase]
"""
import argparse
import json
import os
import re
import sys
from collections import Counter

from nltk.translate.bleu_score import corpus_bleu


def read_lines(path):
    # newline='' and split('\n'): only '\n' ends a line, as in the C++ test
    # (str.splitlines would also split on \x1c, \x85, U+2028, ...).
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


# sacreBLEU's 13a: mteval-v13a's language-independent replacements, then the
# four regex rules applied in order with re.sub, then whitespace normalised.
RULES = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]


def tokenize_13a(line):
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    for entity, char in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
        line = line.replace(entity, char)
    line = " " + line + " "
    for pattern, repl in RULES:
        line = pattern.sub(repl, line)
    return " ".join(line.split())


def chrf(hyps, refs, lowercase, order=6, beta=2.0):
    n_hyp, n_ref, n_match = [0] * order, [0] * order, [0] * order
    for h, r in zip(hyps, refs):
        if lowercase:
            h, r = h.lower(), r.lower()
        h, r = "".join(h.split()), "".join(r.split())
        for n in range(1, order + 1):
            hc = Counter(h[i:i + n] for i in range(len(h) - n + 1))
            rc = Counter(r[i:i + n] for i in range(len(r) - n + 1))
            n_hyp[n - 1] += sum(hc.values()) if rc else 0
            n_ref[n - 1] += sum(rc.values())
            n_match[n - 1] += sum((hc & rc).values())
    prec = [m / h for m, h, r in zip(n_match, n_hyp, n_ref) if h > 0 and r > 0]
    rec = [m / r for m, h, r in zip(n_match, n_hyp, n_ref) if h > 0 and r > 0]
    if not prec:
        return 0.0
    p, r = sum(prec) / len(prec), sum(rec) / len(rec)
    if p + r == 0:
        return 0.0
    b2 = beta * beta
    return 100.0 * (1 + b2) * p * r / (b2 * p + r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--lowercase", action="store_true")
    args = ap.parse_args()
    d = args.dir

    hyp_raw, ref_raw = read_lines(os.path.join(d, "hyp.txt")), read_lines(os.path.join(d, "ref.txt"))
    hyp_tok, ref_tok = read_lines(os.path.join(d, "hyp.tok")), read_lines(os.path.join(d, "ref.tok"))
    assert len(hyp_raw) == len(ref_raw) == len(hyp_tok) == len(ref_tok), "line counts differ"

    mismatches = 0
    for raw, tok in zip(hyp_raw + ref_raw, hyp_tok + ref_tok):
        ours = tokenize_13a((raw.lower() if args.lowercase else raw).rstrip())
        if ours != tok:
            if mismatches < 5:
                print(f"13a mismatch on {raw!r}:\n  python {ours!r}\n  c++    {tok!r}",
                      file=sys.stderr)
            mismatches += 1

    hyps = [t.split() for t in hyp_tok]
    refs = [[t.split()] for t in ref_tok]
    result = {
        "bleu": 100.0 * corpus_bleu(refs, hyps),
        "hyp_len": sum(len(h) for h in hyps),
        "ref_len": sum(len(r[0]) for r in refs),
        "tok_mismatches": mismatches,
        "chrf": chrf(hyp_raw, ref_raw, args.lowercase),
        "lines": len(hyps),
    }

    lower_in = os.path.join(d, "lower.in")
    if os.path.exists(lower_in):
        src, out = read_lines(lower_in), read_lines(os.path.join(d, "lower.out"))
        assert len(src) == len(out), "lower.in/lower.out line counts differ"
        bad = [(s, o) for s, o in zip(src, out) if s.lower() != o]
        for s, o in bad[:5]:
            print(f"lower mismatch: {s!r} -> python {s.lower()!r}, c++ {o!r}", file=sys.stderr)
        result["lower_mismatches"] = len(bad)

    print(json.dumps(result))


if __name__ == "__main__":
    main()
