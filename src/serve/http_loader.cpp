// Finds and loads stepwise-http.so, serve's HTTP transport (http_transport.hpp says why it is
// a module). Looked for beside the binary (a build tree, or a migrator that copied it), then in
// the install layout relative to the binary (bin/ -> lib/stepwise/), then in this build's
// install prefix.
#include <dlfcn.h>
#include <fmt/format.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <string>
#include <vector>

#include "http_transport.hpp"
#include "stepwise/errors.hpp"

#ifndef STEPWISE_HTTP_MODULE_RELDIR
#define STEPWISE_HTTP_MODULE_RELDIR "../lib/stepwise"
#endif
#ifndef STEPWISE_HTTP_MODULE_INSTALLED
#define STEPWISE_HTTP_MODULE_INSTALLED ""
#endif

namespace stepwise::serve {
namespace {

constexpr const char* kModuleName = "stepwise-http.so";

std::vector<std::filesystem::path> candidates() {
  std::vector<std::filesystem::path> out;
  char buf[PATH_MAX];
  const auto n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    const auto dir =
        std::filesystem::path(std::string(buf, static_cast<std::size_t>(n))).parent_path();
    out.push_back(dir / kModuleName);
    out.push_back((dir / STEPWISE_HTTP_MODULE_RELDIR / kModuleName).lexically_normal());
  }
  if (const std::string installed = STEPWISE_HTTP_MODULE_INSTALLED; !installed.empty())
    out.push_back(std::filesystem::path(installed) / kModuleName);
  return out;
}

}  // namespace

std::unique_ptr<HttpTransport> load_http_transport() {
  std::string looked;
  for (const auto& path : candidates()) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      looked += (looked.empty() ? "" : ", ") + path.string();
      continue;
    }
    // RTLD_LOCAL: the module's symbols (and libcpp-httplib's) stay its own.
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      throw Error(ExitCode::kFailed,
                  fmt::format("serve: cannot load its HTTP module {}: {}", path.string(),
                              why != nullptr ? why : "unknown error"),
                  "install the runtime package that holds libcpp-httplib (libcpp-httplib0.11)");
    }
    auto tag = reinterpret_cast<HttpTransportTag>(dlsym(handle, kHttpTransportTagSymbol));
    auto make = reinterpret_cast<HttpTransportFactory>(dlsym(handle, kHttpTransportFactory));
    if (tag == nullptr || make == nullptr || std::string(tag()) != http_transport_tag())
      throw Error(ExitCode::kFailed,
                  fmt::format("serve: {} is not this build's HTTP module (it is {}; this is {})",
                              path.string(), tag != nullptr ? tag() : "not a stepwise module",
                              http_transport_tag()),
                  "install stepwise-http.so from the same build as the binary");
    // The module stays loaded for the life of the process: its code runs on serve's threads.
    std::unique_ptr<HttpTransport> transport(make());
    if (!transport)
      throw Error(ExitCode::kFailed,
                  fmt::format("serve: {} could not make a server", path.string()));
    return transport;
  }
  throw Error(
      ExitCode::kFailed,
      fmt::format("serve: its HTTP module {} is missing (looked in {})", kModuleName, looked),
      "stepwise-http.so ships beside the binary or in lib/stepwise/ of its install prefix");
}

}  // namespace stepwise::serve
