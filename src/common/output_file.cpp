#include "src/common/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "src/common/error.h"

namespace aiayn {

namespace fs = std::filesystem;

namespace {

// Temporaries a signal must remove. Fixed storage: the handler may only make
// async-signal-safe calls (unlink, signal, raise), so no allocation there.
constexpr int kSlots = 8;
char g_temporaries[kSlots][4096];
std::atomic<bool> g_slot_used[kSlots];

void remove_temporaries_and_die(int signal_number) {
  for (int i = 0; i < kSlots; ++i) {
    if (g_slot_used[i].load()) ::unlink(g_temporaries[i]);
  }
  // The default action: the process ends with this signal, as it would have
  // without us; a second signal meets the default handler already.
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

// Installs the handler for signals still at their default action: a
// program that handles them itself (aiayn-train) or a shell that ignores
// them (nohup) keeps its choice.
void install_handlers() {
  static bool installed = false;
  if (installed) return;
  installed = true;
  for (int s : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction current {};
    if (sigaction(s, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      std::signal(s, remove_temporaries_and_die);
    }
  }
}

int take_slot(const std::string& path) {
  if (path.size() >= sizeof g_temporaries[0]) return -1;
  for (int i = 0; i < kSlots; ++i) {
    if (!g_slot_used[i].load()) {
      std::memcpy(g_temporaries[i], path.c_str(), path.size() + 1);
      g_slot_used[i].store(true);
      install_handlers();
      return i;
    }
  }
  return -1;  // more than kSlots outputs at once: this one is removed on errors only
}

void release_slot(int slot) {
  if (slot >= 0) g_slot_used[slot].store(false);
}

// A device or a pipe (/dev/null, /dev/stdout, a FIFO) is written in place:
// renaming a temporary over it would replace the device node with a file
// (as root, /dev/null itself, which happened).
bool is_special(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

int open_in_place(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw_path_error(path, "cannot write", errno);
  return fd;
}

int open_temporary(const std::string& path, const std::string& tmp) {
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_path_error(path, "cannot write (creating " + tmp + ")", errno);
  return fd;
}

}  // namespace

void refuse_output_over_input(const std::string& option, const std::string& output,
                              const NamedPaths& inputs) {
  if (output == "-" || output.empty()) return;
  struct stat out_stat {};
  const bool out_exists = ::stat(output.c_str(), &out_stat) == 0;
  std::error_code ec;
  const auto out_path = fs::weakly_canonical(fs::absolute(output), ec);
  for (const auto& [name, input] : inputs) {
    if (input == "-" || input.empty()) continue;
    struct stat in_stat {};
    bool same = out_exists && ::stat(input.c_str(), &in_stat) == 0 && in_stat.st_dev == out_stat.st_dev &&
                in_stat.st_ino == out_stat.st_ino;
    std::error_code ec2;
    same = same || (!ec && fs::weakly_canonical(fs::absolute(input), ec2) == out_path && !ec2);
    if (same) {
      throw InputError(option + " " + output + ": is the same file as " + name + " " + input +
                       "; writing it would destroy the input: choose another output path");
    }
  }
}

bool OutputFile::Buffer::drain() {
  const char* p = pbase();
  while (p < pptr()) {
    const ssize_t n = ::write(fd_, p, static_cast<size_t>(pptr() - p));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = n < 0 ? errno : EIO;
      setp(data_, data_ + sizeof data_);
      return false;
    }
    p += n;
  }
  setp(data_, data_ + sizeof data_);
  return true;
}

int OutputFile::Buffer::overflow(int c) {
  if (!drain()) return traits_type::eof();
  if (c != traits_type::eof()) {
    *pptr() = static_cast<char>(c);
    pbump(1);
  }
  return traits_type::not_eof(c);
}

OutputFile::OutputFile(std::string path)
    : path_(std::move(path)),
      in_place_(is_special(path_)),
      tmp_(in_place_ ? path_ : path_ + ".tmp-" + std::to_string(::getpid())),
      fd_(in_place_ ? open_in_place(path_) : open_temporary(path_, tmp_)),
      slot_(in_place_ ? -1 : take_slot(tmp_)),
      buffer_(fd_),
      stream_(&buffer_) {}

OutputFile::~OutputFile() {
  if (!committed_) {
    if (fd_ >= 0) ::close(fd_);
    if (!in_place_) ::unlink(tmp_.c_str());
  }
  release_slot(slot_);
}

void OutputFile::check() {
  if (buffer_.error() != 0 || stream_.bad()) {
    errno = buffer_.error() != 0 ? buffer_.error() : EIO;
    throw io_error(path_, "cannot write");
  }
}

void OutputFile::commit() {
  stream_.flush();
  check();
  if (::fsync(fd_) != 0 && errno != EINVAL) throw io_error(path_, "cannot write (sync)");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw io_error(path_, "cannot write (close)");
  if (!in_place_ && std::rename(tmp_.c_str(), path_.c_str()) != 0) throw io_error(path_, "cannot replace");
  committed_ = true;
}

void write_file_atomically(const std::string& path, const std::string& text) {
  OutputFile file(path);
  file.stream() << text;
  file.commit();
}

}  // namespace aiayn
