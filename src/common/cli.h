// Command-line parsing shared by the apps (CLI11), with the project's exit codes.
#pragma once
#include <CLI/CLI.hpp>

#include <iostream>
#include <set>
#include <string>

#include "src/common/error.h"

namespace aiayn {

std::string version_text(const std::string& app_name);  // src/common/app.h

// Returns -1 when the app should go on, else the exit code: 0 after --help,
// 2 after a usage error (one line naming the option).
// Every app also gets --version (version_text).
inline int parse_command_line(CLI::App& app, int argc, char** argv) {
  const std::string name = app.get_name();
  app.set_version_flag(
      "--version", [name] { return version_text(name); },
      "print the version, LibTorch, the BLAS kernel and the CPU, and exit");
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << app.get_name() << ": error: " << e.what() << " (see --help)\n";
    return 2;
  }
}

// The long names (without "--") of the options given on the command line:
// the keys by which the library's jobs apply their rules (OptionError).
inline std::set<std::string> given_options(const CLI::App& app) {
  std::set<std::string> given;
  for (const CLI::Option* option : app.get_options()) {
    if (option->count() > 0 && !option->get_lnames().empty()) given.insert(option->get_lnames().front());
  }
  return given;
}

// The options of the HTTP layer both --serve modes share (src/serve/http_service.h).
inline void add_serve_http_options(CLI::App& app, size_t* max_body_bytes, int* threads) {
  app.add_option("--serve-max-body", *max_body_bytes, "--serve: request body bytes (more: 413)")
      ->check(CLI::Range(1, 1 << 30))
      ->capture_default_str();
  app.add_option("--serve-threads", *threads, "--serve: connections served at once")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
}

// --serve's mode: with it, `file_options` (the batch job's inputs and
// outputs) are refused; without it, every --serve-* option is, since it
// would be silently ignored. InputError naming the option.
inline void check_serve_mode(const CLI::App& app, bool serving,
                             std::initializer_list<const char*> file_options) {
  for (const CLI::Option* option : app.get_options()) {
    if (option->count() == 0 || option->get_lnames().empty()) continue;
    const std::string name = option->get_lnames().front();
    if (serving) {
      for (const char* other : file_options) {
        if ("--" + name == other) {
          throw InputError(std::string(other) + ": not with --serve (requests carry their own text)");
        }
      }
    } else if (name.rfind("serve-", 0) == 0) {
      throw InputError("--" + name + ": only with --serve HOST:PORT");
    }
  }
}

}  // namespace aiayn
