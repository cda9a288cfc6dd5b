// What aiayn-attention does, as a library call.
#pragma once
#include <torch/torch.h>

#include <iosfwd>
#include <string>

#include "src/attention/attention_export.h"
#include "src/decode/model_loader.h"

namespace aiayn {

struct AttentionJob {
  std::string checkpoint;
  std::string source = "-";    // "-" = stdin
  std::string target;          // optional: force-decode these
  std::string output = "-";    // "-" = stdout
  std::string html;            // optional viewer path
  std::string mask_heads;      // heads to ablate (src/decode/head_mask.h): zero in the dump
  std::string gold_alignment;  // Pharaoh gold links per source line: print the AER table
  AttentionExportOptions options;
  torch::Device device = torch::kCPU;
};

// "encoder,cross" -> the kind switches; throws InputError for an unknown kind.
void parse_attention_kinds(const std::string& kinds, AttentionExportOptions* options);

// The job's checkpoint as the attention tool reads it: float weights, the
// job's heads masked; throws InputError naming the checkpoint.
LoadedModels load_attention_model(const AttentionJob& job, std::ostream& log);

// Streams the dump (and writes the viewer). Throws InputError for bad input.
void run_attention_job(const AttentionJob& job, std::ostream& log);

// The self-contained HTML viewer; `dump` (JSON Lines) is embedded when not empty.
std::string attention_viewer_html(const std::string& dump);
// The same page live (aiayn-attention --serve): a sentence typed in is sent
// to POST /v1/attention and its entry drawn; head masks and alignment
// options are sent with it.
std::string attention_explorer_html();

}  // namespace aiayn
