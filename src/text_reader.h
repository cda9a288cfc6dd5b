// Line-by-line reading of UTF-8 text files as users bring them: a UTF-8 BOM
// and Windows CRLF line ends are dropped silently; invalid UTF-8 is reported
// with file and line.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace aiayn {

bool valid_utf8(std::string_view text);

class LineReader {
 public:
  // Throws InputError naming the file when it cannot be opened.
  explicit LineReader(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Reads the next line (without its line end) into *line; false at the end.
  bool next(std::string* line);
  // 1-based number of the line last read.
  int64_t line_number() const { return line_number_; }
  // Counts the lines not read yet (consumes them).
  int64_t count_rest();
  const std::string& path() const { return path_; }

 private:
  std::FILE* file_ = nullptr;
  std::string path_;
  int64_t line_number_ = 0;
  char* buffer_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace aiayn
