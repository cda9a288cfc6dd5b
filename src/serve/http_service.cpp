#include "src/serve/http_service.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <ostream>
#include <thread>

#include "src/common/error.h"
#include "src/serve/httplib_glue.h"

namespace aiayn {

namespace {

std::atomic<int> g_signal{0};
void remember(int sig) { g_signal = sig; }

void answer(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void answer_error(httplib::Response& res, int status, const std::string& message, int retry_after = 0) {
  if (retry_after > 0) res.set_header("Retry-After", std::to_string(retry_after));
  answer(res, status, {{"error", message}});
}

// Runs a handler, turning what it throws into the answer.
template <typename Fn>
void guarded(httplib::Response& res, Fn&& fn) {
  try {
    answer(res, 200, fn());
  } catch (const HttpError& e) {
    answer_error(res, e.status, e.what(), e.retry_after);
  } catch (const std::exception& e) {
    answer_error(res, 500, std::string("internal error: ") + e.what());
  }
}

}  // namespace

void parse_listen_address(const std::string& text, const std::string& option, ServeOptions& options) {
  const auto colon = text.rfind(':');
  const std::string host = colon == std::string::npos ? "" : text.substr(0, colon);
  const std::string port = colon == std::string::npos ? text : text.substr(colon + 1);
  char* end = nullptr;
  const long value = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || value < 0 || value > 65535) {
    throw InputError(option + " \"" + text +
                     "\": expected HOST:PORT with a port 0-65535 (e.g. 127.0.0.1:8080)");
  }
  if (!host.empty()) options.host = host;
  options.port = static_cast<int>(value);
}

struct HttpService::Impl {
  ServeOptions options;
  httplib::Server server;
  int bound_port = 0;
};

HttpService::HttpService(ServeOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  auto& server = impl_->server;
  const size_t threads = static_cast<size_t>(std::max(1, impl_->options.threads));
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_payload_max_length(impl_->options.max_body_bytes);
  // Answers are small and written in more than one piece (status and
  // headers, then the body): with Nagle's algorithm the body waits for the
  // client's delayed ACK, about 40 ms on Linux, on every request.
  server.set_tcp_nodelay(true);
  const size_t limit = impl_->options.max_body_bytes;
  // cpp-httplib answers an oversized body with a bare 413; and a path it
  // does not know with a bare 404. Both get a body that says why.
  server.set_error_handler([limit](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413) {
      answer_error(res, 413,
                   "request body over the limit of " + std::to_string(limit) + " bytes (--serve-max-body)");
    } else if (res.status == 404) {
      answer_error(res, 404, "no such endpoint: " + req.method + " " + req.path);
    } else {
      answer_error(res, res.status, "HTTP " + std::to_string(res.status));
    }
  });
}

HttpService::~HttpService() = default;

void HttpService::post(const std::string& path, JsonHandler handler) {
  impl_->server.Post(path, [handler](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      nlohmann::json body;
      try {
        body = nlohmann::json::parse(req.body);
      } catch (const nlohmann::json::parse_error& e) {
        throw HttpError(400, std::string("the body is not JSON: ") + e.what());
      }
      if (!body.is_object()) throw HttpError(400, "the body must be a JSON object");
      return handler(body);
    });
  });
}

void HttpService::get(const std::string& path, std::function<nlohmann::json()> handler) {
  impl_->server.Get(path,
                    [handler](const httplib::Request&, httplib::Response& res) { guarded(res, handler); });
}

void HttpService::document(const std::string& path, const std::string& content_type, std::string body) {
  impl_->server.Get(path,
                    [content_type, body = std::move(body)](const httplib::Request&, httplib::Response& res) {
                      res.set_content(body, content_type.c_str());
                    });
}

int HttpService::port() const { return impl_->bound_port; }

void HttpService::stop() { impl_->server.stop(); }

void HttpService::run(std::ostream& log) {
  auto& o = impl_->options;
  auto& server = impl_->server;
  if (o.port == 0) {
    impl_->bound_port = server.bind_to_any_port(o.host);
  } else if (server.bind_to_port(o.host, o.port)) {
    impl_->bound_port = o.port;
  }
  if (impl_->bound_port <= 0) {
    throw InputError("--serve " + o.host + ":" + std::to_string(o.port) +
                     ": cannot listen there (address in use, or not one of this host's)");
  }
  log << "listening on http://" << o.host << ":" << impl_->bound_port
      << " (SIGTERM or Ctrl-C: finish and stop)" << std::endl;
  // The first SIGTERM or SIGINT stops accepting; requests in flight finish
  // (cpp-httplib's pool drains its queue when it shuts down).
  g_signal = 0;
  auto old_term = std::signal(SIGTERM, remember);
  auto old_int = std::signal(SIGINT, remember);
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done) {
      if (g_signal != 0) {
        server.stop();
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  server.listen_after_bind();
  done = true;
  watcher.join();
  std::signal(SIGTERM, old_term);
  std::signal(SIGINT, old_int);
  if (g_signal != 0)
    log << "stopped by signal " << g_signal << " after finishing the requests in flight" << std::endl;
}

const nlohmann::json* JsonFields::find(const std::string& key) {
  if (std::find(read_.begin(), read_.end(), key) == read_.end()) read_.push_back(key);
  auto it = object_.find(key);
  return it == object_.end() || it->is_null() ? nullptr : &*it;
}

std::vector<std::string> JsonFields::strings(const std::string& key, bool required) {
  const auto* value = find(key);
  if (value == nullptr) {
    if (required) throw HttpError(400, "missing field \"" + key + "\" (a list of strings)");
    return {};
  }
  if (!value->is_array()) throw HttpError(400, "field \"" + key + "\": expected a list of strings");
  std::vector<std::string> out;
  for (size_t i = 0; i < value->size(); ++i) {
    if (!(*value)[i].is_string()) {
      throw HttpError(400, "field \"" + key + "\"[" + std::to_string(i) + "]: expected a string");
    }
    out.push_back((*value)[i].get<std::string>());
  }
  return out;
}

std::string JsonFields::string(const std::string& key, const std::string& fallback, bool required) {
  const auto* value = find(key);
  if (value == nullptr) {
    if (required) throw HttpError(400, "missing field \"" + key + "\" (a string)");
    return fallback;
  }
  if (!value->is_string())
    throw HttpError(400, "field \"" + key + "\": expected a string, got " + value->dump());
  return value->get<std::string>();
}

std::vector<int64_t> JsonFields::integers(const std::string& key, int64_t min, int64_t max) {
  const auto* value = find(key);
  if (value == nullptr) return {};
  if (!value->is_array()) throw HttpError(400, "field \"" + key + "\": expected a list of integers");
  std::vector<int64_t> out;
  for (size_t i = 0; i < value->size(); ++i) {
    const auto& v = (*value)[i];
    if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max) {
      throw HttpError(400, "field \"" + key + "\"[" + std::to_string(i) + "]: expected an integer in [" +
                               std::to_string(min) + ", " + std::to_string(max) + "], got " + v.dump());
    }
    out.push_back(v.get<int64_t>());
  }
  return out;
}

int64_t JsonFields::integer(const std::string& key, int64_t fallback, int64_t min, int64_t max) {
  const auto* value = find(key);
  if (value == nullptr) return fallback;
  if (!value->is_number_integer() || value->get<int64_t>() < min || value->get<int64_t>() > max) {
    throw HttpError(400, "field \"" + key + "\": expected an integer in [" + std::to_string(min) + ", " +
                             std::to_string(max) + "], got " + value->dump());
  }
  return value->get<int64_t>();
}

double JsonFields::number(const std::string& key, double fallback, double min, double max) {
  const auto* value = find(key);
  if (value == nullptr) return fallback;
  if (!value->is_number() || value->get<double>() < min || value->get<double>() > max) {
    throw HttpError(400, "field \"" + key + "\": expected a number in [" + nlohmann::json(min).dump() + ", " +
                             nlohmann::json(max).dump() + "], got " + value->dump());
  }
  return value->get<double>();
}

bool JsonFields::boolean(const std::string& key, bool fallback) {
  const auto* value = find(key);
  if (value == nullptr) return fallback;
  if (!value->is_boolean())
    throw HttpError(400, "field \"" + key + "\": expected true or false, got " + value->dump());
  return value->get<bool>();
}

void JsonFields::reject_unknown() const {
  for (const auto& [key, value] : object_.items()) {
    if (std::find(read_.begin(), read_.end(), key) == read_.end()) {
      std::string known;
      for (const auto& k : read_) known += (known.empty() ? "" : ", ") + k;
      throw HttpError(400, "unknown field \"" + key + "\" (known: " + known + ")");
    }
  }
}

}  // namespace aiayn
