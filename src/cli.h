// Command-line parsing shared by the apps (CLI11), with the project's exit codes.
#pragma once
#include <CLI/CLI.hpp>

#include <iostream>

namespace aiayn {

// Returns -1 when the app should go on, else the exit code: 0 after --help,
// 2 after a usage error (one line naming the option).
inline int parse_command_line(CLI::App& app, int argc, char** argv) {
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

}  // namespace aiayn
