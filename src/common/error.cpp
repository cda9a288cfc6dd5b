#include "src/common/error.h"

#include <cerrno>
#include <cstring>
#include <utility>

namespace aiayn {

namespace {

// `message` with each {name} (letters, digits, '-', '_') replaced by
// flag(name), and each "{{" by "{".
std::string fill_option_names(const std::string& message,
                              const std::function<std::string(const std::string&)>& flag) {
  std::string out;
  for (size_t at = 0; at < message.size();) {
    const size_t open = message.find('{', at);
    // "{{" is a literal brace: how a path or value inside the text is kept
    // from reading as an option's name.
    if (open != std::string::npos && open + 1 < message.size() && message[open + 1] == '{') {
      out += message.substr(at, open - at) + "{";
      at = open + 2;
      continue;
    }
    const size_t close = open == std::string::npos ? open : message.find('}', open);
    const std::string name = close == std::string::npos ? "" : message.substr(open + 1, close - open - 1);
    const bool is_name = !name.empty() && name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_") ==
                                              std::string::npos;
    if (!is_name) {
      const size_t end = open == std::string::npos ? message.size() : open + 1;
      out += message.substr(at, end - at);
      at = end;
      continue;
    }
    out += message.substr(at, open - at) + flag(name);
    at = close + 1;
  }
  return out;
}

}  // namespace

OptionError::OptionError(std::string key_, std::string text_)
    : InputError(fill_option_names("{" + key_ + "}" + text_, [](const std::string& n) { return n; })),
      key(std::move(key_)),
      text(std::move(text_)) {}

std::string OptionError::render(const std::function<std::string(const std::string&)>& flag) const {
  return fill_option_names("{" + key + "}" + text, flag);
}

IOError io_error(const std::string& path, const std::string& what) {
  return IOError(path + ": " + what + ": " + std::strerror(errno));
}

void throw_path_error(const std::string& path, const std::string& what, int error) {
  const std::string message = path + ": " + what + ": " + std::strerror(error);
  switch (error) {
    case ENOTDIR:
    case EISDIR:
    case EEXIST:
    case ENOENT:
    case ENAMETOOLONG:
    case ELOOP:
      throw InputError(message);
    default:
      throw IOError(message);
  }
}

}  // namespace aiayn
