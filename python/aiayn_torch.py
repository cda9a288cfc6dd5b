"""Our checkpoints as torch.nn modules: for notebooks, bertviz, or your own code.

    import sys; sys.path.insert(0, "python")     # from the repository root
    import aiayn_torch
    model = aiayn_torch.load("runs/multi30k-en-de/averaged")  # a checkpoint or save directory
    ids = model.encode_source("Ein Mann fährt Fahrrad.")      # SentencePiece ids, + eos
    out = model.greedy(ids)                                    # target ids
    print(model.decode_target(out))
    maps = model.attention(ids, out)                           # every head's weights
    # bertviz: model_view(encoder_attention=maps["encoder"], decoder_attention=maps["decoder"],
    #                     cross_attention=maps["cross"], encoder_tokens=maps["encoder_tokens"],
    #                     decoder_tokens=maps["decoder_tokens"])

`Model` is a torch.nn.Module built from torch.nn.TransformerEncoder and
TransformerDecoder (post-LN or pre-LN, as the checkpoint's config says),
with the checkpoint's embeddings, positions and tying; its state_dict names
are torch.nn's, and `to_aiayn_state_dict()` gives the names back for
`aiayn-train --init`. Its outputs match aiayn-translate's and
aiayn-attention's (tests/test_attention_tool.cpp checks the maps and the
greedy output). Not supported (refused with a message): d_k or d_v other
than d_model / heads, which torch.nn.MultiheadAttention cannot express.

The one torch.nn mirror of the model: the PyTorch references of bench/
(reference.py, decode_reference.py, train_reference.py) and
tools/export_ctranslate2.py build on it.

Needs PyTorch >= 1.13 and the sentencepiece module (Debian: python3-torch,
python3-sentencepiece; use /usr/bin/python3 there). The toolkit itself never
imports this file.
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, UNK, BOS, EOS = 0, 1, 2, 3


def sinusoids(positions, d_model):
    """The positional encoding of section 3.5, [positions, d_model]."""
    pos = torch.arange(positions, dtype=torch.float64).unsqueeze(1)
    rate = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
    table = torch.zeros(positions, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * rate)
    table[:, 1::2] = torch.cos(pos * rate)[:, : d_model // 2]
    return table.float()


def resolve(path):
    """A checkpoint directory, or a save directory's last checkpoint."""
    if os.path.exists(os.path.join(path, "config.json")):
        return path
    last = os.path.join(path, "last")
    if os.path.exists(os.path.join(last, "config.json")):
        return os.path.realpath(last)
    raise FileNotFoundError(f"{path}: neither a checkpoint (config.json) nor a save directory (last/)")


class Model(nn.Module):
    """The Transformer of one of our checkpoints, in torch.nn modules."""

    def __init__(self, config, ours_embedding_init=False):
        """config: a checkpoint's `model` section. ours_embedding_init: draw
        the embeddings as aiayn-train does (N(0, d_model^-1/2), so that the
        sqrt(d_model) scale of section 3.4 gives unit variance) instead of
        torch.nn's N(0, 1); the rest keeps torch.nn's initialisation. Drawn
        as each table is made: the order of the draws fixes what a seed gives
        (bench/train_reference.py --seed)."""
        super().__init__()
        m = self.config = config
        if m["d_k"] * m["heads"] != m["d_model"] or m["d_v"] * m["heads"] != m["d_model"]:
            raise ValueError("aiayn_torch: d_k and d_v must be d_model / heads for torch.nn.MultiheadAttention")
        d = m["d_model"]

        def embedding(vocab):
            table = nn.Embedding(vocab, d)
            if ours_embedding_init:
                nn.init.normal_(table.weight, 0.0, d ** -0.5)
            return table

        self.src_embed = embedding(m["src_vocab"])
        self.tgt_embed = self.src_embed if m["share_embeddings"] else embedding(m["tgt_vocab"])
        self.generator = None if m["tie_output"] else nn.Linear(d, m["tgt_vocab"], bias=False)
        layer = dict(d_model=d, nhead=m["heads"], dim_feedforward=m["d_ff"], dropout=m["p_drop"],
                     batch_first=True, norm_first=m["norm_first"], layer_norm_eps=m["layer_norm_eps"])
        final = (lambda: nn.LayerNorm(d, eps=m["layer_norm_eps"])) if m["norm_first"] else (lambda: None)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer), m["encoder_layers"], norm=final())
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer), m["decoder_layers"], norm=final())
        # Dropout where ours has it (section 5.4: each sub-layer's output and
        # the embedding sums), and on attention weights and after the FFN's
        # ReLU only as attention_dropout / activation_dropout say (0 in our
        # configs): torch.nn's layers put p_drop on both.
        for block in list(self.encoder.layers) + list(self.decoder.layers):
            block.dropout.p = m.get("activation_dropout", 0.0)
            for attention in (getattr(block, "self_attn", None), getattr(block, "multihead_attn", None)):
                if attention is not None:
                    attention.dropout = m.get("attention_dropout", 0.0)
        if m["positional"] == "learned":
            self.src_pos = nn.Embedding(m["max_positions"], d)
            self.tgt_pos = nn.Embedding(m["max_positions"], d)
        else:
            self.register_buffer("sinusoids", sinusoids(m["max_positions"], d), persistent=False)
        self.dropout = nn.Dropout(m["p_drop"])
        self.source_tokenizer = self.target_tokenizer = None

    # ---- the model (sections 3.1-3.5)

    def embed(self, ids, target, offset=0):
        """ids [B, T] at positions offset.. -> [B, T, d_model] (offset: incremental decoding)."""
        table = self.tgt_embed if target else self.src_embed
        x = table(ids) * math.sqrt(self.config["d_model"])
        end = offset + ids.size(1)
        if self.config["positional"] == "learned":
            positions = (self.tgt_pos if target else self.src_pos).weight[offset:end]
        else:
            positions = self.sinusoids[offset:end]
        return self.dropout(x + positions)

    def encode(self, src):
        """src [B, S] ids (+ eos, PAD-padded) -> memory [B, S, d_model], padding [B, S]."""
        padding = src.eq(PAD)
        return self.encoder(self.embed(src, False), src_key_padding_mask=padding), padding

    def decode(self, tgt_in, memory, src_padding):
        """tgt_in [B, T] (bos + y) -> decoder output [B, T, d_model]."""
        t = tgt_in.size(1)
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool, device=tgt_in.device), 1)
        return self.decoder(self.embed(tgt_in, True), memory, tgt_mask=causal,
                            tgt_key_padding_mask=tgt_in.eq(PAD), memory_key_padding_mask=src_padding)

    def logits(self, hidden):
        return self.generator(hidden) if self.generator is not None else F.linear(hidden, self.tgt_embed.weight)

    def forward(self, src, tgt_in):
        memory, padding = self.encode(src)
        return self.logits(self.decode(tgt_in, memory, padding))

    # ---- text

    def encode_source(self, text):
        """A source sentence -> ids + eos, as aiayn-translate feeds them."""
        limit = self.config["max_positions"] - 1
        return self.source_tokenizer.encode(text)[:limit] + [EOS]

    def decode_target(self, ids):
        return self.target_tokenizer.decode([i for i in ids if i not in (PAD, BOS, EOS)])

    @torch.no_grad()
    def greedy(self, src_ids, max_len_a=1.0, max_len_b=50):
        """Greedy decoding of one sentence (ids + eos) -> target ids (no bos/eos)."""
        src = torch.tensor([src_ids])
        memory, padding = self.encode(src)
        limit = min(int(max_len_a * (len(src_ids) - 1)) + max_len_b, self.config["max_positions"] - 1)
        out = [BOS]
        for _ in range(max(1, limit)):
            lp = F.log_softmax(self.logits(self.decode(torch.tensor([out]), memory, padding)[:, -1]), -1)[0]
            lp[PAD] = lp[BOS] = float("-inf")
            token = int(lp.argmax())
            if token == EOS:
                break
            out.append(token)
        return out[1:]

    # ---- attention maps, for bertviz

    @torch.no_grad()
    def attention(self, src_ids, tgt_ids):
        """Every head's weights under forced decoding of tgt_ids (no bos/eos) from
        src_ids (+ eos): {"encoder", "decoder", "cross"}: one [1, heads, queries, keys]
        tensor per layer (bertviz's model_view format), and the tokens."""
        src, tgt = torch.tensor([src_ids]), torch.tensor([[BOS] + list(tgt_ids)])
        padding = src.eq(PAD)
        maps = {"encoder": [], "decoder": [], "cross": []}
        x = self.embed(src, False)
        for layer in self.encoder.layers:
            x = self._encoder_layer(layer, x, padding, maps["encoder"])
        if self.encoder.norm is not None:
            x = self.encoder.norm(x)
        y = self.embed(tgt, True)
        t = tgt.size(1)
        causal = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
        for layer in self.decoder.layers:
            y = self._decoder_layer(layer, y, x, causal, padding, maps)
        if self.source_tokenizer is not None:
            maps["encoder_tokens"] = [self.source_tokenizer.id_to_piece(i) for i in src_ids]
            maps["decoder_tokens"] = [self.target_tokenizer.id_to_piece(i) for i in [BOS] + list(tgt_ids)]
        return maps

    @staticmethod
    def _attend(attn, q, kv, mask, key_padding, out):
        y, w = attn(q, kv, kv, attn_mask=mask, key_padding_mask=key_padding, need_weights=True,
                    average_attn_weights=False)
        out.append(w)
        return y

    def _encoder_layer(self, l, x, padding, out):
        if l.norm_first:
            x = x + self._attend(l.self_attn, l.norm1(x), l.norm1(x), None, padding, out)
            return x + l.linear2(F.relu(l.linear1(l.norm2(x))))
        x = l.norm1(x + self._attend(l.self_attn, x, x, None, padding, out))
        return l.norm2(x + l.linear2(F.relu(l.linear1(x))))

    def _decoder_layer(self, l, y, memory, causal, padding, maps):
        if l.norm_first:
            y = y + self._attend(l.self_attn, l.norm1(y), l.norm1(y), causal, None, maps["decoder"])
            y = y + self._attend(l.multihead_attn, l.norm2(y), memory, None, padding, maps["cross"])
            return y + l.linear2(F.relu(l.linear1(l.norm3(y))))
        y = l.norm1(y + self._attend(l.self_attn, y, y, causal, None, maps["decoder"]))
        y = l.norm2(y + self._attend(l.multihead_attn, y, memory, None, padding, maps["cross"]))
        return l.norm3(y + l.linear2(F.relu(l.linear1(y))))

    # ---- names

    def load_aiayn_state_dict(self, state, where):
        """Weights under our model.pt names (read_weights) into this module;
        a ValueError naming `where` when a name is missing or left over."""
        state = from_aiayn_state_dict(state)
        if self.config["share_embeddings"] and "src_embed.weight" in state:
            state["tgt_embed.weight"] = state["src_embed.weight"]
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{where}: missing {missing}, unexpected {unexpected}")

    def to_aiayn_state_dict(self):
        """This module's weights under our model.pt names (aiayn-train --init)."""
        out = {}
        for name, value in self.state_dict().items():
            if name.startswith("tgt_embed.") and self.config["share_embeddings"]:
                continue
            if name.startswith(("src_pos.", "tgt_pos.")):
                out[name] = value
                continue
            out[name.replace(".linear1.", ".feed_forward.linear1.").replace(".linear2.", ".feed_forward.linear2.")] = value
        return out


def from_aiayn_state_dict(state):
    """Our model.pt names -> this module's."""
    return {name.replace(".feed_forward.", "."): value for name, value in state.items()}


def read_weights(path):
    """A model.pt written by aiayn-train -> {name: tensor}. LibTorch's C++
    pickler tags the typed dict with torch.jit._pickle.restore_type_tag,
    which torch.load's weights_only default (PyTorch >= 2.6) refuses until
    it is allowed; the rest stays weights-only."""
    try:
        from torch.jit._pickle import restore_type_tag as restore
    except ImportError:
        restore = None
    safe = getattr(torch.serialization, "safe_globals", None)
    if safe is None or restore is None:  # PyTorch before 2.5: no allow-list, and no such default
        return torch.load(path, map_location="cpu")
    with safe([restore]):
        return torch.load(path, map_location="cpu")


def load(path, tokenizers=True):
    """The model of a checkpoint (or a save directory's last), in eval mode,
    with its SentencePiece tokenizers attached when `tokenizers`."""
    directory = resolve(path)
    with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
        config = json.load(f)["model"]
    model = Model(config)
    weights = os.path.join(directory, "model.pt")
    model.load_aiayn_state_dict(read_weights(weights), weights)
    if tokenizers:
        import sentencepiece as spm
        target = spm.SentencePieceProcessor(model_file=os.path.join(directory, "spm.model"))
        source_path = os.path.join(directory, "spm.src.model")
        source = spm.SentencePieceProcessor(model_file=source_path) if os.path.exists(source_path) else target
        model.source_tokenizer, model.target_tokenizer = source, target
    return model.eval()
