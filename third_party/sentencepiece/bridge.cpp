// The SentencePiece bridge: a shared library that alone links Debian's
// libsentencepiece and is loaded with RTLD_LOCAL | RTLD_DEEPBIND (README.md).
#include "bridge_api.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace {

thread_local std::string g_error;

struct Processor {
  sentencepiece::SentencePieceProcessor spm;
};

Processor* as_proc(aiayn_spm_processor* p) { return reinterpret_cast<Processor*>(p); }
const Processor* as_proc(const aiayn_spm_processor* p) { return reinterpret_cast<const Processor*>(p); }

long copy_out(const std::string& s, char* out, size_t cap) {
  if (out != nullptr) std::memcpy(out, s.data(), std::min(cap, s.size()));
  return static_cast<long>(s.size());
}

const char* last_error() { return g_error.c_str(); }

aiayn_spm_processor* load(const char* path) {
  auto* p = new Processor;
  auto status = p->spm.Load(path);
  if (!status.ok()) {
    g_error = status.ToString();
    delete p;
    return nullptr;
  }
  return reinterpret_cast<aiayn_spm_processor*>(p);
}

void free_processor(aiayn_spm_processor* p) { delete as_proc(p); }

int vocab_size(const aiayn_spm_processor* p) { return as_proc(p)->spm.GetPieceSize(); }

int piece_to_id(const aiayn_spm_processor* p, const char* piece, size_t len) {
  return as_proc(p)->spm.PieceToId(std::string(piece, len));
}

long id_to_piece(const aiayn_spm_processor* p, int id, char* out, size_t cap) {
  const auto& spm = as_proc(p)->spm;
  if (id < 0 || id >= spm.GetPieceSize()) {
    g_error = "id " + std::to_string(id) + " is outside the vocabulary";
    return -1;
  }
  return copy_out(spm.IdToPiece(id), out, cap);
}

long encode(const aiayn_spm_processor* p, const char* text, size_t len, int* out, size_t cap) {
  std::vector<int> ids;
  auto status = as_proc(p)->spm.Encode(std::string(text, len), &ids);
  if (!status.ok()) {
    g_error = status.ToString();
    return -1;
  }
  if (out != nullptr) std::copy_n(ids.begin(), std::min(cap, ids.size()), out);
  return static_cast<long>(ids.size());
}

long decode(const aiayn_spm_processor* p, const int* ids, size_t n, char* out, size_t cap) {
  std::string text;
  auto status = as_proc(p)->spm.Decode(std::vector<int>(ids, ids + n), &text);
  if (!status.ok()) {
    g_error = status.ToString();
    return -1;
  }
  return copy_out(text, out, cap);
}

int train(const char* flags) {
  auto status = sentencepiece::SentencePieceTrainer::Train(flags);
  if (!status.ok()) {
    g_error = status.ToString();
    return -1;
  }
  return 0;
}

void set_random_seed(unsigned int seed) { sentencepiece::SetRandomGeneratorSeed(seed); }

float score(const aiayn_spm_processor* p, int id) {
  const auto& spm = as_proc(p)->spm;
  return id >= 0 && id < spm.GetPieceSize() ? spm.GetScore(id) : 0.0f;
}

int piece_type(const aiayn_spm_processor* p, int id) {
  const auto& spm = as_proc(p)->spm;
  if (id < 0 || id >= spm.GetPieceSize()) return -1;
  if (spm.IsUnknown(id)) return 1;
  if (spm.IsControl(id)) return 2;
  if (spm.IsUnused(id) || spm.IsByte(id)) return 3;
  return 0;
}

const aiayn_spm_api kApi = {
    AIAYN_SPM_API_VERSION, last_error,  load,       free_processor, vocab_size,
    piece_to_id,           id_to_piece, encode,     decode,         train,
    set_random_seed,       score,       piece_type,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const aiayn_spm_api* aiayn_spm_get_api(void) {
  return &kApi;
}
