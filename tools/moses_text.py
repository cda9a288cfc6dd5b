#!/usr/bin/env python3
"""The Multi30k literature setting's text: lowercased, normalised, Moses-tokenized.

Wu et al. (ACL 2021) train and score on the multi30k repository's
`*.lc.norm.tok` files, made by its task1-tokenize.sh with the Moses scripts:
lowercase, then normalise punctuation, then tokenize (default options, so
'&apos;'-style escapes on, no aggressive hyphen splitting). This tool makes
the same with sacremoses, the Moses scripts' Python port; they report BLEU
over those tokens, which tools/recipe_scores.py computes.

  moses_text.py prepare DATA_DIR OUT_DIR LANG...
      writes OUT_DIR/<name>.<lang> for every DATA_DIR/<name>.<lang>
      (lowercased, normalised, tokenized); an output newer than its input is kept.

Bad input (a missing directory, no file of a language) is one line on stderr, exit 2.
"""
import argparse
import os
import sys


class InputError(Exception):
    pass


def read_lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().split("\n")[:-1] if os.path.getsize(path) else []
    except FileNotFoundError:
        raise InputError(f"{path}: no such file")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})")


class MosesPipeline:
    """lowercase.perl | normalize-punctuation.perl -l L | tokenizer.perl -l L."""

    def __init__(self, lang):
        from sacremoses import MosesPunctNormalizer, MosesTokenizer
        self.normalizer = MosesPunctNormalizer(lang=lang)
        self.tokenizer = MosesTokenizer(lang=lang)

    def __call__(self, line):
        text = self.normalizer.normalize(line.lower())
        return self.tokenizer.tokenize(text, escape=True, return_str=True).strip()


def prepare(data_dir, out_dir, langs):
    if not os.path.isdir(data_dir):
        raise InputError(f"{data_dir}: no such directory")
    os.makedirs(out_dir, exist_ok=True)
    written = 0
    for lang in langs:
        pipeline = None
        names = sorted(n for n in os.listdir(data_dir) if n.endswith("." + lang))
        if not names:
            raise InputError(f"{data_dir}: no *.{lang} files")
        for name in names:
            src, dst = os.path.join(data_dir, name), os.path.join(out_dir, name)
            if os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src):
                continue
            pipeline = pipeline or MosesPipeline(lang)
            lines = [pipeline(line) for line in read_lines(src)]
            # Written under another name first: an interrupted run leaves no
            # half file that a later run would take as up to date.
            with open(dst + ".part", "w", encoding="utf-8") as f:
                f.writelines(line + "\n" for line in lines)
            os.replace(dst + ".part", dst)
            written += 1
            print(f"moses_text: {dst}: {len(lines)} lines", file=sys.stderr)
    print(f"moses_text: {out_dir}: {written} files written, the rest up to date", file=sys.stderr)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare", help="lowercase, normalise, tokenize a data directory")
    p.add_argument("data_dir")
    p.add_argument("out_dir")
    p.add_argument("langs", nargs="+")
    args = parser.parse_args(argv)
    try:
        prepare(args.data_dir, args.out_dir, args.langs)
    except InputError as e:
        print(f"moses_text: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
