#include "stepwise/bundle.hpp"

#include <elf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "stepwise/checksum.hpp"
#include "stepwise/errors.hpp"

namespace stepwise {
namespace {

constexpr std::string_view kMagic{"STEPWISE-BUNDLE\x01", 16};
constexpr std::size_t kTrailer = 16 + 8 + 32;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

bool read_at(int fd, void* buf, std::size_t n, off_t at) {
  auto* p = static_cast<char*>(buf);
  std::size_t got = 0;
  while (got < n) {
    const auto r = pread(fd, p + got, n - got, at + static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

std::uint64_t le64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Where the ELF image ends: its section header table is the last thing the linker writes.
// 0 when this is not a 64-bit ELF file we can read.
std::uint64_t elf_end(int fd) {
  Elf64_Ehdr h{};
  if (!read_at(fd, &h, sizeof h, 0) || std::memcmp(h.e_ident, ELFMAG, SELFMAG) != 0 ||
      h.e_ident[EI_CLASS] != ELFCLASS64)
    return 0;
  return h.e_shoff + static_cast<std::uint64_t>(h.e_shentsize) * h.e_shnum;
}

[[noreturn]] void corrupted(const std::string& path, const std::string& why) {
  throw SourceError(fmt::format("{}: the bundled migration set is damaged: {}", path, why),
                    "rebuild the binary with `stepwise bundle --source DIR -o FILE`; no other set "
                    "is used instead");
}

}  // namespace

std::optional<SourceFiles> load_bundle(const std::string& path) {
  Fd f{open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) return std::nullopt;
  struct stat st {};
  if (fstat(f.fd, &st) != 0) return std::nullopt;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const auto image = elf_end(f.fd);
  if (image == 0 || size <= image) return std::nullopt;  // nothing appended
  std::array<unsigned char, kTrailer> trailer{};
  if (size < image + kTrailer ||
      !read_at(f.fd, trailer.data(), kTrailer, static_cast<off_t>(size - kTrailer)) ||
      std::memcmp(trailer.data(), kMagic.data(), kMagic.size()) != 0)
    corrupted(path, "the payload's trailer is missing (truncated file?)");
  const auto length = le64(trailer.data() + 16);
  if (length != size - kTrailer - image)
    corrupted(path, "the payload's length does not match the file (truncated?)");
  std::string payload(length, '\0');
  if (!read_at(f.fd, payload.data(), length, static_cast<off_t>(image)))
    corrupted(path, "cannot read the payload");
  std::string want;
  for (int i = 0; i < 32; ++i)
    want += fmt::format("{:02x}", trailer[16 + 8 + static_cast<std::size_t>(i)]);
  if (sha256_hex(payload) != want) corrupted(path, "checksum mismatch");

  SourceFiles out;
  out.origin = "bundled";
  std::size_t at = 0;
  const auto take = [&](std::size_t n) {
    if (at + n > payload.size()) corrupted(path, "an entry runs past the payload");
    auto s = std::string_view(payload).substr(at, n);
    at += n;
    return s;
  };
  const auto number = [&](std::size_t n) {  // little-endian, n bytes
    const auto s = take(n);
    std::uint64_t v = 0;
    for (std::size_t i = n; i-- > 0;) v = (v << 8) | static_cast<unsigned char>(s[i]);
    return static_cast<std::size_t>(v);
  };
  while (at < payload.size()) {
    const std::string name(take(number(4)));
    std::string bytes(take(number(8)));
    if (name == kReleasesFile)
      out.releases_json = std::move(bytes);
    else if (name.starts_with(std::string(kExpectedDir) + "/"))
      out.expected[name.substr(kExpectedDir.size() + 1)] = std::move(bytes);
    else if (name.starts_with(std::string(kChecksDir) + "/"))
      out.checks[name.substr(kChecksDir.size() + 1)] = std::move(bytes);
    else if (name == kCheckAllowFile)
      out.check_allow = std::move(bytes);
    else
      out.files.push_back({name, std::move(bytes), "", 0});
  }
  return out;
}

void write_bundle(const std::string& exe, const SourceFiles& files, const std::string& out_path) {
  Fd f{open(exe.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0)
    throw Error(ExitCode::kFailed, fmt::format("{}: cannot read: {}", exe, std::strerror(errno)));
  struct stat st {};
  fstat(f.fd, &st);
  auto image = elf_end(f.fd);
  if (image == 0 || image > static_cast<std::uint64_t>(st.st_size))
    image = static_cast<std::uint64_t>(st.st_size);
  std::string binary(image, '\0');
  if (!read_at(f.fd, binary.data(), image, 0))
    throw Error(ExitCode::kFailed, fmt::format("{}: cannot read", exe));

  std::string payload;
  const auto add = [&](const std::string& name, const std::string& bytes) {
    put_le(payload, name.size(), 4);
    payload += name;
    put_le(payload, bytes.size(), 8);
    payload += bytes;
  };
  for (const auto& m : files.files) add(m.name, m.bytes);
  if (files.releases_json) add(std::string(kReleasesFile), *files.releases_json);
  for (const auto& [name, text] : files.expected) add(std::string(kExpectedDir) + "/" + name, text);
  for (const auto& [name, text] : files.checks) add(std::string(kChecksDir) + "/" + name, text);
  if (files.check_allow) add(std::string(kCheckAllowFile), *files.check_allow);
  std::string trailer(kMagic);
  put_le(trailer, payload.size(), 8);
  const auto sum = sha256_hex(payload);
  for (std::size_t i = 0; i < 64; i += 2)
    trailer.push_back(static_cast<char>(std::stoi(sum.substr(i, 2), nullptr, 16)));

  const auto tmp = out_path + ".tmp";
  {
    std::ofstream o(tmp, std::ios::binary | std::ios::trunc);
    o << binary << payload << trailer;
    if (!o) throw Error(ExitCode::kFailed, fmt::format("{}: cannot write", out_path));
  }
  chmod(tmp.c_str(), 0755);
  if (std::rename(tmp.c_str(), out_path.c_str()) != 0)
    throw Error(ExitCode::kFailed,
                fmt::format("{}: cannot write: {}", out_path, std::strerror(errno)));
}

}  // namespace stepwise
