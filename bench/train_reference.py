#!/usr/bin/env python3
"""Training reference: the `small` recipe as a plain PyTorch script.

The script a researcher would write with torch.nn (bench/reference.py's
small_model: torch.nn.TransformerEncoder/Decoder, post-LN, tied embeddings),
with everything else as our configs/small.json: the same SentencePiece model
(pass the one our run trained, so both see the same tokens), our token
batching rule (4096 tokens), label-smoothed cross-entropy (0.1) summed and
divided by the target tokens, Adam(0.9, 0.98, 1e-9) with the noam schedule
(scale 0.5, warmup 400), dropout 0.1, a wall-clock budget, validation loss
and greedy BLEU every 250 updates, a checkpoint every 110 updates, and at the
end the average of the last 5 translating the test set (greedy and beam 4,
cached decoder), scored with sacreBLEU-default BLEU.

    /usr/bin/python3 bench/train_reference.py --data ../shared/data/multi30k \
        --spm runs/multi30k-en-de/spm.model --out runs/reference-en-de [--minutes 60]

With --init (our model.pt names) and --replay-batches (aiayn-train
--record-batches' batches.jsonl) it starts from our weights and trains on our
batches in our order, so that the two loss curves can be compared step by step.

Writes OUT/metrics.jsonl (our format: tools/plot_metrics.py plots it),
OUT/test.beam{1,4}.TGT and OUT/result.json.
"""
import argparse
import collections
import json
import math
import os
import random
import resource
import time

import sentencepiece as spm
import torch
import torch.nn.functional as F

import reference as ref


def encode_corpus(sp, src_lines, tgt_lines, max_length):
    """-> the pairs kept, and the 1-based corpus line of each."""
    src, tgt = sp.encode(src_lines), sp.encode(tgt_lines)
    kept = [(n, x, y) for n, (x, y) in enumerate(zip(src, tgt), 1)
            if x and y and len(x) <= max_length and len(y) <= max_length]
    return [(x, y) for _, x, y in kept], [n for n, _, _ in kept]


def read_replay(path, line_numbers):
    """aiayn-train --record-batches' batches.jsonl -> [(epoch, [pair index])], in order.
    Exits naming path:line when a record is not one batch per update or names a
    corpus line this script did not keep."""
    where = {n: i for i, n in enumerate(line_numbers)}
    batches = {}  # update -> batch; after a crash and resume, the later record of an update wins
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, 1):
            try:
                record = json.loads(text)
                if record["batch"] != 0:
                    raise ValueError("batch %d of an update: record with update_freq 1 and one process"
                                     % record["batch"])
                missing = [n for n in record["lines"] if n not in where]
                if missing:
                    raise ValueError(f"corpus line {missing[0]} is not among the reference's training pairs "
                                     "(another corpus, or a filter that differs)")
                batches[int(record["update"])] = (record["epoch"], [where[n] for n in record["lines"]])
            except (ValueError, KeyError, TypeError) as e:
                raise SystemExit(f"train_reference.py: {path}:{number}: {e}")
    return [batches[u] for u in sorted(batches)]


def noam(step, d_model, warmup, scale):
    step = max(step, 1)
    return scale * d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)


def validate(model, valid, sp, valid_refs):
    """Validation NLL per token, and greedy BLEU of the source side."""
    model.eval()
    nll, tokens = 0.0, 0
    with torch.no_grad():
        order = list(range(len(valid)))
        for start in range(0, len(order), 64):
            src, tgt_in, tgt_out = ref.make_batch(valid, order[start:start + 64])
            logits = model(src, tgt_in)
            nll += F.cross_entropy(logits.view(-1, logits.size(-1)), tgt_out.view(-1),
                                   ignore_index=ref.PAD, reduction="sum").item()
            tokens += int(tgt_out.ne(ref.PAD).sum())
        hyps = ref.translate(model, [x for x, _ in valid], 1, ref.CachedStepper)
    model.train()
    bleu = ref.corpus_bleu([sp.decode(h) for h in hyps], valid_refs)
    return nll / tokens, bleu


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="Multi30k directory")
    ap.add_argument("--src", default="en")
    ap.add_argument("--tgt", default="de")
    ap.add_argument("--spm", required=True, help="SentencePiece model (pad 0, unk 1, bos 2, eos 3)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--max-steps", type=int, default=100000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=4096)
    ap.add_argument("--valid-every", type=int, default=250)
    ap.add_argument("--save-every", type=int, default=110)
    ap.add_argument("--average", type=int, default=5)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--no-test", action="store_true", help="stop after training (throughput runs)")
    ap.add_argument("--save-init", help="write the initial weights here, in our model.pt names "
                    "(for aiayn-train --init), and train on")
    ap.add_argument("--init", help="start from these weights (our model.pt names)")
    ap.add_argument("--dropout-seed", type=int, help="reseed dropout after initialisation "
                    "(the batches stay those of --seed)")
    ap.add_argument("--replay-batches", metavar="JSONL",
                    help="train on the batches aiayn-train --record-batches wrote, in their order, "
                         "instead of planning its own (stops when they run out)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)

    sp = spm.SentencePieceProcessor(model_file=args.spm)
    read = lambda split, lang: ref.read_lines(os.path.join(args.data, f"{split}.{lang}"))  # noqa: E731
    train, line_numbers = encode_corpus(sp, read("train", args.src), read("train", args.tgt), 128)
    replay = read_replay(args.replay_batches, line_numbers)[::-1] if args.replay_batches else None
    valid_src, valid_refs = read("val", args.src), read("val", args.tgt)
    valid = list(zip(sp.encode(valid_src), sp.encode(valid_refs)))
    lengths = [(len(x), len(y)) for x, y in train]
    print(f"reference: {len(train)} training pairs, {len(valid)} validation pairs", flush=True)

    model = ref.small_model(sp.get_piece_size())
    if args.init:
        try:
            model.load_aiayn_state_dict(ref.aiayn_torch.read_weights(args.init), args.init)
        except ValueError as e:
            raise SystemExit(f"train_reference.py: {e}")
    if args.save_init:
        torch.save({k: v.detach().clone() for k, v in model.to_aiayn_state_dict().items()}, args.save_init)
    if args.dropout_seed is not None:
        torch.manual_seed(args.dropout_seed)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: noam(s + 1, 256, 400, 0.5))
    saved = collections.deque(maxlen=args.average)
    metrics = open(os.path.join(args.out, "metrics.jsonl"), "w", encoding="utf-8")

    start = time.monotonic()
    step, epoch, batches = 0, 0, []
    window = dict(loss=0.0, nll=0.0, tgt=0, src=0, t=time.monotonic())
    while step < args.max_steps and time.monotonic() - start < args.minutes * 60:
        if replay is not None:
            if not replay:
                print(f"reference: the recorded batches end after {step} updates", flush=True)
                break
            epoch, rows = replay.pop()
        else:
            if not batches:
                epoch += 1
                batches = ref.plan_batches(lengths, args.max_tokens, rng)
            rows = batches.pop()
        src, tgt_in, tgt_out = ref.make_batch(train, rows)
        ntok = int(tgt_out.ne(ref.PAD).sum())
        logits = model(src, tgt_in)
        flat, gold = logits.view(-1, logits.size(-1)), tgt_out.view(-1)
        loss = F.cross_entropy(flat, gold, ignore_index=ref.PAD, label_smoothing=0.1, reduction="sum")
        optimizer.zero_grad()
        (loss / ntok).backward()
        optimizer.step()
        schedule.step()
        step += 1
        with torch.no_grad():
            nll = F.cross_entropy(flat, gold, ignore_index=ref.PAD, reduction="sum").item()
        window["loss"] += loss.item()
        window["nll"] += nll
        window["tgt"] += ntok
        window["src"] += int(src.ne(ref.PAD).sum())
        if step % args.log_every == 0:
            now = time.monotonic()
            rate = window["tgt"] / (now - window["t"])
            record = dict(kind="train", step=step, epoch=epoch, loss=window["loss"] / window["tgt"],
                          nll=window["nll"] / window["tgt"], ppl=math.exp(window["nll"] / window["tgt"]),
                          lr=schedule.get_last_lr()[0], tgt_tok_s=rate,
                          src_tok_s=window["src"] / (now - window["t"]), time=now - start)
            metrics.write(json.dumps(record) + "\n")
            metrics.flush()
            print(f"step {step} | epoch {epoch} | loss {record['loss']:.3f} | ppl {record['ppl']:.2f} | "
                  f"tgt tok/s {rate:.0f} | {record['time'] / 60:.1f} min", flush=True)
            window = dict(loss=0.0, nll=0.0, tgt=0, src=0, t=time.monotonic())
        if step % args.save_every == 0:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            torch.save({"model": state, "optimizer": optimizer.state_dict()},
                       os.path.join(args.out, "checkpoint_last.pt"))
            saved.append(state)
        if step % args.valid_every == 0:
            t0 = time.monotonic()
            valid_nll, bleu = validate(model, valid, sp, valid_refs)
            metrics.write(json.dumps(dict(kind="valid", step=step, loss=valid_nll, ppl=math.exp(valid_nll),
                                          bleu=bleu, time=time.monotonic() - start)) + "\n")
            metrics.flush()
            print(f"validation at step {step}: loss {valid_nll:.4f}, perplexity {math.exp(valid_nll):.2f}, "
                  f"BLEU {bleu:.2f} ({time.monotonic() - t0:.0f} s)", flush=True)
            window["t"] += time.monotonic() - t0
    train_minutes = (time.monotonic() - start) / 60
    steady = [json.loads(line) for line in open(os.path.join(args.out, "metrics.jsonl"))]
    rates = sorted(r["tgt_tok_s"] for r in steady if r["kind"] == "train" and r["step"] > 100)
    if args.no_test:
        return

    # The average of the last checkpoints, as our recipe does.
    saved.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    last = list(saved)[-args.average:]
    model.load_state_dict({k: sum(s[k] for s in last) / len(last) for k in last[0]})
    model.eval()
    test_src = sp.encode(read("test_2016_flickr", args.src))
    test_refs = read("test_2016_flickr", args.tgt)
    result = dict(steps=step, epochs=epoch, train_minutes=train_minutes, averaged=len(last),
                  median_tgt_tok_s=rates[len(rates) // 2] if rates else None)
    for beam in (1, 4):
        hyps = [sp.decode(h) for h in ref.translate(model, test_src, beam, ref.CachedStepper)]
        with open(os.path.join(args.out, f"test.beam{beam}.{args.tgt}"), "w", encoding="utf-8") as f:
            f.write("".join(h + "\n" for h in hyps))
        result[f"bleu_beam{beam}"] = ref.corpus_bleu(hyps, test_refs)
        result[f"bleu_beam{beam}_lowercase"] = ref.corpus_bleu(hyps, test_refs, lowercase=True)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
