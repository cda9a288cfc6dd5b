// Subword tokenization with SentencePiece (through the bridge in
// third_party/sentencepiece): training, encoding to ids, decoding to text.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct aiayn_spm_processor;

namespace aiayn {

struct TokenizerTrainOptions {
  std::string model_type = "bpe";  // or "unigram"
  int64_t vocab_size = 8000;
  double character_coverage = 1.0;        // 1.0 keeps every character of European scripts
  bool split_digits = false;              // every digit its own piece (numbers copy digit by digit)
  int64_t input_sentence_size = 2000000;  // sentences sampled for training (0 = all)
  uint64_t seed = 1;
  int threads = 0;  // 0 = all cores
};

// A loaded SentencePiece model. Special ids are fixed for models the toolkit
// trains: pad 0, unk 1, bos 2, eos 3 (models/config.h); load() refuses a
// model whose pad/unk/bos/eos pieces sit elsewhere. Thread-safe for encoding
// and decoding; cheap to copy (the processor is shared).
class Tokenizer {
 public:
  // Throws InputError naming the file when it is missing or not a model.
  static Tokenizer load(const std::string& model_path);
  // Trains <model_prefix>.model (and .vocab) from one or more text files
  // (source and target together give a joint vocabulary).
  static void train(const std::vector<std::string>& inputs, const std::string& model_prefix,
                    const TokenizerTrainOptions& options);

  std::vector<int32_t> encode(std::string_view text) const;
  std::string decode(const std::vector<int32_t>& ids) const;  // drops pad/bos/eos
  std::string piece(int32_t id) const;
  // A BPE model's merge priority (higher first), SentencePiece's score.
  float score(int32_t id) const;
  // Whether `id` is an ordinary piece (not unknown, control, unused or byte).
  bool is_normal(int32_t id) const;
  int64_t vocab_size() const { return vocab_size_; }
  const std::string& path() const { return path_; }
  // Hash of the .model file's bytes: stored with checkpoints and caches, so
  // a checkpoint is never paired with another vocabulary.
  uint64_t hash() const { return hash_; }

 private:
  std::shared_ptr<aiayn_spm_processor> proc_;
  std::string path_;
  int64_t vocab_size_ = 0;
  uint64_t hash_ = 0;
};

// The tokenizers of one translation direction: a joint model for both sides
// (what section 3.4's shared embeddings need), or one per side.
struct TokenizerPair {
  Tokenizer source, target;
  bool separate = false;  // two models (even if they happen to be equal)
  bool joint() const { return !separate; }
};

// A line as the model takes it: checked for UTF-8, encoded, and cut to
// `limit` tokens (the model's positions less eos), one path for translate
// and the attention export. Invalid UTF-8 gives no ids and warns
// "WHERE: invalid UTF-8; LEFT_EMPTY"; a cut line warns
// "WHERE: N tokens, truncated to the model's limit of LIMIT".
std::vector<int64_t> encode_for_model(const Tokenizer& tokenizer, const std::string& text, int64_t limit,
                                      const std::string& where, const std::string& left_empty,
                                      const std::function<void(const std::string&)>& warn);

}  // namespace aiayn
