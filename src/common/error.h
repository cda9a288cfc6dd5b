// Error kinds the apps map to exit codes (0 ok, 2 bad input, 3 training
// diverged, 1 anything else).
#pragma once
#include <functional>
#include <stdexcept>
#include <string>

namespace aiayn {

// Bad input from the user: a file, a line or a key. The message names it and
// says what to fix; apps print it on one line and exit with code 2.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Bad input in one option of a job, which the library names by its key,
// never by a front end's spelling: the message is "{key}" followed by
// `text`, and `{other}` inside `text` refers to another option. A front
// end renders the keys its own way: run_app (src/common/app.h) as the
// command line's flags (--key); what() leaves them bare.
//   throw OptionError("nbest", " 3: exceeds {beam} 2");  // --nbest 3: exceeds --beam 2
struct OptionError : InputError {
  OptionError(std::string key, std::string text);
  // The message with each {name} replaced by flag(name).
  std::string render(const std::function<std::string(const std::string&)>& flag) const;
  std::string key;
  std::string text;  // after the key, with {name} placeholders
};

// The system failed us, not the user's input: a write that hit a full disk,
// a permission, an I/O error. The message names the path and the OS error;
// apps exit with code 1.
struct IOError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Training diverged: too many non-finite losses in a row. Neither bad input
// nor a failing system, and a sweep or a scheduler may want to tell it
// apart (try a lower learning rate): apps exit with code 3.
struct DivergenceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A collective of data-parallel training failed: a rank died, hung, or the
// network broke. The message names the lost rank(s) when the heartbeats
// tell which; apps exit with code 1.
struct DistributedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "path: what: strerror(errno)", read from errno at the call.
IOError io_error(const std::string& path, const std::string& what);

// Throws "path: what: strerror(error)" as the error's kind: a path that
// cannot name a file or directory (a component is a file, a directory
// stands where a file should, too long) is bad input; anything else
// (permission, a full disk, a read-only file system, I/O) is an IOError.
[[noreturn]] void throw_path_error(const std::string& path, const std::string& what, int error);

}  // namespace aiayn
