#pragma once
// Fleets: one run over many databases or tenant schemas. The pure part: reading a targets
// file, sharding, the tenant-schema pattern. No database here (src/cli/fleet.cpp runs them).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stepwise {

// One database of a fleet: `name` is what results print and what sharding hashes (never a
// password: for a bare connection string it is the string with its password masked).
struct FleetTarget {
  std::string name;
  std::string url;  // a connection URL, key=value string, or "service=NAME"
};

// A --targets file: either a JSON array of {"name": ..., "url": ...} objects (the name may be
// left out), or one target per line: a connection URL, a key=value connection string, or a
// libpq service name (a word without '=' or "://"); blank lines and lines starting with '#' are
// skipped. Names must be unique. Throws UsageError naming `file` (and the line) on bad input;
// the message never repeats a connection string, only its masked form.
[[nodiscard]] std::vector<FleetTarget> parse_targets(std::string_view file, std::string_view text);

// --shard I/N: this run takes the targets whose name hashes to I modulo N.
struct Shard {
  std::uint32_t index = 0;
  std::uint32_t count = 1;
};
// "I/N" with 0 <= I < N <= 10000; "auto/N" takes I from `completion_index` (Kubernetes'
// JOB_COMPLETION_INDEX; UsageError when it is missing or not a number). Throws UsageError
// naming `flag`.
[[nodiscard]] Shard parse_shard(std::string_view flag, std::string_view text,
                                std::optional<std::string_view> completion_index);

// A stable 64-bit hash of a target's name (FNV-1a): the same on every machine and build.
[[nodiscard]] std::uint64_t shard_hash(std::string_view name) noexcept;
// Which shard of `count` the target `name` belongs to.
[[nodiscard]] std::uint32_t shard_of(std::string_view name, std::uint32_t count) noexcept;
// The targets (by name) of one shard, in their order.
template <typename T, typename NameOf>
[[nodiscard]] std::vector<T> select_shard(const std::vector<T>& all, const Shard& shard,
                                          NameOf name_of) {
  std::vector<T> out;
  for (const auto& t : all)
    if (shard_of(name_of(t), shard.count) == shard.index) out.push_back(t);
  return out;
}

// --tenant-schemas PATTERN, a glob ('*' any run, '?' one character, everything else literal)
// as a LIKE pattern with '\' as the escape character ('%', '_' and '\' escaped). Sent as a
// query parameter, never pasted into SQL.
[[nodiscard]] std::string glob_to_like(std::string_view glob);

}  // namespace stepwise
