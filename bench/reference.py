"""The PyTorch references the benchmarks compare us against.

What a researcher would otherwise write with torch.nn: the `small` model built
from torch.nn.TransformerEncoderLayer/DecoderLayer (python/aiayn_torch.py's
Model: post-LN, tied embeddings, sinusoidal positions), our token batching,
and two decoders:
  (a) "nocache": reruns torch.nn.TransformerDecoder over the whole prefix at
      every step;
  (b) "cache": fairseq/OpenNMT-py style incremental decoding: per-layer
      self-attention keys/values appended each step, encoder-decoder
      keys/values computed once per sentence, beams reordered with
      index_select, finished sentences dropped from the batch.
Both use the same beam rule as our search (2K candidates, eos among the top
K, our stopping rule), so given the same weights they translate alike.

Run with Debian's /usr/bin/python3 (python3-torch 1.13, python3-sentencepiece).
Never imported by the toolkit itself.
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

NEG_INF = float("-inf")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from nltk_bleu import tokenize_13a  # noqa: E402  (the 13a rules, checked against our C++)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import aiayn_torch  # noqa: E402  (the torch.nn model, and model.pt on any PyTorch version)
from aiayn_torch import PAD, BOS, EOS  # noqa: E402

# configs/small.json's model, with the defaults aiayn-train gives the keys it leaves out.
SMALL = dict(encoder_layers=3, decoder_layers=3, d_model=256, d_ff=1024, heads=4, d_k=64, d_v=64, p_drop=0.1,
             attention_dropout=0.0, activation_dropout=0.0, positional="sinusoidal", max_positions=256,
             norm_first=False, layer_norm_eps=1e-5, share_embeddings=True, tie_output=True)


def small_model(vocab):
    """The `small` model with fresh weights, as a researcher would start it."""
    return aiayn_torch.Model(dict(SMALL, src_vocab=vocab, tgt_vocab=vocab), ours_embedding_init=True)


def load_checkpoint(directory):
    """The model of one of our checkpoint directories, in eval mode."""
    import json
    with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
        m = json.load(f)["model"]
    # The shape the benchmarks measure (CachedStepper writes out post-LN layers by hand).
    if m["norm_first"] or m["positional"] != "sinusoidal" or not (m["share_embeddings"] and m["tie_output"]):
        raise SystemExit("reference: only post-LN, sinusoidal, tied models are supported")
    return aiayn_torch.load(directory, tokenizers=False)


# ---------------------------------------------------------------- data

def read_lines(path):
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def plan_batches(lengths, max_tokens, rng):
    """Our BatchPlanner's rule: shuffle, sort by the longer side, fill batches
    while rows x (longest + 1) <= max_tokens, shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    order.sort(key=lambda i: (max(lengths[i]), lengths[i][0]))
    batches, current, longest = [], [], 0
    for i in order:
        n = max(lengths[i]) + 1
        grown = max(longest, n)
        if current and grown * (len(current) + 1) > max_tokens:
            batches.append(current)
            current, grown = [], n
        current.append(i)
        longest = grown
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def make_batch(pairs, rows):
    """(src + eos, bos + y, y + eos) right-padded with PAD, as our make_batch."""
    s = max(len(pairs[r][0]) for r in rows) + 1
    t = max(len(pairs[r][1]) for r in rows) + 1
    src = torch.full((len(rows), s), PAD, dtype=torch.long)
    tgt_in = torch.full((len(rows), t), PAD, dtype=torch.long)
    tgt_out = torch.full((len(rows), t), PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        x, y = pairs[r]
        src[i, : len(x) + 1] = torch.tensor(x + [EOS])
        tgt_in[i, : len(y) + 1] = torch.tensor([BOS] + y)
        tgt_out[i, : len(y) + 1] = torch.tensor(y + [EOS])
    return src, tgt_in, tgt_out


# ---------------------------------------------------------------- decoding

class NoCacheStepper:
    """(a): the whole prefix through torch.nn.TransformerDecoder every step."""

    def __init__(self, model, memory, padding):
        self.model, self.memory, self.padding = model, memory, padding

    def step(self, history):  # history [rows, t] -> log-probs [rows, V]
        hidden = self.model.decode(history, self.memory, self.padding)[:, -1]
        return torch.log_softmax(self.model.logits(hidden), -1)

    def select(self, index):
        self.memory = self.memory.index_select(0, index)
        self.padding = self.padding.index_select(0, index)


def split_heads(x, heads):  # [N, T, d] -> [N, h, T, d/h]
    n, t, d = x.shape
    return x.view(n, t, heads, d // heads).transpose(1, 2)


def attend(q, k, v, mask):  # q [N,h,1,dk], k/v [N,h,S,dk], mask [N,1,1,S] or None
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(mask, NEG_INF)
    out = torch.matmul(torch.softmax(scores, -1), v)  # [N, h, 1, dk]
    return out.transpose(1, 2).reshape(q.size(0), 1, -1)


class CachedStepper:
    """(b): one new token per row through each layer, fairseq style."""

    def __init__(self, model, memory, padding):
        self.model, self.h = model, model.config["heads"]
        d = model.config["d_model"]
        self.mask = padding[:, None, None, :]  # [N, 1, 1, S]
        self.memory_kv, self.self_kv = [], []
        for layer in model.decoder.layers:
            w, b = layer.multihead_attn.in_proj_weight, layer.multihead_attn.in_proj_bias
            k, v = F.linear(memory, w[d:], b[d:]).chunk(2, -1)
            self.memory_kv.append((split_heads(k, self.h), split_heads(v, self.h)))
            self.self_kv.append(None)

    def step(self, history):
        m, d = self.model, self.model.config["d_model"]
        x = m.embed(history[:, -1:], True, history.size(1) - 1)  # [N, 1, d]
        for i, layer in enumerate(m.decoder.layers):
            sa = layer.self_attn
            q, k, v = (split_heads(t, self.h) for t in F.linear(x, sa.in_proj_weight, sa.in_proj_bias).chunk(3, -1))
            if self.self_kv[i] is not None:
                k = torch.cat([self.self_kv[i][0], k], 2)
                v = torch.cat([self.self_kv[i][1], v], 2)
            self.self_kv[i] = (k, v)
            x = layer.norm1(x + sa.out_proj(attend(q, k, v, None)))
            ca = layer.multihead_attn
            q = split_heads(F.linear(x, ca.in_proj_weight[:d], ca.in_proj_bias[:d]), self.h)
            x = layer.norm2(x + ca.out_proj(attend(q, *self.memory_kv[i], self.mask)))
            x = layer.norm3(x + layer.linear2(F.relu(layer.linear1(x))))
        return torch.log_softmax(m.logits(x[:, 0]), -1)

    def select(self, index):
        self.mask = self.mask.index_select(0, index)
        self.memory_kv = [(k.index_select(0, index), v.index_select(0, index)) for k, v in self.memory_kv]
        self.self_kv = [(k.index_select(0, index), v.index_select(0, index)) for k, v in self.self_kv]


def length_penalty(length, alpha):
    return ((5.0 + length) / 6.0) ** alpha


def max_output_length(source_length, max_positions, a=1.0, b=50):
    return max(1, min(int(a * source_length + b), max_positions - 1))


@torch.no_grad()
def translate_batch(model, src, beam, stepper_class, alpha=0.6):
    """src [B, S] (tokens + eos, padded) -> best token list per sentence."""
    batch, k = src.size(0), beam
    lengths = (src.ne(PAD).sum(1) - 1).tolist()
    max_pos = model.config["max_positions"]
    memory, padding = model.encode(src)
    rows = torch.arange(batch).repeat_interleave(k)
    stepper = stepper_class(model, memory.index_select(0, rows), padding.index_select(0, rows))
    history = torch.full((batch * k, 1), BOS, dtype=torch.long)
    scores = torch.full((batch, k), NEG_INF)
    scores[:, 0] = 0.0
    active = list(range(batch))
    finished = [[] for _ in range(batch)]
    t = 0
    while active:
        t += 1
        n = len(active)
        lprobs = stepper.step(history).view(n, k, -1)  # [n, K, V]
        for s in range(n):
            if t > max_output_length(lengths[active[s]], max_pos):
                eos = lprobs[s, :, EOS].clone()
                lprobs[s].fill_(NEG_INF)
                lprobs[s, :, EOS] = eos
        vocab = lprobs.size(2)
        top_scores, top_index = (scores.unsqueeze(2) + lprobs).view(n, -1).topk(min(2 * k, k * vocab), 1)
        top_scores, top_index = top_scores.tolist(), top_index.tolist()
        next_rows, next_tokens, next_scores, next_active = [], [], [], []
        for s in range(n):
            done, live = finished[active[s]], []
            for j, (score, index) in enumerate(zip(top_scores[s], top_index[s])):
                if len(live) == k or score == NEG_INF:
                    break
                row, token = s * k + index // vocab, index % vocab
                if token == EOS:
                    if j < k:
                        words = history[row, 1:].tolist()
                        done.append((score / length_penalty(len(words) + 1, alpha), words))
                    continue
                live.append((row, token, score))
            done.sort(key=lambda h: -h[0])
            # Ours: stop when no live beam can beat the best finished one, or
            # when K have finished and the best of them beats the best live
            # beam as it stands (fairseq stops at K finished alone).
            stop = not live
            if not stop and done:
                longest = max_output_length(lengths[active[s]], max_pos)
                stop = (done[0][0] >= live[0][2] / length_penalty(longest + 1, alpha)
                        or (len(done) >= k and done[0][0] >= live[0][2] / length_penalty(t, alpha)))
            del done[k:]
            if stop:
                continue
            while len(live) < k:
                live.append((live[-1][0], live[-1][1], NEG_INF))
            next_active.append(active[s])
            for row, token, score in live:
                next_rows.append(row)
                next_tokens.append(token)
                next_scores.append(score)
        active = next_active
        if not active:
            break
        index = torch.tensor(next_rows)
        history = torch.cat([history.index_select(0, index), torch.tensor(next_tokens).unsqueeze(1)], 1)
        scores = torch.tensor(next_scores).view(len(active), k)
        stepper.select(index)
    return [done[0][1] if done else [] for done in finished]


def translate(model, sentences, beam, stepper_class, batch_sentences=64, batch_tokens=4096):
    """Token lists -> best token lists, batched by length, in input order."""
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    out = [None] * len(sentences)
    i = 0
    while i < len(order):
        j = i
        while (j < len(order) and j - i < batch_sentences
               and (j - i + 1) * (len(sentences[order[j]]) + 1) <= batch_tokens):
            j += 1
        j = max(j, i + 1)
        rows = order[i:j]
        src = torch.full((len(rows), len(sentences[order[j - 1]]) + 1), PAD, dtype=torch.long)
        for r, idx in enumerate(rows):
            src[r, : len(sentences[idx]) + 1] = torch.tensor(sentences[idx] + [EOS])
        for idx, words in zip(rows, translate_batch(model, src, beam, stepper_class)):
            out[idx] = words
        i = j
    return out


def corpus_bleu(hyps, refs, lowercase=False):
    """sacreBLEU-default corpus BLEU (13a), through NLTK: equal to our C++
    scorer to 1e-13 (tests/test_bleu.cpp)."""
    from nltk.translate.bleu_score import corpus_bleu as nltk_bleu
    prep = (lambda s: tokenize_13a(s.lower() if lowercase else s).split())
    return 100.0 * nltk_bleu([[prep(r)] for r in refs], [prep(h) for h in hyps])
