#!/usr/bin/env python3
"""Reference outputs of torch.nn.TransformerEncoder/Decoder for test_reference.

Builds PyTorch's own stacks with random weights, runs a padded batch through
them with dropout off, and writes every weight, input and output as raw
little-endian arrays plus manifest.json ({name: {shape, dtype}}), which the
C++ test loads into our modules and compares.

Run with Debian's /usr/bin/python3 (python3-torch):
    torch_stacks.py OUT_DIR [--norm-first] [--seed N]
"""
import argparse
import json
import os

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--norm-first", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--d-model", type=int, default=32)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--d-ff", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    d = args.d_model

    def norm():
        return torch.nn.LayerNorm(d) if args.norm_first else None

    layer = dict(d_model=d, nhead=args.heads, dim_feedforward=args.d_ff, dropout=0.0,
                 activation="relu", batch_first=True, norm_first=args.norm_first)
    encoder = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(**layer),
                                          args.layers, norm=norm())
    decoder = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(**layer),
                                          args.layers, norm=norm())
    # Non-trivial biases and norms, so a wrongly mapped one cannot go unnoticed.
    with torch.no_grad():
        for p in list(encoder.parameters()) + list(decoder.parameters()):
            if p.dim() == 1:
                p.uniform_(-0.5, 0.5)
    # Training mode with dropout 0: PyTorch 1.13's eval-mode fast path would
    # turn padded positions into zeros and hide their values.
    encoder.train()
    decoder.train()

    batch, src_len, tgt_len = 3, 7, 6
    src_lengths = torch.tensor([7, 4, 1])
    tgt_lengths = torch.tensor([6, 2, 5])
    src = torch.randn(batch, src_len, d)
    tgt = torch.randn(batch, tgt_len, d)
    src_pad = torch.arange(src_len)[None, :] >= src_lengths[:, None]
    tgt_pad = torch.arange(tgt_len)[None, :] >= tgt_lengths[:, None]
    causal = torch.triu(torch.ones(tgt_len, tgt_len, dtype=torch.bool), 1)

    with torch.no_grad():
        memory = encoder(src, src_key_padding_mask=src_pad)
        out = decoder(tgt, memory, tgt_mask=causal, tgt_key_padding_mask=tgt_pad,
                      memory_key_padding_mask=src_pad)

    tensors = {"src": src, "tgt": tgt, "src_padding": src_pad, "tgt_padding": tgt_pad,
               "memory": memory, "decoded": out}
    for prefix, module in (("encoder.", encoder), ("decoder.", decoder)):
        for name, value in module.state_dict().items():
            tensors[prefix + name] = value
    os.makedirs(args.out, exist_ok=True)
    manifest = {}
    for name, value in tensors.items():
        value = value.detach().contiguous()
        dtype = {torch.float32: "float32", torch.bool: "bool"}[value.dtype]
        value.numpy().tofile(os.path.join(args.out, name + ".bin"))
        manifest[name] = {"shape": list(value.shape), "dtype": dtype}
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
