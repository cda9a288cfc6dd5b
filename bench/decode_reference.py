#!/usr/bin/env python3
"""Decoding reference: translate a file with one of our checkpoints through
torch.nn (bench/reference.py), without cache (a) or with one (b).

    /usr/bin/python3 bench/decode_reference.py --checkpoint DIR --input SRC \
        --output HYP --mode cache|nocache --beam 4 [--threads N]

Prints one JSON line: sentences, tokens, seconds (decoding only, after the
model and tokenizer are loaded), sentences/s, tokens/s, peak RSS in MiB.
"""
import argparse
import json
import os
import resource
import time

import sentencepiece as spm
import torch

import reference as ref


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--mode", choices=["cache", "nocache"], required=True)
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--output-format", choices=["text", "ids"], default="text")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = ref.load_checkpoint(args.checkpoint)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.checkpoint, "spm.model"))
    longest = model.config["max_positions"] - 1
    sources = [ids[:longest] for ids in sp.encode(ref.read_lines(args.input))]
    stepper = ref.CachedStepper if args.mode == "cache" else ref.NoCacheStepper

    start = time.monotonic()
    outputs = ref.translate(model, sources, args.beam, stepper)
    seconds = time.monotonic() - start

    with open(args.output, "w", encoding="utf-8") as f:
        for ids in outputs:
            f.write((" ".join(map(str, ids)) if args.output_format == "ids" else sp.decode(ids)) + "\n")
    tokens = sum(len(ids) for ids in outputs)  # without eos, as our translate counts
    print(json.dumps(dict(sentences=len(outputs), tokens=tokens, seconds=seconds,
                          sentences_per_s=len(outputs) / seconds, tokens_per_s=tokens / seconds,
                          peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))


if __name__ == "__main__":
    main()
