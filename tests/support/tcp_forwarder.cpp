#include "tcp_forwarder.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace stepwise::test {

namespace {
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

void relay(int a, int b, const std::atomic<bool>* stopping) {
  pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
  char buf[16384];
  while (!stopping->load()) {
    if (poll(fds, 2, 100) < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        const auto n = read(fds[i].fd, buf, sizeof buf);
        if (n <= 0) goto done;
        if (write(fds[1 - i].fd, buf, static_cast<std::size_t>(n)) != n) goto done;
      }
    }
  }
done:
  shutdown(a, SHUT_RDWR);
  shutdown(b, SHUT_RDWR);
}
}  // namespace

TcpForwarder::TcpForwarder(int target_port) : target_port_(target_port), port_(free_port()) {}

TcpForwarder::~TcpForwarder() {
  stop();
}

void TcpForwarder::start() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port_));
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      listen(listen_fd_, 64) != 0)
    throw std::runtime_error("forwarder: cannot listen");
  acceptor_ = std::thread([this] { accept_loop(); });
}

void TcpForwarder::accept_loop() {
  while (!stopping_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const int client = accept(listen_fd_, nullptr, nullptr);
    if (client < 0) continue;
    const int server = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(target_port_));
    if (connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(client);
      close(server);
      continue;
    }
    fds_.push_back(client);
    fds_.push_back(server);
    relays_.emplace_back(relay, client, server, &stopping_);
  }
}

void TcpForwarder::stop() {
  if (stopping_.exchange(true)) return;
  if (acceptor_.joinable()) acceptor_.join();
  for (auto& t : relays_)
    if (t.joinable()) t.join();
  for (int fd : fds_) close(fd);
  if (listen_fd_ >= 0) close(listen_fd_);
}

int server_port(const std::string& url) {
  const auto at = url.rfind('@');
  const auto colon = url.find(':', at == std::string::npos ? url.find("://") + 3 : at);
  return std::stoi(url.substr(colon + 1));
}

std::string with_port(const std::string& url, int port) {
  const auto at = url.rfind('@');
  const auto colon = url.find(':', at == std::string::npos ? url.find("://") + 3 : at);
  const auto slash = url.find('/', colon);
  return url.substr(0, colon + 1) + std::to_string(port) + url.substr(slash);
}

}  // namespace stepwise::test
