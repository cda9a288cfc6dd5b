#include "src/train/rank_agreement.h"

#include <exception>
#include <filesystem>

#include "src/common/build_info.h"
#include "src/common/error.h"
#include "src/common/hash.h"
#include "src/train/distributed.h"

namespace aiayn {

namespace {

// The config keys that name files: compared by contents, shown by path.
bool names_a_file(const std::string& key) {
  return key == "data.train_src" || key == "data.train_tgt" || key == "data.valid_src" ||
         key == "data.valid_tgt" || key == "data.spm_model" || key == "data.spm_src_model";
}

// {"shown": what the message prints, "same": what is compared}.
nlohmann::json file_entry(const std::string& path) {
  if (path.empty()) return {{"shown", "(none)"}, {"same", ""}};
  if (!std::filesystem::is_regular_file(path)) return {{"shown", path + " (missing)"}, {"same", "missing"}};
  const std::string digest = hex64(hash_file(path));
  return {{"shown", path + " (contents " + digest + ")"}, {"same", digest}};
}

nlohmann::json value_entry(const nlohmann::json& value) {
  return {{"shown", value.dump()}, {"same", value.dump()}};
}

}  // namespace

nlohmann::json rank_fingerprint(const ExperimentConfig& config, const RunOptions& options) {
  nlohmann::json print = nlohmann::json::object();
  const nlohmann::json settings = config.to_json();
  for (const auto& [section, keys] : settings.items()) {
    for (const auto& [key, value] : keys.items()) {
      const std::string name = section + "." + key;
      print[name] =
          names_a_file(name) && value.is_string() ? file_entry(value.get<std::string>()) : value_entry(value);
    }
  }
  print["--resume"] = value_entry(options.resume);
  print["--init"] =
      std::filesystem::is_regular_file(options.init) ? file_entry(options.init) : value_entry(options.init);
  print["LibTorch"] = value_entry(build_info().libtorch);
  return print;
}

std::string first_disagreement(const std::vector<nlohmann::json>& fingerprints) {
  if (fingerprints.empty()) return "";
  for (size_t r = 0; r < fingerprints.size(); ++r) {
    if (fingerprints[r].contains("unreadable")) {
      return "rank " + std::to_string(r) +
             " could not read its settings: " + fingerprints[r]["unreadable"]["shown"].get<std::string>();
    }
  }
  const auto& first = fingerprints[0];
  for (size_t r = 1; r < fingerprints.size(); ++r) {
    const auto& other = fingerprints[r];
    for (const auto& [key, entry] : first.items()) {
      const bool absent = !other.contains(key);
      if (!absent && other[key]["same"] == entry["same"]) continue;
      return "rank " + std::to_string(r) + " disagrees with rank 0 on " + key + ": " +
             (absent ? std::string("(unknown to its build)") : other[key]["shown"].get<std::string>()) +
             " there, " + entry["shown"].get<std::string>() +
             " on rank 0; every rank must train on the same settings and files";
    }
    for (const auto& [key, entry] : other.items()) {
      if (!first.contains(key)) {
        return "rank " + std::to_string(r) + " disagrees with rank 0 on " + key + ": " +
               entry["shown"].get<std::string>() + " there, unknown to rank 0's build";
      }
    }
  }
  return "";
}

void require_ranks_agree(const ExperimentConfig& config, const RunOptions& options) {
  Communicator* comm = options.communicator;
  if (comm == nullptr) return;
  std::string mine;
  std::exception_ptr failure;
  try {
    mine = rank_fingerprint(config, options).dump();
  } catch (const std::exception& e) {
    // Still take part, so that the others stop too instead of waiting.
    mine = nlohmann::json{{"unreadable", {{"shown", e.what()}, {"same", e.what()}}}}.dump();
    failure = std::current_exception();
  }
  std::vector<nlohmann::json> prints;
  for (const auto& text : comm->all_gather("fingerprint", mine, "comparing the ranks' settings")) {
    prints.push_back(nlohmann::json::parse(text));
  }
  if (failure) std::rethrow_exception(failure);
  const std::string disagreement = first_disagreement(prints);
  if (!disagreement.empty()) throw InputError(disagreement);
}

}  // namespace aiayn
