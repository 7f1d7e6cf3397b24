#include "stepwise/table_name.hpp"

#include <fmt/format.h>

#include <vector>

#include "stepwise/checksum.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/text.hpp"

namespace stepwise {
namespace {
constexpr std::size_t kMaxIdentifierBytes = 63;  // NAMEDATALEN - 1

bool plain_char(char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  return !first && ((c >= '0' && c <= '9') || c == '$');
}
}  // namespace

TableName parse_table_name(std::string_view flag, std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return UsageError(fmt::format("{}: invalid table name {}: {}", flag, printable(text, 80), why),
                      "use schema.table with letters, digits and '_', e.g. public.stepwise_log");
  };
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (true) {
    std::string part;
    if (i < text.size() && text[i] == '"') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        if (text[i] == '"') {
          closed = true;
          ++i;
          break;
        }
        const char c = text[i];
        if (!plain_char(c, false) && c != '-' && c != ' ')
          throw bad(
              fmt::format("character {} is not allowed", printable(std::string_view(&text[i], 1))));
        part.push_back(c);
        ++i;
      }
      if (!closed) throw bad("unterminated quote");
    } else {
      while (i < text.size() && text[i] != '.') {
        const char c = text[i];
        if (!plain_char(c, part.empty()))
          throw bad(
              fmt::format("character {} is not allowed", printable(std::string_view(&text[i], 1))));
        part.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
        ++i;
      }
    }
    if (part.empty()) throw bad("empty name part");
    if (part.size() > kMaxIdentifierBytes) throw bad("a name part is longer than 63 bytes");
    parts.push_back(std::move(part));
    if (i == text.size()) break;
    if (text[i] != '.') throw bad("expected '.' between schema and table");
    ++i;
  }
  if (parts.size() > 2) throw bad("expected table or schema.table");
  if (parts.size() == 1) return TableName{"public", parts[0]};
  return TableName{parts[0], parts[1]};
}

namespace {
// `log` with `suffix` appended, cut so that the whole stays a valid identifier (the server
// would cut it silently, and two names could then meet).
TableName beside(const TableName& log, std::string_view suffix) {
  auto name = log.table + std::string(suffix);
  if (name.size() > kMaxIdentifierBytes)
    name = log.table.substr(0, kMaxIdentifierBytes - suffix.size()) + std::string(suffix);
  return TableName{log.schema, name};
}
}  // namespace

TableName lock_table_for(const TableName& log) {
  return beside(log, "_lock");
}

std::optional<NoopSummaryNames> noop_summary_for(const TableName& log) {
  // Never cut: a cut name could be the log's own, or another's.
  if (log.table.size() + std::string_view("_changed").size() > kMaxIdentifierBytes)
    return std::nullopt;
  return NoopSummaryNames{beside(log, "_gen"), beside(log, "_noop"), beside(log, "_changed")};
}

long long lock_key(const TableName& log) {
  return sha256_int64("stepwise:" + log.schema + "." + log.table);
}

}  // namespace stepwise
