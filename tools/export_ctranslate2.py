#!/usr/bin/env python3
"""Convert an aiayn checkpoint into a CTranslate2 model directory.

    .venv-tools/bin/python tools/export_ctranslate2.py runs/demo/model/best out/ct2
    .venv-tools/bin/python tools/export_ctranslate2.py CKPT out/ct2-int8 --quantization int8

The checkpoint is a directory written by aiayn-train (last, best, averaged, or
a save directory, whose last/ is taken). A checkpoint trained with
train.ema_decay holds the moving average in model.pt (exported by default) and
the raw weights in raw_model.pt (--raw-weights).

The CTranslate2 model decodes as aiayn-translate does when it is fed the same
pieces: source pieces from the checkpoint's SentencePiece model, then "</s>"
(appended by CTranslate2 itself: add_source_eos), and the decoder starts from
"<s>". The SentencePiece models are copied beside it (source.spm, target.spm).
Beam search: CTranslate2's length_penalty divides by |Y|^lp, ours by
((5+|Y|)/6)^alpha (Wu et al., 2016); they agree at 0 only.

Needs torch (to read model.pt), sentencepiece and ctranslate2: scripts/setup.sh
makes .venv-tools/ with them (Debian's torch and sentencepiece, ctranslate2
from the package index). Exit status 2, with one line naming the file or key,
for a checkpoint it cannot express; nothing is written then, and an existing
output directory is only replaced with --force.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = {PAD: "<pad>", UNK: "<unk>", BOS: "<s>", EOS: "</s>"}

# Keys of config.json's "model" that change the function the weights compute,
# and what the exporter does with each. Dropouts are training-only.
EXPRESSIBLE = {
    "encoder_layers", "decoder_layers", "d_model", "d_ff", "heads", "d_k", "d_v",
    "p_drop", "attention_dropout", "activation_dropout", "positional", "max_positions",
    "norm_first", "layer_norm_eps", "share_embeddings", "tie_output", "src_vocab", "tgt_vocab",
}


class Refusal(Exception):
    """A checkpoint the exporter cannot express, or bad input: exit 2."""


def aiayn_torch():
    """python/aiayn_torch.py: how our checkpoints are found and read, shared
    with the notebooks' loader (imported late: it needs torch)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))
    import aiayn_torch as module
    return module


def resolve(path):
    """A checkpoint directory, or a save directory's last checkpoint."""
    try:
        return aiayn_torch().resolve(path)
    except FileNotFoundError as e:
        raise Refusal(str(e))


def read_model_config(directory):
    path = os.path.join(directory, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise Refusal(f"{path}: cannot read: {e}")
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, dict):
        raise Refusal(f"{path}: missing key \"model\"")
    for key in model:
        if key not in EXPRESSIBLE:
            raise Refusal(f"{path}: model.{key}: not known to this exporter, so it cannot say "
                          "whether CTranslate2 expresses it")
    missing = sorted(EXPRESSIBLE - {"attention_dropout", "activation_dropout"} - set(model))
    if missing:
        raise Refusal(f"{path}: model.{missing[0]}: missing")
    d, h = model["d_model"], model["heads"]
    for key in ("d_k", "d_v"):
        if model[key] * h != d:
            raise Refusal(f"{path}: model.{key}: {model[key]} x {h} heads != d_model {d}; "
                          "CTranslate2's Transformer splits d_model evenly into its heads")
    if model["positional"] not in ("sinusoidal", "learned"):
        raise Refusal(f"{path}: model.positional: '{model['positional']}' is neither sinusoidal nor learned")
    return model


def read_weights(directory, raw):
    path = os.path.join(directory, "raw_model.pt" if raw else "model.pt")
    if raw and not os.path.exists(path):
        raise Refusal(f"{path}: missing: this checkpoint holds one set of weights (model.pt); drop --raw-weights")
    try:
        state = aiayn_torch().read_weights(path)  # model.pt on any PyTorch version
    except Exception as e:  # torch raises many kinds for a bad archive
        raise Refusal(f"{path}: cannot read as a weights archive: {str(e).splitlines()[0]}")
    return path, {name: value.detach().float().contiguous() for name, value in state.items()}


def vocabulary(spm_path, size, key):
    """The pieces of a SentencePiece model, in id order, checked against the model's size."""
    import sentencepiece
    try:
        processor = sentencepiece.SentencePieceProcessor(model_file=spm_path)
    except (OSError, RuntimeError) as e:
        raise Refusal(f"{spm_path}: cannot load as a SentencePiece model: {e}")
    if processor.get_piece_size() != size:
        raise Refusal(f"{spm_path}: {processor.get_piece_size()} pieces, but model.{key} is {size}")
    pieces = [processor.id_to_piece(i) for i in range(size)]
    for i, name in SPECIALS.items():
        if pieces[i] != name:
            raise Refusal(f"{spm_path}: piece {i} is '{pieces[i]}', expected '{name}' (aiayn's special ids)")
    return pieces


class AiaynConverter:
    """Fills a ctranslate2 TransformerSpec from one of our checkpoints."""

    def __init__(self, checkpoint, raw_weights=False):
        self.directory = resolve(checkpoint)
        self.model = read_model_config(self.directory)
        self.weights_path, self.state = read_weights(self.directory, raw_weights)
        target = os.path.join(self.directory, "spm.model")
        source = os.path.join(self.directory, "spm.src.model")
        self.target_spm = target
        self.source_spm = source if os.path.exists(source) else target
        for path in {self.target_spm, self.source_spm}:
            if not os.path.exists(path):
                raise Refusal(f"{path}: missing (aiayn-train copies the tokenizer into every checkpoint)")

    def take(self, name, shape=None):
        if name not in self.state:
            raise Refusal(f"{self.weights_path}: {name}: missing")
        value = self.state.pop(name)
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise Refusal(f"{self.weights_path}: {name}: shape {tuple(value.shape)}, expected {tuple(shape)}")
        return value.numpy()

    def linear(self, spec, prefix, rows, cols, bias=True):
        spec.weight = self.take(prefix + ".weight", (rows, cols))
        if bias:
            spec.bias = self.take(prefix + ".bias", (rows,))

    def norm(self, spec, prefix):
        d = self.model["d_model"]
        spec.gamma = self.take(prefix + ".weight", (d,))
        spec.beta = self.take(prefix + ".bias", (d,))

    def attention(self, spec, prefix, cross):
        """Our attention holds Q, K and V as one [3 d_model, d_model] product
        (in_proj); CTranslate2 wants it whole for self-attention, and as Q
        apart from the fused K/V for encoder-decoder attention."""
        d = self.model["d_model"]
        weight = self.take(prefix + ".in_proj_weight", (3 * d, d))  # [3d, d]: Q, K, V rows
        bias = self.take(prefix + ".in_proj_bias", (3 * d,))
        if cross:
            spec.linear[0].weight, spec.linear[0].bias = weight[:d], bias[:d]  # Q [d, d]
            spec.linear[1].weight, spec.linear[1].bias = weight[d:], bias[d:]  # K, V [2d, d]
        else:
            spec.linear[0].weight, spec.linear[0].bias = weight, bias
        self.linear(spec.linear[-1], prefix + ".out_proj", d, d)

    def feed_forward(self, spec, prefix):
        d, d_ff = self.model["d_model"], self.model["d_ff"]
        self.linear(spec.linear_0, prefix + ".feed_forward.linear1", d_ff, d)
        self.linear(spec.linear_1, prefix + ".feed_forward.linear2", d, d_ff)

    def positions(self, spec, side):
        m = self.model
        if m["positional"] == "learned":
            spec.position_encodings.encodings = self.take(f"{side}_pos.weight", (m["max_positions"], m["d_model"]))
        else:
            # Section 3.5's table as models/positional.cpp computes it, row p for
            # position p from 0; CTranslate2's own table concatenates sines and
            # cosines instead of interleaving them, and starts at position 1.
            spec.position_encodings.encodings = aiayn_torch().sinusoids(m["max_positions"], m["d_model"]).numpy()

    def spec(self):
        import ctranslate2
        m = self.model
        d = m["d_model"]
        spec = ctranslate2.specs.TransformerSpec.from_config(
            (m["encoder_layers"], m["decoder_layers"]), m["heads"], pre_norm=m["norm_first"])
        # Section 3.4: embeddings times sqrt(d_model) (both specs scale by default).
        source = self.take("src_embed.weight", (m["src_vocab"], d))
        target = source if m["share_embeddings"] else self.take("tgt_embed.weight", (m["tgt_vocab"], d))
        spec.encoder.embeddings[0].weight = source
        spec.decoder.embeddings.weight = target
        # Tied output: the same matrix; ctranslate2 stores equal variables once.
        spec.decoder.projection.weight = target if m["tie_output"] else self.take("generator.weight", (m["tgt_vocab"], d))
        self.positions(spec.encoder, "src")
        self.positions(spec.decoder, "tgt")
        for i, layer in enumerate(spec.encoder.layer):
            prefix = f"encoder.layers.{i}"
            self.attention(layer.self_attention, prefix + ".self_attn", cross=False)
            self.norm(layer.self_attention.layer_norm, prefix + ".norm1")
            self.feed_forward(layer.ffn, prefix)
            self.norm(layer.ffn.layer_norm, prefix + ".norm2")
        for i, layer in enumerate(spec.decoder.layer):
            prefix = f"decoder.layers.{i}"
            self.attention(layer.self_attention, prefix + ".self_attn", cross=False)
            self.norm(layer.self_attention.layer_norm, prefix + ".norm1")
            self.attention(layer.attention, prefix + ".multihead_attn", cross=True)
            self.norm(layer.attention.layer_norm, prefix + ".norm2")
            self.feed_forward(layer.ffn, prefix)
            self.norm(layer.ffn.layer_norm, prefix + ".norm3")
        if m["norm_first"]:  # pre-LN: one LayerNorm after each stack
            self.norm(spec.encoder.layer_norm, "encoder.norm")
            self.norm(spec.decoder.layer_norm, "decoder.norm")
        # Sinusoidal tables are buffers and not saved; anything else left over
        # is a weight this exporter would drop.
        if self.state:
            raise Refusal(f"{self.weights_path}: {sorted(self.state)[0]}: a weight the exporter does not know")
        spec.register_source_vocabulary(vocabulary(self.source_spm, m["src_vocab"], "src_vocab"))
        spec.register_target_vocabulary(vocabulary(self.target_spm, m["tgt_vocab"], "tgt_vocab"))
        spec.config.add_source_eos = True  # we feed pieces + </s>, and CTranslate2 appends it
        spec.config.add_source_bos = False
        spec.config.decoder_start_token = SPECIALS[BOS]
        spec.config.bos_token, spec.config.eos_token, spec.config.unk_token = SPECIALS[BOS], SPECIALS[EOS], SPECIALS[UNK]
        spec.config.layer_norm_epsilon = m["layer_norm_eps"]
        spec.register_file(self.source_spm, "source.spm")
        spec.register_file(self.target_spm, "target.spm")
        return spec


def prepare_output(output, checkpoint, force):
    """Refuses to overwrite anything but a CTranslate2 model directory (with
    --force), or to write into the checkpoint."""
    out = os.path.realpath(output)
    ckpt = os.path.realpath(checkpoint)
    if out == ckpt or ckpt.startswith(out + os.sep) or out.startswith(ckpt + os.sep):
        raise Refusal(f"{output}: the output must lie outside the checkpoint {checkpoint}")
    if os.path.exists(out):
        if not force:
            raise Refusal(f"{output}: exists; give --force to replace it")
        if not os.path.isdir(out) or (os.listdir(out) and not os.path.exists(os.path.join(out, "model.bin"))):
            raise Refusal(f"{output}: exists and is not a CTranslate2 model directory; --force replaces only those")
    return out


def export(checkpoint, output, quantization="float32", raw_weights=False, force=False):
    out = prepare_output(output, checkpoint, force)
    converter = AiaynConverter(checkpoint, raw_weights)
    spec = converter.spec()
    spec.validate()
    spec.optimize(quantization=quantization)
    # Written beside the output and renamed into place: a failure leaves
    # neither a half model nor a lost old one.
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 is for the staging only
    try:
        spec.save(staging)
        with open(os.path.join(staging, "aiayn_export.json"), "w", encoding="utf-8") as f:
            json.dump({"checkpoint": os.path.realpath(converter.directory), "weights": os.path.basename(converter.weights_path),
                       "quantization": quantization, "max_positions": converter.model["max_positions"],
                       "note": "feed source pieces without </s> (add_source_eos); max_input_length <= max_positions - 1"},
                      f, indent=1)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Convert an aiayn checkpoint (averaged, EMA or raw) into a CTranslate2 model directory.",
        epilog="Decode it with ctranslate2.Translator(OUTPUT).translate_batch(pieces, "
               "max_input_length=max_positions-1, length_penalty=0 for our alpha 0); see docs/ctranslate2.md.")
    parser.add_argument("checkpoint", help="checkpoint directory, or a save directory (its last/)")
    parser.add_argument("output", help="CTranslate2 model directory to write")
    parser.add_argument("--quantization", choices=["float32", "int8", "int8_float32", "int16", "float16", "bfloat16"],
                        default="float32", help="weight type of the CTranslate2 model (default float32)")
    parser.add_argument("--raw-weights", action="store_true",
                        help="a checkpoint trained with train.ema_decay: its raw weights, not the moving average")
    parser.add_argument("--force", action="store_true", help="replace OUTPUT if it is a CTranslate2 model directory")
    args = parser.parse_args(argv)
    try:
        out = export(args.checkpoint, args.output, args.quantization, args.raw_weights, args.force)
    except Refusal as e:
        print(f"export_ctranslate2: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"export_ctranslate2: {e.name or e}: not importable; run scripts/setup.sh and use .venv-tools/bin/python",
              file=sys.stderr)
        return 2
    print(f"export_ctranslate2: wrote {out} ({args.quantization})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
