// The HTTP layer both executables serve through (aiayn-translate --serve,
// aiayn-attention --serve): JSON in and out under a versioned path, limits
// that answer with the limit named, and a shutdown on SIGTERM or SIGINT that
// stops accepting, finishes what is in flight and returns. On Debian's
// cpp-httplib; only http_service.cpp sees it.
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <iosfwd>
#include <memory>
#include <stdexcept>
#include <string>

namespace aiayn {

struct ServeOptions {
  std::string host = "127.0.0.1";  // loopback unless asked
  int port = 8080;
  size_t max_body_bytes = 1 << 20;  // larger bodies: 413
  int threads = 16;                 // connections served at once
};

// "HOST:PORT", ":PORT" or "PORT" (loopback) into `options`; InputError
// naming `option` when malformed.
void parse_listen_address(const std::string& text, const std::string& option, ServeOptions& options);

// What a handler throws to answer with an error: the status, and a message
// that names the field or limit ({"error": message} in the body).
struct HttpError : std::runtime_error {
  HttpError(int status, const std::string& message, int retry_after_seconds = 0)
      : std::runtime_error(message), status(status), retry_after(retry_after_seconds) {}
  int status;
  int retry_after;  // > 0: a Retry-After header (503)
};

class HttpService {
 public:
  explicit HttpService(ServeOptions options);
  ~HttpService();
  HttpService(const HttpService&) = delete;
  HttpService& operator=(const HttpService&) = delete;

  using JsonHandler = std::function<nlohmann::json(const nlohmann::json& body)>;
  // POST `path` with a JSON object body; the handler's result is the answer.
  // Bad JSON or a body that is not an object: 400 before the handler runs.
  void post(const std::string& path, JsonHandler handler);
  void get(const std::string& path, std::function<nlohmann::json()> handler);
  // A fixed document (the explorer's page).
  void document(const std::string& path, const std::string& content_type, std::string body);

  // Binds (InputError naming the address when it cannot), prints
  // "listening on http://HOST:PORT" to `log`, and serves until SIGTERM,
  // SIGINT or stop(); returns once every request in flight is answered.
  void run(std::ostream& log);
  void stop();
  // The port bound (the one asked, or the kernel's choice for port 0).
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A JSON object's fields, checked as the handlers read them: a missing or
// mistyped field and an unknown one are 400s that name the field.
class JsonFields {
 public:
  explicit JsonFields(const nlohmann::json& object) : object_(object) {}
  const nlohmann::json* find(const std::string& key);  // null when absent
  std::vector<std::string> strings(const std::string& key, bool required);
  std::string string(const std::string& key, const std::string& fallback, bool required);
  std::vector<int64_t> integers(const std::string& key, int64_t min, int64_t max);  // absent: {}
  int64_t integer(const std::string& key, int64_t fallback, int64_t min, int64_t max);
  double number(const std::string& key, double fallback, double min, double max);
  bool boolean(const std::string& key, bool fallback);
  void reject_unknown() const;  // call after reading every field

 private:
  const nlohmann::json& object_;
  std::vector<std::string> read_;
};

}  // namespace aiayn
