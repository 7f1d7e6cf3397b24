// stepwise-http.so: serve's HttpTransport on cpp-httplib. The only code that includes
// httplib.h; loaded by `serve` alone (http_transport.hpp says why).
#include <httplib.h>

#include <exception>

#include "http_transport.hpp"

namespace stepwise::serve {
namespace {

HttpRequest to_request(const httplib::Request& req) {
  HttpRequest r;
  r.method = req.method;
  r.path = req.path;
  r.body = req.body;
  for (const auto& m : req.matches) r.matches.push_back(m.str());
  for (const auto& [name, value] : req.headers) r.headers.emplace_back(name, value);
  for (const auto& [name, value] : req.params) r.params.emplace_back(name, value);
  return r;
}

// Our answer into httplib's. A plain answer without a body leaves httplib's empty, so that an
// error handler can tell it from one a handler wrote.
void apply(HttpResponse& ours, httplib::Response& res) {
  res.status = ours.status;
  for (auto& [name, value] : ours.headers) res.set_header(name, value);
  if (ours.stream) {
    auto stream = std::move(ours.stream);
    res.set_chunked_content_provider(ours.content_type, [stream = std::move(stream)](
                                                            std::size_t, httplib::DataSink& sink) {
      ChunkSink out{[&sink](std::string_view text) { return sink.write(text.data(), text.size()); },
                    [&sink] { sink.done(); }};
      return stream(out);
    });
  } else if (!ours.body.empty() || !ours.content_type.empty()) {
    res.set_content(std::move(ours.body), ours.content_type);
  }
}

class HttplibTransport final : public HttpTransport {
 public:
  void route(std::string_view method, const std::string& pattern, HttpHandler handler) override {
    auto call = [handler = std::move(handler)](const httplib::Request& req,
                                               httplib::Response& res) {
      HttpResponse ours;
      handler(to_request(req), ours);
      apply(ours, res);
    };
    if (method == "POST")
      server_.Post(pattern, std::move(call));
    else
      server_.Get(pattern, std::move(call));
  }
  void on_error(HttpHandler handler) override {
    server_.set_error_handler(
        [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
          HttpResponse ours;
          ours.status = res.status;
          ours.body = res.body;
          handler(to_request(req), ours);
          if (ours.body != res.body) apply(ours, res);
        });
  }
  void on_exception(HttpHandler handler) override {
    server_.set_exception_handler([handler = std::move(handler)](const httplib::Request& req,
                                                                 httplib::Response& res,
                                                                 std::exception_ptr) {
      HttpResponse ours;
      ours.status = 500;
      handler(to_request(req), ours);
      apply(ours, res);
    });
  }
  void configure(const HttpSettings& s) override {
    const int threads = s.threads;
    server_.new_task_queue = [threads] {
      return new httplib::ThreadPool(static_cast<std::size_t>(threads));
    };
    server_.set_payload_max_length(s.max_body);
    server_.set_read_timeout(s.read_timeout);
    server_.set_write_timeout(s.write_timeout);
    server_.set_keep_alive_timeout(s.keep_alive_seconds);
    server_.set_keep_alive_max_count(static_cast<std::size_t>(s.keep_alive_max_requests));
    httplib::Headers headers;
    for (const auto& [name, value] : s.default_headers) headers.emplace(name, value);
    server_.set_default_headers(std::move(headers));
  }
  int bind(const std::string& host, int port) override {
    if (port == 0) return server_.bind_to_any_port(host);
    return server_.bind_to_port(host, port) ? port : -1;
  }
  void listen() override { server_.listen_after_bind(); }
  void stop() override { server_.stop(); }

 private:
  httplib::Server server_;
};

}  // namespace
}  // namespace stepwise::serve

extern "C" __attribute__((visibility("default"))) stepwise::serve::HttpTransport*
stepwise_http_transport_new() {
  try {
    return new stepwise::serve::HttplibTransport();
  } catch (...) {
    return nullptr;
  }
}

extern "C" __attribute__((visibility("default"))) const char* stepwise_http_transport_tag() {
  return stepwise::serve::http_transport_tag();
}
