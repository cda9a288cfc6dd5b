#include "src/data/tokenizer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "models/config.h"
#include "src/common/error.h"
#include "src/common/hash.h"
#include "src/common/text_reader.h"
#include "third_party/sentencepiece/loader.h"

namespace aiayn {

Tokenizer Tokenizer::load(const std::string& model_path) {
  const auto& spm = spm::api();
  if (!std::filesystem::is_regular_file(model_path)) {
    throw InputError(model_path + ": SentencePiece model not found");
  }
  aiayn_spm_processor* raw = spm.load(model_path.c_str());
  if (raw == nullptr) {
    throw InputError(model_path + ": not a SentencePiece model (" + spm.last_error() + ")");
  }
  Tokenizer t;
  t.proc_ = std::shared_ptr<aiayn_spm_processor>(raw, spm.free);
  t.path_ = model_path;
  t.vocab_size_ = spm.vocab_size(raw);
  t.hash_ = hash_file(model_path);
  const std::pair<int64_t, const char*> specials[] = {
      {kPadId, "<pad>"}, {kUnkId, "<unk>"}, {kBosId, "<s>"}, {kEosId, "</s>"}};
  for (const auto& [id, piece] : specials) {
    if (id >= t.vocab_size_ || t.piece(static_cast<int32_t>(id)) != piece) {
      throw InputError(model_path + ": id " + std::to_string(id) + " must be " + piece +
                       " (train with --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3)");
    }
  }
  return t;
}

void Tokenizer::train(const std::vector<std::string>& inputs, const std::string& model_prefix,
                      const TokenizerTrainOptions& o) {
  if (inputs.empty()) throw InputError("tokenizer training needs at least one input file");
  std::string files;
  for (const auto& f : inputs) {
    if (!std::filesystem::is_regular_file(f)) throw InputError(f + ": file not found");
    if (f.find(',') != std::string::npos) {
      throw InputError(f + ": SentencePiece cannot take a file name with a comma");
    }
    files += (files.empty() ? "" : ",") + f;
  }
  int threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  std::string flags = "--input=" + files + " --model_prefix=" + model_prefix +
                      " --model_type=" + o.model_type + " --vocab_size=" + std::to_string(o.vocab_size) +
                      " --character_coverage=" + std::to_string(o.character_coverage) +
                      " --input_sentence_size=" + std::to_string(o.input_sentence_size) +
                      " --split_digits=" + (o.split_digits ? "true" : "false") +
                      " --shuffle_input_sentence=true --num_threads=" + std::to_string(threads) +
                      " --pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3"
                      " --pad_piece=<pad> --unk_piece=<unk> --bos_piece=<s> --eos_piece=</s>"
                      " --hard_vocab_limit=false --minloglevel=1";
  spm::api().set_random_seed(static_cast<unsigned>(o.seed));
  // SentencePiece's trainer logs pages to stderr; keep them in a file beside
  // the model, where they help when something looks wrong.
  const std::string log_path = model_prefix + ".train.log";
  std::fflush(stderr);
  int saved = dup(STDERR_FILENO);
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (log_fd >= 0) dup2(log_fd, STDERR_FILENO);
  int status = spm::api().train(flags.c_str());
  std::fflush(stderr);
  if (log_fd >= 0) {
    dup2(saved, STDERR_FILENO);
    ::close(log_fd);
  }
  ::close(saved);
  if (status != 0) {
    throw InputError("training the SentencePiece model " + model_prefix +
                     ".model failed: " + spm::api().last_error() + " (log: " + log_path + ")");
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  const auto& spm = spm::api();
  std::vector<int32_t> ids(text.size() + 8);
  long n = spm.encode(proc_.get(), text.data(), text.size(), ids.data(), ids.size());
  if (n > static_cast<long>(ids.size())) {
    ids.resize(static_cast<size_t>(n));
    n = spm.encode(proc_.get(), text.data(), text.size(), ids.data(), ids.size());
  }
  if (n < 0) throw InputError(path_ + ": cannot encode text: " + spm.last_error());
  ids.resize(static_cast<size_t>(n));
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const auto& spm = spm::api();
  std::vector<int32_t> kept;
  kept.reserve(ids.size());
  for (int32_t id : ids) {
    if (id != kPadId && id != kBosId && id != kEosId) kept.push_back(id);
  }
  std::string text(kept.size() * 8 + 16, '\0');
  long n = spm.decode(proc_.get(), kept.data(), kept.size(), text.data(), text.size());
  if (n > static_cast<long>(text.size())) {
    text.resize(static_cast<size_t>(n));
    n = spm.decode(proc_.get(), kept.data(), kept.size(), text.data(), text.size());
  }
  if (n < 0) throw InputError(path_ + ": cannot decode ids: " + spm.last_error());
  text.resize(static_cast<size_t>(n));
  return text;
}

std::string Tokenizer::piece(int32_t id) const {
  const auto& spm = spm::api();
  std::string out(64, '\0');
  long n = spm.id_to_piece(proc_.get(), id, out.data(), out.size());
  if (n > static_cast<long>(out.size())) {
    out.resize(static_cast<size_t>(n));
    n = spm.id_to_piece(proc_.get(), id, out.data(), out.size());
  }
  if (n < 0) throw InputError(path_ + ": " + spm.last_error());
  out.resize(static_cast<size_t>(n));
  return out;
}

float Tokenizer::score(int32_t id) const { return spm::api().score(proc_.get(), id); }

bool Tokenizer::is_normal(int32_t id) const { return spm::api().piece_type(proc_.get(), id) == 0; }

std::vector<int64_t> encode_for_model(const Tokenizer& tokenizer, const std::string& text, int64_t limit,
                                      const std::string& where, const std::string& left_empty,
                                      const std::function<void(const std::string&)>& warn) {
  if (!valid_utf8(text)) {
    if (warn) warn(where + ": invalid UTF-8; " + left_empty);
    return {};
  }
  auto ids = tokenizer.encode(text);
  std::vector<int64_t> out(ids.begin(), ids.end());
  if (static_cast<int64_t>(out.size()) > limit) {
    if (warn) {
      warn(where + ": " + std::to_string(out.size()) + " tokens, truncated to the model's limit of " +
           std::to_string(limit));
    }
    out.resize(static_cast<size_t>(limit));
  }
  return out;
}

}  // namespace aiayn
