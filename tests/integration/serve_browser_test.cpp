// The maintenance page in a real browser: headless Chromium, driven over the DevTools protocol
// on a pipe (--remote-debugging-pipe: NUL-separated JSON on fds 3 and 4), loads the page during
// a real upgrade of a set with slow steps and reads the DOM until the final state shows.
// Skipped, with the reason, only where Chromium cannot start.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "serve_process.hpp"
#include "test_db.hpp"

namespace stepwise::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string chromium_path() {
  if (const char* p = std::getenv("STEPWISE_CHROMIUM"); p && *p) return p;
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (access(p, X_OK) == 0) return p;
  return {};
}

class Browser {
 public:
  explicit Browser(const std::string& exe) {
    profile_ = fs::temp_directory_path() / ("stepwise-chromium-" + std::to_string(getpid()));
    fs::create_directories(profile_);
    log_ = (profile_ / "chromium.log").string();
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      setpgid(0, 0);
      const int log = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(log, 1);
      dup2(log, 2);
      // fds 3 and 4 are the protocol's: 3 is read by Chromium, 4 written.
      const int in = dup(to_child[0]);
      const int out = dup(from_child[1]);
      dup2(in, 3);
      dup2(out, 4);
      for (int fd = 5; fd < 1024; ++fd) close(fd);
      const auto dir = "--user-data-dir=" + profile_.string();
      execl(exe.c_str(), exe.c_str(), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
            "--disable-extensions", "--remote-debugging-pipe", dir.c_str(), "about:blank",
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    write_fd_ = to_child[1];
    read_fd_ = from_child[0];
  }
  ~Browser() {
    try {
      if (pid_ > 0) (void)call("Browser.close", {}, {}, std::chrono::seconds(2));
    } catch (const std::exception&) {
    }
    if (pid_ > 0) {
      const auto deadline = Clock::now() + std::chrono::seconds(3);
      int status = 0;
      while (waitpid(pid_, &status, WNOHANG) == 0 && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    close(write_fd_);
    close(read_fd_);
    std::error_code ec;
    fs::remove_all(profile_, ec);
  }
  Browser(const Browser&) = delete;
  Browser& operator=(const Browser&) = delete;

  [[nodiscard]] std::string log_tail() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    auto s = ss.str();
    return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
  }

  // One command; the result (throws on a protocol error or after `timeout`).
  nlohmann::json call(const std::string& method, nlohmann::json params = nlohmann::json::object(),
                      const std::string& session = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const int id = ++next_id_;
    nlohmann::json msg{{"id", id}, {"method", method}, {"params", std::move(params)}};
    if (!session.empty()) msg["sessionId"] = session;
    auto text = msg.dump();
    text.push_back('\0');
    if (::write(write_fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      throw std::runtime_error("cannot write to Chromium");
    const auto deadline = Clock::now() + timeout;
    while (true) {
      const auto nul = buffer_.find('\0');
      if (nul != std::string::npos) {
        const auto one = buffer_.substr(0, nul);
        buffer_.erase(0, nul + 1);
        auto reply = nlohmann::json::parse(one, nullptr, false);
        if (reply.is_object() && reply.value("id", -1) == id) {
          if (reply.contains("error")) throw std::runtime_error(method + ": " + reply.dump());
          return reply["result"];
        }
        continue;  // an event, or another reply
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) throw std::runtime_error(method + ": no answer from Chromium");
      pollfd p{read_fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char chunk[65536];
      const auto n = ::read(read_fd_, chunk, sizeof chunk);
      if (n <= 0) throw std::runtime_error(method + ": Chromium closed the pipe");
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  pid_t pid_ = -1;
  int write_fd_ = -1;
  int read_fd_ = -1;
  int next_id_ = 0;
  std::string buffer_;
  fs::path profile_;
  std::string log_;
};

std::string base64_decode(const std::string& in) {
  std::string out(in.size() / 4 * 3 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) throw std::runtime_error("bad base64");
  // EVP_DecodeBlock counts the padding as zero bytes.
  std::size_t pad = 0;
  for (auto it = in.rbegin(); it != in.rend() && *it == '=' && pad < 2; ++it) ++pad;
  out.resize(static_cast<std::size_t>(n) - pad);
  return out;
}

void screenshot(Browser& b, const std::string& session, const std::string& file) {
  const auto shot = b.call("Page.captureScreenshot",
                           {{"format", "png"}, {"captureBeyondViewport", true}}, session);
  std::ofstream(file, std::ios::binary) << base64_decode(shot["data"].get<std::string>());
}

constexpr const char* kReadDom = R"JS(JSON.stringify({
  state: document.getElementById('progress').getAttribute('data-state'),
  done: +document.getElementById('overall').getAttribute('data-done'),
  total: +document.getElementById('overall').getAttribute('data-total'),
  width: document.querySelector('#overall > div').style.width,
  step: document.getElementById('current-step').textContent,
  final: document.getElementById('final').textContent,
  finalShown: !document.getElementById('final').classList.contains('hidden'),
  releases: document.querySelectorAll('#releases .bar').length,
  db: document.getElementById('db-pill').textContent,
  version: document.getElementById('db-version').textContent,
  latencies: window.stepwiseLatencies || []
}))JS";

TEST(ServeBrowser, PageShowsLiveProgressAndTheFinalState) {
  REQUIRE_TEST_DATABASE();
  const auto exe = chromium_path();
  if (exe.empty()) GTEST_SKIP() << "no Chromium (/usr/bin/chromium): install the chromium package";
  TestDb db;
  MigrationDir dir;
  constexpr int kSteps = 6;
  write_slow_set(dir, kSteps, 0.7);
  ASSERT_EQ(db.stepwise({"--source", dir.path(), "migrate-to", "20250101000000"}).exit_code, 0);
  ServeProcess serve(db.url(), {"--public-read"}, {"--source", dir.path()});

  std::unique_ptr<Browser> browser;
  std::string session;
  try {
    browser = std::make_unique<Browser>(exe);
    const auto target = browser->call("Target.createTarget", {{"url", "about:blank"}});
    session = browser->call("Target.attachToTarget",
                            {{"targetId", target["targetId"]}, {"flatten", true}})["sessionId"];
  } catch (const std::exception& e) {
    const auto why = std::string(e.what()) + "; " + (browser ? browser->log_tail() : "");
    GTEST_SKIP() << "Chromium cannot start here: " << why;
  }
  auto& b = *browser;
  // A phone-sized viewport: the page must work there.
  b.call("Emulation.setDeviceMetricsOverride",
         {{"width", 412}, {"height", 915}, {"deviceScaleFactor", 1}, {"mobile", true}}, session);

  const auto started = serve.post("/v1/upgrades", R"({"to": "2.0"})");
  ASSERT_EQ(started.status, 202) << started.body;
  const auto id = started.json["id"].get<std::string>();
  b.call("Page.navigate", {{"url", serve.base() + "/"}}, session);

  std::set<int> seen;
  nlohmann::json dom;
  bool shot_mid = false;
  const auto build = std::string(STEPWISE_BUILD_DIR);
  const auto deadline = Clock::now() + std::chrono::seconds(40);
  while (Clock::now() < deadline) {
    const auto r =
        b.call("Runtime.evaluate", {{"expression", kReadDom}, {"returnByValue", true}}, session);
    if (r.contains("result") && r["result"].value("type", "") == "string") {
      dom = nlohmann::json::parse(r["result"]["value"].get<std::string>());
      if (dom["state"].is_string()) seen.insert(dom["done"].get<int>());
      if (!shot_mid && dom["done"].get<int>() >= 2 && dom["state"] == "running") {
        screenshot(b, session, build + "/serve-page-progress.png");
        shot_mid = true;
      }
      if (dom["finalShown"].get<bool>()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Then the page reads the database's new state.
  const auto settle = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < settle && dom.value("db", "") != "database OK") {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto r =
        b.call("Runtime.evaluate", {{"expression", kReadDom}, {"returnByValue", true}}, session);
    if (r.contains("result") && r["result"].value("type", "") == "string")
      dom = nlohmann::json::parse(r["result"]["value"].get<std::string>());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the bars' transition
  screenshot(b, session, build + "/serve-page.png");
  std::cout << "screenshot: " << build << "/serve-page.png\n";
  // Progress advanced while the page watched: intermediate counts, then all steps.
  std::size_t intermediate = 0;
  for (int d : seen) intermediate += d > 0 && d < kSteps;
  EXPECT_GE(intermediate, 2u) << "counts seen: " << ::testing::PrintToString(seen) << " "
                              << dom.dump();
  EXPECT_EQ(dom["state"], "succeeded") << dom.dump();
  EXPECT_EQ(dom["done"], kSteps);
  EXPECT_EQ(dom["total"], kSteps);
  EXPECT_EQ(dom["width"], "100%");
  EXPECT_EQ(dom["releases"], 1);
  EXPECT_EQ(dom["db"], "database OK") << dom.dump();
  EXPECT_EQ(dom["version"], "20250102000006") << dom.dump();
  EXPECT_NE(
      dom["final"].get<std::string>().find("Upgrade finished: the database is at release 2.0"),
      std::string::npos)
      << dom.dump();
  EXPECT_TRUE(shot_mid);
  EXPECT_TRUE(fs::exists(build + "/serve-page.png"));
  EXPECT_GT(fs::file_size(build + "/serve-page.png"), 1000u);
  EXPECT_EQ(serve.wait_for(id)["state"], "succeeded");
  // From a step's commit (the event's time) to the page showing it.
  auto lat = dom["latencies"].get<std::vector<long long>>();
  ASSERT_FALSE(lat.empty()) << "no step was seen live";
  std::sort(lat.begin(), lat.end());
  const auto median = lat[lat.size() / 2];
  std::cout << "step finished -> page shows it: median " << median << " ms, max " << lat.back()
            << " ms over " << lat.size() << " step(s)\n";
  RecordProperty("latency_median_ms", static_cast<int>(median));
  RecordProperty("latency_max_ms", static_cast<int>(lat.back()));
  EXPECT_LT(lat.back(), 2000) << "the page lags the upgrade";
}

}  // namespace
}  // namespace stepwise::test
