#pragma once
// Runs the stepwise binary (or any program) and captures its exit code, stdout and stderr.
#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace stepwise::test {

struct ProcessResult {
  int exit_code = -1;  // -1: killed by a signal (see signal)
  int signal = 0;
  std::string out;
  std::string err;
  std::chrono::milliseconds took{0};
};

// A started child; its output goes to temp files so it can never block on a full pipe.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {});
  ~Process();
  Process(Process&&) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  Process& operator=(Process&&) = delete;

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  void signal(int sig) const;
  // Waits up to `timeout` from this call; kills the child (SIGKILL) when it is exceeded.
  ProcessResult wait(std::chrono::milliseconds timeout = std::chrono::seconds(120));
  [[nodiscard]] std::string stderr_so_far() const;

 private:
  pid_t pid_ = -1;
  std::string out_path_, err_path_;
  std::chrono::steady_clock::time_point start_;
};

ProcessResult run(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& env = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(120));

// The built stepwise binary followed by `args`.
std::vector<std::string> stepwise_cmd(std::vector<std::string> args);

}  // namespace stepwise::test
