#include "src/common/text_reader.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <poll.h>
#include <unistd.h>

#include "src/common/error.h"

namespace aiayn {

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF.
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    i += len;
  }
  return true;
}

std::vector<std::string> read_lines(const std::string& path) {
  LineReader reader(path);
  std::vector<std::string> lines;
  std::string line;
  while (reader.next(&line)) lines.push_back(line);
  return lines;
}

LineReader::LineReader(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "rb");
  if (file_ == nullptr) throw InputError(path + ": cannot open: " + std::strerror(errno));
}

LineReader::~LineReader() {
  if (file_ != nullptr) std::fclose(file_);
  std::free(buffer_);
}

bool LineReader::next(std::string* line) {
  ssize_t n = getline(&buffer_, &capacity_, file_);
  if (n < 0) {
    if (std::ferror(file_))
      throw InputError(path_ + ": read error after line " + std::to_string(line_number_));
    return false;
  }
  ++line_number_;
  std::string_view view(buffer_, static_cast<size_t>(n));
  if (!view.empty() && view.back() == '\n') view.remove_suffix(1);
  if (!view.empty() && view.back() == '\r') view.remove_suffix(1);
  if (line_number_ == 1 && view.substr(0, 3) == "\xEF\xBB\xBF") view.remove_prefix(3);
  line->assign(view.data(), view.size());
  return true;
}

int64_t LineReader::count_rest() {
  int64_t n = 0;
  while (getline(&buffer_, &capacity_, file_) >= 0) ++n;
  return n;
}

LineStream::LineStream(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}

bool LineStream::fill(bool block) {
  if (eof_) return false;
  if (!block) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return false;
  }
  char buf[65536];
  ssize_t n;
  do {
    n = ::read(fd_, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw InputError(name_ + ": read error: " + std::strerror(errno));
  if (n == 0) {
    eof_ = true;
    return false;
  }
  buffer_.append(buf, static_cast<size_t>(n));
  return true;
}

bool LineStream::take_line(std::string* line) {
  size_t nl = buffer_.find('\n');
  if (nl == std::string::npos) {
    if (!eof_ || buffer_.empty()) return false;
    nl = buffer_.size();  // a last line without a newline
  }
  std::string_view view(buffer_.data(), nl);
  if (!view.empty() && view.back() == '\r') view.remove_suffix(1);
  if (first_ && view.substr(0, 3) == "\xEF\xBB\xBF") view.remove_prefix(3);
  first_ = false;
  line->assign(view.data(), view.size());
  buffer_.erase(0, std::min(buffer_.size(), nl + 1));
  return true;
}

bool LineStream::next_group(std::vector<std::string>* lines, size_t max_lines) {
  std::string line;
  while (!take_line(&line)) {  // block for one complete line, or the end
    if (eof_) return false;
    fill(true);
  }
  lines->push_back(line);
  for (size_t taken = 1; taken < max_lines;) {
    if (take_line(&line)) {
      lines->push_back(line);
      ++taken;
    } else if (!fill(false)) {
      break;
    }
  }
  return true;
}

}  // namespace aiayn
