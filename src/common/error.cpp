#include "src/common/error.h"

#include <cerrno>
#include <cstring>

namespace aiayn {

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
