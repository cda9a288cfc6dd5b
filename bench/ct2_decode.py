#!/usr/bin/env python3
"""One CTranslate2 side of bench/ctranslate2_bench.py, in a process of its own
(so that its peak RSS is its own): loads an exported model, then times
tokenization, translation and the writing of output pieces, as
aiayn-translate's summary line times its own loop. Prints one JSON line:
{"sentences", "tokens" (output pieces, </s> not counted), "seconds",
"translate_seconds" (translate_batch alone)}.

    .venv-tools/bin/python bench/ct2_decode.py --model CT2 --input SRC --output PIECES \
        --beam 4 --inter-threads 1 --intra-threads 2 --max-batch-size 1024 --batch-type tokens
"""
import argparse
import json
import os
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--inter-threads", type=int, default=1)
    ap.add_argument("--intra-threads", type=int, default=1)
    ap.add_argument("--max-batch-size", type=int, default=0)
    ap.add_argument("--batch-type", default="examples", choices=["examples", "tokens"])
    ap.add_argument("--compute-type", default="default")
    args = ap.parse_args()
    import ctranslate2
    import sentencepiece

    with open(os.path.join(args.model, "aiayn_export.json"), encoding="utf-8") as f:
        limit = json.load(f)["max_positions"] - 1
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(args.model, "source.spm"))
    translator = ctranslate2.Translator(args.model, device="cpu", compute_type=args.compute_type,
                                        inter_threads=args.inter_threads, intra_threads=args.intra_threads)
    with open(args.input, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")[:-1]
    start = time.perf_counter()
    source = [sp.encode(line, out_type=str)[:limit] for line in lines]
    # aiayn-translate's default length limit, |x| + 50, for every sentence at
    # once: CTranslate2 takes one limit per call, and the longest here keeps
    # each output as it is (no output of a trained model comes near it).
    longest = min(max(len(x) for x in source) + 50, limit)
    t0 = time.perf_counter()
    results = translator.translate_batch(source, beam_size=args.beam, length_penalty=0,
                                         max_batch_size=args.max_batch_size, batch_type=args.batch_type,
                                         max_input_length=limit, max_decoding_length=longest)
    t1 = time.perf_counter()
    hyps = [r.hypotheses[0] for r in results]
    with open(args.output, "w", encoding="utf-8") as f:
        f.writelines(" ".join(h) + "\n" for h in hyps)
    seconds = time.perf_counter() - start
    print(json.dumps(dict(sentences=len(lines), tokens=sum(len(h) for h in hyps), seconds=seconds,
                          translate_seconds=t1 - t0)))


if __name__ == "__main__":
    main()
