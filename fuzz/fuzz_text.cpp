// Text input: UTF-8 checking (valid_utf8) and line handling (LineReader,
// as read_lines uses it, and LineStream, as stdin is read): a BOM, CR LF,
// a lone CR, empty lines, no final newline. The two readers must agree
// line for line, and make one line per newline, plus a last line when the
// text does not end with one.
#include <fcntl.h>

#include <cstdlib>

#include "fuzz/fuzz_input.h"
#include "src/common/error.h"
#include "src/common/text_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  aiayn::valid_utf8(std::string_view(reinterpret_cast<const char*>(data), size));
  const auto path = aiayn::fuzz::write_file("input.txt", data, size);
  const auto lines = aiayn::read_lines(path);
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) std::abort();
  aiayn::LineStream stream(fd, path);
  std::vector<std::string> streamed;
  while (stream.next_group(&streamed, 3)) {
  }
  ::close(fd);
  if (streamed != lines) std::abort();
  size_t newlines = 0;
  for (size_t i = 0; i < size; ++i) newlines += data[i] == '\n';
  if (lines.size() != newlines + (size > 0 && data[size - 1] != '\n')) std::abort();
  for (const auto& line : lines) {
    if (line.find('\n') != std::string::npos) std::abort();
  }
  return 0;
}
