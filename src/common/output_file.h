// Output files that never cost the user data: written under a temporary name
// beside the real one and renamed over it only when complete, removed on an
// error and on SIGINT/SIGTERM, and refused when they would overwrite an input.
#pragma once
#include <ostream>
#include <streambuf>
#include <string>
#include <utility>
#include <vector>

namespace aiayn {

// Named input files, e.g. {{"--input", "x.en"}, {"--reference", "x.de"}}.
using NamedPaths = std::vector<std::pair<std::string, std::string>>;

// Throws InputError when `output` (given as option `option`) names the same
// file as one of `inputs`: the same path, or another path (a link, a
// relative path, a hard link) to the same inode. "-" (stdio) is never a file.
void refuse_output_over_input(const std::string& option, const std::string& output, const NamedPaths& inputs);

class OutputFile {
 public:
  // Creates `path`.tmp-PID (IOError when it cannot). The real file is only
  // touched by commit(). A device or pipe (/dev/null, a FIFO) is opened and
  // written in place instead: there is no file content to protect, and a
  // rename would replace the device node.
  explicit OutputFile(std::string path);
  ~OutputFile();  // removes the temporary unless committed
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  std::ostream& stream() { return stream_; }
  // Throws IOError (path and OS error) if a write has failed so far.
  void check();
  // Flushes, syncs and renames the temporary over the real path.
  void commit();
  const std::string& path() const { return path_; }

 private:
  // Unbuffered-by-iostream writes straight to a descriptor, keeping errno.
  class Buffer : public std::streambuf {
   public:
    explicit Buffer(int fd) : fd_(fd) { setp(data_, data_ + sizeof data_); }
    int error() const { return error_; }
    bool drain();

   protected:
    int overflow(int c) override;
    int sync() override { return drain() ? 0 : -1; }

   private:
    int fd_;
    int error_ = 0;
    char data_[1 << 16];
  };

  std::string path_;
  bool in_place_;  // a device or pipe, written directly (never renamed over)
  std::string tmp_;
  int fd_ = -1;
  int slot_ = -1;  // in the table of temporaries the signal handler removes
  Buffer buffer_;
  std::ostream stream_;
  bool committed_ = false;
};

// Writes `text` to `path` through an OutputFile.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace aiayn
