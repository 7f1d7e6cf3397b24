#pragma once
// A migration set appended to a copy of the stepwise executable (`stepwise bundle`): no
// compiler needed on the user's side. Layout: <executable> <payload> <trailer>, where the
// trailer is the magic "STEPWISE-BUNDLE\x01", the payload length (8 bytes, little-endian) and
// the payload's SHA-256 (32 bytes); the payload is a list of {u32 name length, name,
// u64 size, bytes} entries.
#include <optional>
#include <string>

#include "stepwise/source.hpp"

namespace stepwise {

// Reads the set bundled into the executable at `path` (normally /proc/self/exe). nullopt when
// nothing is appended. A payload that is corrupted or truncated (bytes past the end of the ELF
// image without a valid trailer) throws SourceError: never a silent fallback to another set.
[[nodiscard]] std::optional<SourceFiles> load_bundle(const std::string& path);

// Writes `out`: the executable at `exe` (without any payload it already carries) followed by
// `files` as a payload. Throws Error naming the file on I/O failure.
void write_bundle(const std::string& exe, const SourceFiles& files, const std::string& out);

}  // namespace stepwise
