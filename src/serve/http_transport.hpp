// The HTTP server `serve` runs on, behind a plain interface. Its implementation (cpp-httplib)
// is a module, stepwise-http.so, that only `serve` loads (http_loader.cpp): linked into the
// binary, libcpp-httplib made every start load libstdc++.so, zlib and brotli, 4.5 ms per start
// measured, the largest part of a no-op `up` beyond the libpq floor (issue 14).
//
// Everything here is inline or virtual: the binary and the module share no symbols, only these
// types (built by the same compiler from the same header), and the one C entry point.
#pragma once

#include <strings.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stepwise/version.hpp"

namespace stepwise::serve {

using HttpFields = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;
  std::string path;
  std::string body;
  std::vector<std::string> matches;  // the route pattern's groups; [0] is the whole path
  HttpFields headers;
  HttpFields params;  // the query string, decoded

  // The first value of a header (names compare case-insensitively), "" when absent.
  [[nodiscard]] std::string header(std::string_view name) const {
    for (const auto& [n, v] : headers)
      if (n.size() == name.size() && strncasecmp(n.data(), name.data(), n.size()) == 0) return v;
    return {};
  }
  [[nodiscard]] bool has_param(std::string_view name) const {
    for (const auto& p : params)
      if (p.first == name) return true;
    return false;
  }
  [[nodiscard]] std::string param(std::string_view name) const {
    for (const auto& [n, v] : params)
      if (n == name) return v;
    return {};
  }
};

// Where a streamed answer writes: write() is false once the client has gone.
struct ChunkSink {
  std::function<bool(std::string_view)> write;
  std::function<void()> done;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type;
  HttpFields headers;
  // A streamed (chunked) answer: called again and again until it calls done(), or returns false
  // to drop the connection.
  std::function<bool(ChunkSink&)> stream;

  void set_content(std::string text, std::string type) {
    body = std::move(text);
    content_type = std::move(type);
  }
  void set_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;

struct HttpSettings {
  std::size_t max_body = 1 << 20;
  std::chrono::microseconds read_timeout{std::chrono::seconds(10)};
  std::chrono::microseconds write_timeout{std::chrono::seconds(10)};
  int threads = 24;
  int keep_alive_seconds = 2;
  int keep_alive_max_requests = 100;
  HttpFields default_headers;  // on every answer
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // method: "GET" or "POST" (serve needs no other). `pattern` is a regular expression
  // matched against the whole path; its groups are matches.
  virtual void route(std::string_view method, const std::string& pattern, HttpHandler handler) = 0;
  // Called for every answer with status >= 400 (the server's own 404, 413, 400 among them).
  virtual void on_error(HttpHandler handler) = 0;
  // Called when a handler throws; the answer it leaves is sent.
  virtual void on_exception(HttpHandler handler) = 0;
  virtual void configure(const HttpSettings& settings) = 0;
  // The port bound (port 0: any free one), or -1 when it cannot listen there.
  virtual int bind(const std::string& host, int port) = 0;
  virtual void listen() = 0;  // serves until stop()
  virtual void stop() = 0;    // from any thread
};

// The module's entry points (extern "C", looked up by name). The tag names the build both
// sides come from: the types above cross between them, so a module of another build is refused.
inline constexpr const char* kHttpTransportFactory = "stepwise_http_transport_new";
inline constexpr const char* kHttpTransportTagSymbol = "stepwise_http_transport_tag";
using HttpTransportFactory = HttpTransport* (*)();
using HttpTransportTag = const char* (*)();
// The tag both sides compute; compared by the loader before the factory is called.
inline const char* http_transport_tag() {
  static const std::string tag =
      std::string("stepwise-http 1 ") + kToolVersion + " " + kGitCommit + " " + __VERSION__;
  return tag.c_str();
}

// Loads stepwise-http.so (beside the binary, or in ../lib/stepwise/ from it, or the install
// prefix's) and makes a transport; throws Error naming every place it looked.
std::unique_ptr<HttpTransport> load_http_transport();

}  // namespace stepwise::serve
