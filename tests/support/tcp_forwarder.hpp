#pragma once
// A loopback TCP forwarder: reserves a port now, starts accepting only when start() is called
// (a server that is "not up yet"), and relays every connection to 127.0.0.1:target_port.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace stepwise::test {

class TcpForwarder {
 public:
  explicit TcpForwarder(int target_port);
  ~TcpForwarder();
  TcpForwarder(const TcpForwarder&) = delete;
  TcpForwarder& operator=(const TcpForwarder&) = delete;
  [[nodiscard]] int port() const noexcept { return port_; }
  void start();
  // Closes the listening socket and every relayed connection (a server going away).
  void stop();

 private:
  void accept_loop();
  int target_port_;
  int port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::vector<std::thread> relays_;
  std::vector<int> fds_;
};

int server_port(const std::string& url);
std::string with_port(const std::string& url, int port);

}  // namespace stepwise::test
