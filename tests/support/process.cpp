#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace stepwise::test {

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string temp_path(const char* tag) {
  std::string tmpl = std::string("/tmp/stepwise-test-") + tag + "-XXXXXX";
  const int fd = mkstemp(tmpl.data());
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  close(fd);
  return tmpl;
}
}  // namespace

Process::Process(const std::vector<std::string>& argv,
                 const std::map<std::string, std::string>& env)
    : out_path_(temp_path("out")),
      err_path_(temp_path("err")),
      start_(std::chrono::steady_clock::now()) {
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int out = open(out_path_.c_str(), O_WRONLY | O_TRUNC);
    const int err = open(err_path_.c_str(), O_WRONLY | O_TRUNC);
    dup2(out, 1);
    dup2(err, 2);
    setpgid(0, 0);
    // Restore default signal handling and an empty mask (the test runner may block some).
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (const auto& [k, v] : env) {
      if (v.empty())
        unsetenv(k.c_str());
      else
        setenv(k.c_str(), v.c_str(), 1);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
}

Process::Process(Process&& o) noexcept
    : pid_(o.pid_),
      out_path_(std::move(o.out_path_)),
      err_path_(std::move(o.err_path_)),
      start_(o.start_) {
  o.pid_ = -1;
}

Process::~Process() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (!out_path_.empty()) unlink(out_path_.c_str());
  if (!err_path_.empty()) unlink(err_path_.c_str());
}

void Process::signal(int sig) const {
  if (pid_ > 0) kill(pid_, sig);
}

std::string Process::stderr_so_far() const {
  return slurp(err_path_);
}

ProcessResult Process::wait(std::chrono::milliseconds timeout) {
  ProcessResult r;
  // From now, not from the start: a test that ran for a while before it waits still gives the
  // child the whole `timeout` (a serve stopped after a 20 s browser test was killed at once).
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (true) {
    const auto w = waitpid(pid_, &status, WNOHANG);
    if (w == pid_) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      r.err = "[test harness: killed after timeout]\n";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  pid_ = -1;
  r.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start_);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = slurp(out_path_);
  r.err += slurp(err_path_);
  return r;
}

ProcessResult run(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env,
                  std::chrono::milliseconds timeout) {
  Process p(argv, env);
  return p.wait(timeout);
}

std::vector<std::string> stepwise_cmd(std::vector<std::string> args) {
  args.insert(args.begin(), STEPWISE_BINARY);
  return args;
}

}  // namespace stepwise::test
