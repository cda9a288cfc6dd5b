"""The PyTorch references the benchmarks compare us against.

What a researcher would otherwise write with torch.nn: the `small` model built
from torch.nn.TransformerEncoderLayer/DecoderLayer (post-LN, tied embeddings,
sinusoidal positions), our token batching, and two decoders:
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
import random
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, UNK, BOS, EOS = 0, 1, 2, 3
NEG_INF = float("-inf")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from nltk_bleu import tokenize_13a  # noqa: E402  (the 13a rules, checked against our C++)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from aiayn_torch import read_weights  # noqa: E402  (model.pt on any PyTorch version)


def sinusoids(positions, d_model):
    pos = torch.arange(positions, dtype=torch.float64).unsqueeze(1)
    rate = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
    table = torch.zeros(positions, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * rate)
    table[:, 1::2] = torch.cos(pos * rate)[:, : d_model // 2]
    return table.float()


class Reference(nn.Module):
    """torch.nn.Transformer stacks with a shared, tied embedding."""

    def __init__(self, vocab, d_model=256, heads=4, d_ff=1024, encoder_layers=3, decoder_layers=3,
                 p_drop=0.1, max_positions=256, attention_dropout=0.0, activation_dropout=0.0):
        super().__init__()
        self.d_model, self.heads = d_model, heads
        self.embed = nn.Embedding(vocab, d_model)
        nn.init.normal_(self.embed.weight, 0.0, d_model ** -0.5)
        layer = dict(d_model=d_model, nhead=heads, dim_feedforward=d_ff, dropout=p_drop, batch_first=True)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer), encoder_layers)
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer), decoder_layers)
        # Dropout where ours has it (section 5.4: each sub-layer's output and
        # the embedding sums), and on attention weights and after the FFN's
        # ReLU only as the model's attention_dropout / activation_dropout say
        # (0 in our configs): torch.nn's layers put p_drop on both.
        for mod in list(self.encoder.layers) + list(self.decoder.layers):
            mod.dropout.p = activation_dropout
            for attention in (getattr(mod, "self_attn", None), getattr(mod, "multihead_attn", None)):
                if attention is not None:
                    attention.dropout = attention_dropout
        self.register_buffer("positions", sinusoids(max_positions, d_model))
        self.dropout = nn.Dropout(p_drop)

    def embed_tokens(self, ids, offset=0):
        x = self.embed(ids) * math.sqrt(self.d_model)
        return self.dropout(x + self.positions[offset: offset + ids.size(1)])

    def encode(self, src):
        padding = src.eq(PAD)
        return self.encoder(self.embed_tokens(src), src_key_padding_mask=padding), padding

    def decode(self, tgt_in, memory, src_padding):
        t = tgt_in.size(1)
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=tgt_in.device), 1)
        return self.decoder(self.embed_tokens(tgt_in), memory, tgt_mask=causal,
                            tgt_key_padding_mask=tgt_in.eq(PAD), memory_key_padding_mask=src_padding)

    def logits(self, hidden):
        return F.linear(hidden, self.embed.weight)

    def forward(self, src, tgt_in):
        memory, padding = self.encode(src)
        return self.logits(self.decode(tgt_in, memory, padding))


def from_ours(state):
    """Our checkpoint's model.pt names -> Reference names."""
    out = {}
    for name, value in state.items():
        if name == "src_embed.weight":
            out["embed.weight"] = value
        elif name.startswith("generator") or name.startswith("tgt_embed"):
            raise SystemExit("reference: only tied, shared-embedding checkpoints are supported")
        else:
            out[name.replace(".feed_forward.", ".")] = value
    return out


def to_ours(state):
    """Reference names -> our model.pt names (what `aiayn-train --init` reads)."""
    out = {}
    for name, value in state.items():
        if name == "positions":
            continue  # a buffer: ours computes its sinusoids itself
        if name == "embed.weight":
            out["src_embed.weight"] = value
        else:
            out[name.replace(".linear1.", ".feed_forward.linear1.").replace(".linear2.", ".feed_forward.linear2.")] = value
    return out


def load_checkpoint(directory):
    """A Reference with the weights of one of our checkpoint directories."""
    import json
    with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
        m = json.load(f)["model"]
    if m["norm_first"] or m["positional"] != "sinusoidal" or not (m["share_embeddings"] and m["tie_output"]):
        raise SystemExit("reference: only post-LN, sinusoidal, tied models are supported")
    model = Reference(m["tgt_vocab"], m["d_model"], m["heads"], m["d_ff"], m["encoder_layers"],
                      m["decoder_layers"], m["p_drop"], m["max_positions"],
                      m.get("attention_dropout", 0.0), m.get("activation_dropout", 0.0))
    state = from_ours(read_weights(os.path.join(directory, "model.pt")))
    state["positions"] = model.positions
    model.load_state_dict(state)
    return model.eval()


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
        self.model, self.h = model, model.heads
        d = model.d_model
        self.mask = padding[:, None, None, :]  # [N, 1, 1, S]
        self.memory_kv, self.self_kv = [], []
        for layer in model.decoder.layers:
            w, b = layer.multihead_attn.in_proj_weight, layer.multihead_attn.in_proj_bias
            k, v = F.linear(memory, w[d:], b[d:]).chunk(2, -1)
            self.memory_kv.append((split_heads(k, self.h), split_heads(v, self.h)))
            self.self_kv.append(None)

    def step(self, history):
        m, d = self.model, self.model.d_model
        x = m.embed_tokens(history[:, -1:], history.size(1) - 1)  # [N, 1, d]
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
    max_pos = model.positions.size(0)
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
