// Line-by-line reading of UTF-8 text files as users bring them: a UTF-8 BOM
// and Windows CRLF line ends are dropped silently; invalid UTF-8 is reported
// with file and line.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace aiayn {

bool valid_utf8(std::string_view text);

// Every line of a file (as LineReader reads them).
std::vector<std::string> read_lines(const std::string& path);

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

// Lines from a file descriptor (a pipe or terminal) as they arrive: each
// call blocks for at least one complete line, then also takes whatever
// further complete lines are already available, so an interactive user gets
// an answer per line and a piped file still gets batches.
class LineStream {
 public:
  explicit LineStream(int fd, std::string name = "<stdin>");
  // Appends up to max_lines lines; false once the stream has ended and all
  // lines were returned.
  bool next_group(std::vector<std::string>* lines, size_t max_lines);
  const std::string& name() const { return name_; }

 private:
  bool fill(bool block);  // reads once; false at end of input
  bool take_line(std::string* line);

  int fd_;
  std::string name_;
  std::string buffer_;
  bool eof_ = false;
  bool first_ = true;
};

}  // namespace aiayn
