#pragma once
// A `stepwise serve` child on a free port (--listen 127.0.0.1:0; the port is read from its
// "listening on" log line), an HTTP client for it, and a migration set with slow steps.
#include <gtest/gtest.h>
#include <httplib.h>

#include <unistd.h>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"
#include "test_db.hpp"

namespace stepwise::test {

inline const std::string kServeToken = "test-token-0123456789abcdef";

class ServeProcess {
 public:
  // `args` go after `serve`; `global` before it (after --database-url).
  ServeProcess(const std::string& database_url, std::vector<std::string> args,
               std::vector<std::string> global = {}, std::map<std::string, std::string> env = {})
      : token_file_(make_token_file()) {
    std::vector<std::string> cmd = {"--database-url", database_url};
    cmd.insert(cmd.end(), global.begin(), global.end());
    cmd.insert(cmd.end(), {"serve", "--listen", "127.0.0.1:0"});
    bool has_token_arg = false;
    for (const auto& a : args) has_token_arg = has_token_arg || a == "--no-token";
    if (!has_token_arg) cmd.insert(cmd.end(), {"--token-file", token_file_});
    for (const auto& a : args)
      if (a != "--no-token") cmd.push_back(a);
    env.emplace("STEPWISE_DATABASE_URL", "");
    env.emplace("DATABASE_URL", "");
    env.emplace("STEPWISE_TOKEN", "");
    process_ = std::make_unique<Process>(stepwise_cmd(cmd), env);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      const auto err = process_->stderr_so_far();
      const auto at = err.find("listening on http://127.0.0.1:");
      if (at != std::string::npos) {
        port_ = std::stoi(err.substr(at + 30));
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "serve did not start: " << process_->stderr_so_far();
  }
  // A serve still running stops on SIGTERM, cleanly (exit 0: no sanitizer report either).
  ~ServeProcess() {
    std::remove(token_file_.c_str());
    if (!process_ || stopped_) return;
    process_->signal(SIGTERM);
    const auto r = process_->wait(std::chrono::seconds(15));
    EXPECT_EQ(r.exit_code, 0) << "serve did not stop cleanly on SIGTERM: " << r.err;
  }
  // Waits for the process after the test signalled it.
  ProcessResult wait(std::chrono::milliseconds timeout) {
    stopped_ = true;
    return process_->wait(timeout);
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] Process& process() { return *process_; }
  [[nodiscard]] std::unique_ptr<httplib::Client> client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(std::chrono::seconds(30));
    c->set_connection_timeout(std::chrono::seconds(5));
    return c;
  }
  [[nodiscard]] static httplib::Headers auth(const std::string& token = kServeToken) {
    return {{"Authorization", "Bearer " + token}};
  }
  // GET with the token; the body parsed as JSON (null when it is not JSON).
  struct Answer {
    int status = 0;
    std::string body;
    nlohmann::json json;
  };
  Answer get(const std::string& path, const httplib::Headers& headers = auth()) const {
    auto res = client()->Get(path.c_str(), headers);
    return answer(res);
  }
  Answer post(const std::string& path, const std::string& body,
              const httplib::Headers& headers = auth()) const {
    auto res = client()->Post(path.c_str(), headers, body, "application/json");
    return answer(res);
  }
  // The whole SSE stream of an upgrade (until the server ends it), as (type, data) pairs.
  struct Event {
    long long id = 0;
    std::string type;
    nlohmann::json data;
  };
  std::vector<Event> events(const std::string& id) const {
    std::string text;
    auto c = client();
    c->set_read_timeout(std::chrono::seconds(60));
    auto res = c->Get(("/v1/upgrades/" + id + "/events").c_str(), auth(),
                      [&](const char* data, std::size_t n) {
                        text.append(data, n);
                        return true;
                      });
    last_stream_ = text;
    std::vector<Event> out;
    std::size_t start = 0;
    while (true) {
      const auto end = text.find("\n\n", start);
      if (end == std::string::npos) break;
      const auto frame = text.substr(start, end - start);
      start = end + 2;
      Event e;
      std::size_t pos = 0;
      while (pos < frame.size()) {
        auto nl = frame.find('\n', pos);
        if (nl == std::string::npos) nl = frame.size();
        const auto line = frame.substr(pos, nl - pos);
        if (line.rfind("id: ", 0) == 0) e.id = std::stoll(line.substr(4));
        if (line.rfind("event: ", 0) == 0) e.type = line.substr(7);
        if (line.rfind("data: ", 0) == 0) e.data = nlohmann::json::parse(line.substr(6));
        pos = nl + 1;
      }
      if (!e.type.empty()) out.push_back(std::move(e));
    }
    return out;
  }
  [[nodiscard]] const std::string& last_stream() const { return last_stream_; }
  // Polls GET /v1/upgrades/{id} until its state is not "running".
  nlohmann::json wait_for(const std::string& id,
                          std::chrono::milliseconds timeout = std::chrono::seconds(60)) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    nlohmann::json j;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto a = get("/v1/upgrades/" + id);
      j = a.json;
      if (a.status == 200 && j.value("state", "running") != "running") return j;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "the upgrade did not end: " << j.dump();
    return j;
  }

 private:
  static std::string make_token_file() {
    std::string path = "/tmp/stepwise-token-XXXXXX";
    const int fd = mkstemp(path.data());
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    const auto text = kServeToken + "\n";
    if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      throw std::runtime_error("write failed");
    ::close(fd);
    return path;
  }
  static Answer answer(const httplib::Result& res) {
    Answer a;
    if (!res) return a;
    a.status = res->status;
    a.body = res->body;
    try {
      a.json = nlohmann::json::parse(res->body);
    } catch (const std::exception&) {
    }
    return a;
  }

  std::string token_file_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
  bool stopped_ = false;
  mutable std::string last_stream_;
};

inline std::string fmt_version(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "202501020000%02d", i);
  return buf;
}

// Releases 1.0 (one table) and 2.0 (`steps` more migrations, each sleeping `sleep_s` first);
// the database is brought to 1.0. `extra` adds a last migration's SQL (e.g. one that fails).
inline void write_slow_set(const MigrationDir& dir, int steps, double sleep_s,
                           const std::string& extra = {}) {
  dir.write("20250101000000_base.up.sql", "CREATE TABLE base (id int);\n");
  for (int i = 1; i <= steps; ++i)
    dir.write(fmt_version(i) + "_slow_" + std::to_string(i) + ".up.sql",
              "SELECT pg_sleep(" + std::to_string(sleep_s) + ");\nCREATE TABLE slow_" +
                  std::to_string(i) + " (id int);\n");
  int last = steps;
  if (!extra.empty()) dir.write(fmt_version(++last) + "_extra.up.sql", extra);
  dir.write("releases.json",
            "{\"releases\": [{\"name\": \"1.0\", \"schema\": 20250101000000, \"min_schema\": "
            "20250101000000}, {\"name\": \"2.0\", \"schema\": " +
                fmt_version(last) + ", \"min_schema\": 20250101000000}]}\n");
}

}  // namespace stepwise::test
