// The narrow C interface between our code and SentencePiece.
//
// Only plain C types cross it, so that nothing of SentencePiece's (or its
// bundled protobuf's) C++ world is visible to the process that loads it.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define AIAYN_SPM_API_VERSION 2

extern "C" {

typedef struct aiayn_spm_processor aiayn_spm_processor;

typedef struct aiayn_spm_api {
  int version;
  // Each call that can fail returns NULL or a negative number and leaves a
  // message for last_error() (thread-local in the bridge).
  const char* (*last_error)(void);
  aiayn_spm_processor* (*load)(const char* model_path);
  void (*free)(aiayn_spm_processor*);
  int (*vocab_size)(const aiayn_spm_processor*);
  int (*piece_to_id)(const aiayn_spm_processor*, const char* piece, size_t len);
  // Writes the piece of `id` into out (up to cap bytes); returns its length.
  long (*id_to_piece)(const aiayn_spm_processor*, int id, char* out, size_t cap);
  // Writes up to cap ids of text's pieces into out; returns how many there are
  // (call again with a larger buffer when that exceeds cap).
  long (*encode)(const aiayn_spm_processor*, const char* text, size_t len, int* out, size_t cap);
  // Writes up to cap bytes of the detokenized text into out; returns its length.
  long (*decode)(const aiayn_spm_processor*, const int* ids, size_t n, char* out, size_t cap);
  // SentencePieceTrainer::Train with a flag string ("--input=... --vocab_size=...").
  int (*train)(const char* flags);
  // Seeds SentencePiece's random generator (sentence sampling in training).
  void (*set_random_seed)(unsigned int seed);
  // The score of `id` (for BPE models: higher merges first); 0 outside the vocabulary.
  float (*score)(const aiayn_spm_processor*, int id);
  // 0 a normal piece, 1 unknown, 2 control, 3 anything else (unused, byte, ...);
  // -1 outside the vocabulary.
  int (*piece_type)(const aiayn_spm_processor*, int id);
} aiayn_spm_api;

// The single symbol the bridge exports.
const aiayn_spm_api* aiayn_spm_get_api(void);
}
