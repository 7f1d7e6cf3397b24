#include "stepwise/fleet.hpp"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

#include "stepwise/errors.hpp"
#include "stepwise/redact.hpp"
#include "stepwise/text.hpp"

namespace stepwise {
namespace {

std::string_view strip(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool is_service_name(std::string_view s) {
  if (s.find("://") != std::string_view::npos || s.find('=') != std::string_view::npos)
    return false;
  for (const char c : s)
    if (c == ' ' || c == '\t' || c == '\'' || c == '"' || c == '\\') return false;
  return true;
}

std::optional<std::uint32_t> number(std::string_view s) {
  std::uint32_t v = 0;
  if (s.empty()) return std::nullopt;
  const auto* end = s.data() + s.size();
  const auto [p, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || p != end) return std::nullopt;
  return v;
}

void check_unique(std::string_view file, const std::vector<FleetTarget>& targets) {
  std::set<std::string> seen;
  for (const auto& t : targets)
    if (!seen.insert(t.name).second)
      throw UsageError(
          fmt::format("--targets {}: target {} is listed twice", file, printable(t.name, 80)),
          "each database once; give JSON entries distinct \"name\"s");
}

std::vector<FleetTarget> parse_json(std::string_view file, std::string_view text) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // The parser's message quotes no input beyond a byte position.
    throw UsageError(
        fmt::format("--targets {}: not valid JSON: {}", file, one_line(e.what(), 200)));
  }
  if (!doc.is_array())
    throw UsageError(
        fmt::format("--targets {}: expected a JSON array of {{\"name\", \"url\"}} objects", file));
  std::vector<FleetTarget> out;
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const auto& e = doc[i];
    const auto where = fmt::format("--targets {}: entry {}", file, i + 1);
    if (!e.is_object() || !e.contains("url") || !e["url"].is_string() ||
        e["url"].get<std::string>().empty())
      throw UsageError(where + ": expected an object with a non-empty string \"url\"");
    FleetTarget t;
    t.url = e["url"].get<std::string>();
    if (e.contains("name")) {
      if (!e["name"].is_string() || e["name"].get<std::string>().empty())
        throw UsageError(where + ": \"name\" must be a non-empty string");
      t.name = e["name"].get<std::string>();
    } else {
      t.name = redact(t.url);
    }
    if (t.name.find('\n') != std::string::npos)
      throw UsageError(where + ": \"name\" must be one line");
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

std::vector<FleetTarget> parse_targets(std::string_view file, std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  std::vector<FleetTarget> out;
  if (first != std::string_view::npos && (text[first] == '[' || text[first] == '{')) {
    out = parse_json(file, text);
  } else {
    std::size_t start = 0, line_no = 0;
    while (start < text.size()) {
      auto nl = text.find('\n', start);
      if (nl == std::string_view::npos) nl = text.size();
      ++line_no;
      const auto line = strip(text.substr(start, nl - start));
      start = nl + 1;
      if (line.empty() || line.front() == '#') continue;
      if (!is_valid_utf8(line))
        throw UsageError(fmt::format("--targets {}: line {}: not valid UTF-8", file, line_no));
      FleetTarget t;
      if (is_service_name(line)) {
        t.name = std::string(line);
        t.url = "service=" + std::string(line);
      } else {
        t.url = std::string(line);
        t.name = redact(line);
      }
      out.push_back(std::move(t));
    }
  }
  if (out.empty())
    throw UsageError(fmt::format("--targets {}: no targets in the file", file),
                     "one connection string or service name per line, or a JSON array");
  check_unique(file, out);
  return out;
}

Shard parse_shard(std::string_view flag, std::string_view text,
                  std::optional<std::string_view> completion_index) {
  const auto bad = [&](std::string_view why) {
    return UsageError(fmt::format("{}: invalid value {} ({})", flag, printable(text, 40), why));
  };
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) throw bad("expected I/N, e.g. 0/4, or auto/N");
  const auto count = number(text.substr(slash + 1));
  if (!count || *count == 0 || *count > 10000) throw bad("N must be 1 to 10000");
  std::optional<std::uint32_t> index;
  const auto i_text = text.substr(0, slash);
  if (i_text == "auto") {
    if (!completion_index || completion_index->empty())
      throw bad("auto takes the index from JOB_COMPLETION_INDEX, which is not set");
    index = number(*completion_index);
    if (!index)
      throw bad(fmt::format("JOB_COMPLETION_INDEX is {}, not a number",
                            printable(*completion_index, 20)));
  } else {
    index = number(i_text);
    if (!index) throw bad("I must be a number, or auto");
  }
  if (*index >= *count)
    throw bad(fmt::format("index {} is not below the count {}", *index, *count));
  return Shard{*index, *count};
}

std::uint64_t shard_hash(std::string_view name) noexcept {
  std::uint64_t h = 14695981039346656037ULL;
  for (const char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

std::uint32_t shard_of(std::string_view name, std::uint32_t count) noexcept {
  if (count <= 1) return 0;
  return static_cast<std::uint32_t>(shard_hash(name) % count);
}

std::string glob_to_like(std::string_view glob) {
  std::string out;
  for (const char c : glob) {
    if (c == '*')
      out += '%';
    else if (c == '?')
      out += '_';
    else if (c == '%' || c == '_' || c == '\\')
      out += '\\', out += c;
    else
      out += c;
  }
  return out;
}

}  // namespace stepwise
