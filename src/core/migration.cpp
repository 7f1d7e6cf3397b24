#include "stepwise/migration.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <set>
#include <stdexcept>

#include "stepwise/checksum.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/sql_split.hpp"
#include "stepwise/text.hpp"

namespace stepwise {

std::string_view to_string(Direction d) {
  return d == Direction::kUp ? "up" : "down";
}

namespace {
constexpr std::string_view kUpSuffix = ".up.sql";
constexpr std::string_view kDownSuffix = ".down.sql";
constexpr std::string_view kExpected =
    "expected <VERSION>_<name>.up.sql or <VERSION>_<name>.down.sql";

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

std::optional<FileName> parse_file_name(std::string_view name, std::string* problem) {
  problem->clear();
  if (name.empty() || name.front() == '.' || !name.ends_with(".sql")) return std::nullopt;
  const auto fail = [&](std::string why) {
    *problem = fmt::format("{}: {}", display_name(name), why);
    return std::nullopt;
  };
  Direction direction;
  std::string_view stem;
  if (name.ends_with(kUpSuffix)) {
    direction = Direction::kUp;
    stem = name.substr(0, name.size() - kUpSuffix.size());
  } else if (name.ends_with(kDownSuffix)) {
    direction = Direction::kDown;
    stem = name.substr(0, name.size() - kDownSuffix.size());
  } else {
    return fail(fmt::format("not a migration file name: {}", kExpected));
  }
  std::size_t digits = 0;
  while (digits < stem.size() && is_digit(stem[digits])) ++digits;
  if (digits == 0)
    return fail(fmt::format("name does not start with a version number: {}", kExpected));
  if (digits == stem.size() || stem[digits] != '_')
    return fail(fmt::format("missing '_' after the version: {}", kExpected));
  const auto slug = stem.substr(digits + 1);
  if (slug.empty())
    return fail(fmt::format("empty migration name after the version: {}", kExpected));
  for (char ch : slug) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || ch == '/' || ch == '\\')
      return fail("the migration name holds a control character or a path separator");
  }
  if (!is_valid_utf8(slug)) return fail("the migration name is not valid UTF-8");
  auto version = Version::parse(stem.substr(0, digits));  // any length; leading zeros ignored
  if (!version || version->is_zero()) return fail("version must be a positive integer, not 0");
  return FileName{std::move(*version), std::string(slug), direction};
}

Directives parse_directives(std::string_view file, std::string_view sql, std::string* problem) {
  problem->clear();
  Directives out;
  if (sql.starts_with("\xEF\xBB\xBF")) sql.remove_prefix(3);  // UTF-8 byte order mark
  for (auto line : split_lines(sql)) {
    line = trim(line);
    if (line.empty()) continue;
    if (!line.starts_with("--")) break;  // directives live only in the leading comment lines
    auto body = trim(line.substr(2));
    constexpr std::string_view kPrefix = "stepwise:";
    if (to_lower_ascii(body.substr(0, kPrefix.size())) != kPrefix) continue;
    const auto directive = to_lower_ascii(trim(body.substr(kPrefix.size())));
    if (directive == "no-transaction") {
      out.tx = TxMode::kNoTransaction;
    } else if (directive == "not-resumable") {
      out.resumable = false;
    } else if (directive == "allow" || directive.starts_with("allow ")) {
      // A lint suppression for the statement that follows (`stepwise check` validates it).
    } else {
      *problem = fmt::format("{}: unknown directive {} (known: no-transaction, not-resumable)",
                             display_name(file), printable(directive, 40));
    }
  }
  return out;
}

const Migration* MigrationSet::find(const Version& v) const {
  const auto& all = built();
  auto it = std::lower_bound(all.begin(), all.end(), v,
                             [](const Migration& m, const Version& x) { return m.version < x; });
  return it != all.end() && it->version == v ? &*it : nullptr;
}

MigrationSet MigrationSet::deferred(std::size_t size, Version latest, std::string log_digest,
                                    std::function<std::vector<Migration>()> build) {
  MigrationSet set;
  set.log_digest_ = std::move(log_digest);
  set.deferred_ = std::make_shared<Deferred>();
  set.deferred_->size = size;
  set.deferred_->latest = std::move(latest);
  set.deferred_->build = std::move(build);
  return set;
}

const std::vector<Migration>& MigrationSet::built() const {
  if (!deferred_) return migrations_;
  std::call_once(deferred_->once, [d = deferred_.get()] {
    d->migrations = d->build();
    if (d->migrations.size() != d->size ||
        (!d->migrations.empty() && !(d->migrations.back().version == d->latest)))
      throw std::logic_error("a deferred migration set built other migrations than it described");
  });
  return deferred_->migrations;
}

MigrationSet::MigrationSet(std::vector<Migration> sorted, std::shared_ptr<const void> storage,
                           std::string log_digest)
    : migrations_(std::move(sorted)),
      storage_(std::move(storage)),
      log_digest_(std::move(log_digest)) {}

std::string log_digest_of(std::span<const Migration> sorted) {
  // In byte order of the version digits, as the server sorts them in the "C" collation
  // ("10" before "9"): the server then needs one sort only.
  std::vector<const Migration*> order;
  order.reserve(sorted.size());
  for (const auto& m : sorted) order.push_back(&m);
  std::sort(order.begin(), order.end(), [](const Migration* a, const Migration* b) {
    return a->version.to_string() < b->version.to_string();
  });
  std::string text;
  text.reserve(sorted.size() * 82);
  for (const auto* m : order) {
    if (!text.empty()) text += ',';
    text += m->version.to_string();
    text += ' ';
    text += m->up.checksum;
  }
  return sha256_hex(text);
}

std::string MigrationSet::digest() const {
  std::string all;
  for (const auto& m : built()) {
    all += fmt::format("{}\t{}\n", m.up.file, m.up.checksum);
    if (m.down) all += fmt::format("{}\t{}\n", m.down->file, m.down->checksum);
  }
  return sha256_hex(all).substr(0, 12);
}

namespace {
// Checks one file's bytes; returns a problem line or empty.
std::string check_bytes(const MigrationFile& f) {
  const auto size = std::max(f.size, f.bytes.size());
  if (size > kMaxMigrationBytes)
    return fmt::format("{}: file is {} bytes, larger than the limit of {} bytes",
                       display_name(f.name), size, kMaxMigrationBytes);
  if (f.bytes.find('\0') != std::string::npos)
    return fmt::format("{}: file holds a NUL byte", display_name(f.name));
  if (!is_valid_utf8(f.bytes))
    return fmt::format("{}: file is not valid UTF-8", display_name(f.name));
  // An empty, white-space-only or comment-only file is a valid step that changes nothing.
  return {};
}

// "BEGIN", "START TRANSACTION", "ROLLBACK TO", "COMMIT PREPARED": how a statement opens.
std::string control_words(std::string_view statement) {
  const auto w = leading_keywords(statement, 2);
  if (w.empty()) return "transaction control";
  if (w.size() == 2 && (w[1] == "TRANSACTION" || w[1] == "PREPARED" || w[1] == "TO"))
    return w[0] + " " + w[1];
  return w[0];
}

// A transactional file runs inside stepwise's own transaction. A file wrapped in BEGIN ... COMMIT
// (common in other tools' histories) has the wrapper blanked out, keeping every line number;
// transaction control anywhere else would commit half a step, so it is refused.
// sql null: only checks (the planning view keeps the file's text as it is).
void unwrap_transaction(std::string_view file, std::string* sql,
                        const std::vector<Statement>& statements, std::string* problem) {
  std::vector<std::size_t> control;
  for (std::size_t i = 0; i < statements.size(); ++i)
    if (is_transaction_control(statements[i].text)) control.push_back(i);
  if (control.empty()) return;
  const auto opens = [&](std::size_t i) {
    const auto w = leading_keywords(statements[i].text, 1);
    return !w.empty() && (w[0] == "BEGIN" || w[0] == "START");
  };
  const auto closes = [&](std::size_t i) {
    const auto w = leading_keywords(statements[i].text, 1);
    return !w.empty() && (w[0] == "COMMIT" || w[0] == "END");
  };
  if (control.size() == 2 && control[0] == 0 && control[1] == statements.size() - 1 && opens(0) &&
      closes(statements.size() - 1)) {
    if (sql == nullptr) return;
    for (auto i : control) {
      const auto& st = statements[i];
      const auto at = static_cast<std::size_t>(st.text.data() - sql->data());
      for (std::size_t k = at; k < at + st.text.size(); ++k)
        if ((*sql)[k] != '\n') (*sql)[k] = ' ';
    }
    return;
  }
  const auto& bad = statements[control[0]];
  *problem = fmt::format(
      "{}:{}: {} inside a transactional migration would commit part of the step; remove it, "
      "split the file, or mark the file -- stepwise:no-transaction",
      display_name(file), bad.token_line, control_words(bad.text));
}

// A no-transaction file runs statement by statement, each in its own implicit transaction, and
// stepwise records its progress between them: a transaction the file opens itself would hold
// those records (and its own statements) uncommitted, so any transaction control is refused.
std::string no_transaction_problem(std::string_view file,
                                   const std::vector<Statement>& statements) {
  for (const auto& st : statements) {
    if (transaction_control(st.text) == TxControl::kNone) continue;
    return fmt::format(
        "{}:{}: {} in a -- stepwise:no-transaction file: each statement of such a file runs in its "
        "own implicit transaction and stepwise records progress between statements, so it cannot "
        "run inside a transaction the file controls; remove it, or drop the directive to run the "
        "whole file in one transaction",
        display_name(file), st.token_line, control_words(st.text));
  }
  return {};
}

// The lexer pass over `text` and the transaction-control rules of its mode; a problem line or
// empty. unwrapped non-null: a BEGIN ... COMMIT wrapper is blanked there (text is its view).
std::string script_problem(std::string_view file, std::string_view text, TxMode tx,
                           std::string* unwrapped) {
  const auto parsed = parse_script(text);
  if (parsed.problem)
    return fmt::format("{}:{}: {}", display_name(file), parsed.problem->line,
                       parsed.problem->message);
  if (tx == TxMode::kNoTransaction) return no_transaction_problem(file, parsed.statements);
  std::string problem;
  unwrap_transaction(file, unwrapped, parsed.statements, &problem);
  return problem;
}

std::string_view without_bom(std::string_view bytes) {
  if (bytes.starts_with("\xEF\xBB\xBF")) bytes.remove_prefix(3);  // the server rejects a BOM
  return bytes;
}

// Directives, the lexer pass and transaction control over `text`: f's bytes without a BOM, or
// unwrapped's copy of them, where a BEGIN ... COMMIT wrapper is then blanked.
FileCheck check_text(const MigrationFile& f, std::string_view text, std::string* unwrapped) {
  FileCheck out;
  std::string problem;
  const auto directives = parse_directives(f.name, f.bytes, &problem);
  out.tx = directives.tx;
  out.resumable = directives.resumable;
  if (!problem.empty()) out.problems.push_back(std::move(problem));
  if (auto bad = script_problem(f.name, text, out.tx, unwrapped); !bad.empty())
    out.problems.push_back(std::move(bad));
  return out;
}

// The files of one version: normally one up and at most one down. Kept without a vector each,
// so a set of thousands allocates little; the rest only for the duplicate message.
struct Pair {
  const MigrationFile* up = nullptr;
  const MigrationFile* down = nullptr;
  std::string up_slug, down_slug;
  std::vector<const MigrationFile*> more_ups, more_downs;  // duplicates
};

// full: texts copied into storage the set owns, a BEGIN ... COMMIT wrapper blanked. Otherwise
// the planning view (see build_planning_set): the same checks, texts viewed in `files`.
MigrationSet build_set(std::span<const MigrationFile> files, bool full) {
  auto storage = std::make_shared<std::deque<std::string>>();
  // Deque elements never move, so views into them (small strings included) stay valid.
  const auto keep = [&](std::string s) -> std::string_view {
    return storage->emplace_back(std::move(s));
  };
  std::vector<std::string> problems;
  std::map<Version, Pair> by_version;
  std::set<Version> unreadable;  // versions with a bad file: no pairing errors on top
  for (const auto& f : files) {
    std::string problem;
    auto parsed = parse_file_name(f.name, &problem);
    if (!problem.empty()) {
      problems.push_back(std::move(problem));
      continue;
    }
    if (!parsed) continue;  // not a migration file
    if (f.unread && full)
      throw std::logic_error("build_migration_set: " + f.name + " was listed but not read");
    auto bad = f.unread ? std::string() : f.checked ? f.checked->bytes_problem : check_bytes(f);
    if (!bad.empty()) {
      problems.push_back(std::move(bad));
      unreadable.insert(parsed->version);
      continue;
    }
    auto& pair = by_version[std::move(parsed->version)];
    const bool up = parsed->direction == Direction::kUp;
    auto& first = up ? pair.up : pair.down;
    if (first != nullptr) {
      (up ? pair.more_ups : pair.more_downs).push_back(&f);
      continue;
    }
    first = &f;
    (up ? pair.up_slug : pair.down_slug) = std::move(parsed->slug);
  }

  std::vector<Migration> out;
  out.reserve(by_version.size());
  for (auto& [version, pair] : by_version) {
    // A lambda may not name a structured binding in every compiler this builds with (clang 14).
    const auto duplicate = [&problems, &v = version](
                               const MigrationFile* first,
                               const std::vector<const MigrationFile*>& more) {
      std::vector<std::string> names{display_name(first->name)};
      for (auto* f : more) names.push_back(display_name(f->name));
      std::sort(names.begin(), names.end());
      problems.push_back(fmt::format("{}: duplicate version {} (files: {})",
                                     display_name(more[0]->name), v, fmt::join(names, ", ")));
    };
    if (!pair.more_ups.empty()) {
      duplicate(pair.up, pair.more_ups);
      continue;
    }
    if (!pair.more_downs.empty()) {
      duplicate(pair.down, pair.more_downs);
      continue;
    }
    if (pair.up == nullptr) {
      if (unreadable.count(version)) continue;
      const auto& down = pair.down->name;
      const auto up = down.substr(0, down.size() - kDownSuffix.size()) + std::string(kUpSuffix);
      problems.push_back(fmt::format("{}: down file without its up file ({})", display_name(down),
                                     display_name(up)));
      continue;
    }
    if (pair.down != nullptr && pair.down_slug != pair.up_slug) {
      problems.push_back(fmt::format("{}: down file does not match its up file {}",
                                     display_name(pair.down->name), display_name(pair.up->name)));
      continue;
    }
    const auto make_script = [&](const MigrationFile& f) {
      Script s;
      s.file = full ? keep(f.name) : std::string_view(f.name);
      if (f.unread) return s;  // the planning view of a down file: its name, nothing more
      const std::string_view bytes = without_bom(f.bytes);
      s.checksum = f.checksum.empty() ? keep(sha256_hex(f.bytes))
                   : full             ? keep(f.checksum)
                                      : std::string_view(f.checksum);
      // The planning view checks the text where it lies, or takes what the loader found; the
      // full set runs a copy it may unwrap. Every file is read through to its end first.
      std::string sql;
      if (full) sql.assign(bytes);
      std::optional<FileCheck> own;
      const auto& check = !full && f.checked
                              ? *f.checked
                              : own.emplace(check_text(f, full ? std::string_view(sql) : bytes,
                                                       full ? &sql : nullptr));
      s.tx = check.tx;
      s.resumable = check.resumable;
      problems.insert(problems.end(), check.problems.begin(), check.problems.end());
      s.sql = full ? keep(std::move(sql)) : bytes;
      return s;
    };
    Migration m;
    m.version = version;
    m.up = make_script(*pair.up);
    // The slug is part of the up file's name: "<digits>_<slug>.up.sql".
    const auto& slug = pair.up_slug;
    m.name = m.up.file.substr(m.up.file.size() - kUpSuffix.size() - slug.size(), slug.size());
    if (pair.down != nullptr) m.down = make_script(*pair.down);
    out.push_back(std::move(m));
  }
  if (!problems.empty()) {
    std::sort(problems.begin(), problems.end());
    throw SourceError(fmt::format("{}", fmt::join(problems, "\n")));
  }
  return MigrationSet(std::move(out), std::move(storage));
}
}  // namespace

FileCheck check_file_text(const MigrationFile& f) {
  if (auto bad = check_bytes(f); !bad.empty()) {
    FileCheck out;
    out.bytes_problem = std::move(bad);
    return out;
  }
  return check_text(f, without_bom(f.bytes), nullptr);
}

MigrationSet build_migration_set(std::span<const MigrationFile> files) {
  return build_set(files, true);
}

MigrationSet build_planning_set(std::span<const MigrationFile> files) {
  return build_set(files, false);
}

namespace {
std::vector<Migration> migrations_from(std::span<const EmbeddedMigration> entries) {
  std::vector<Migration> out;
  out.reserve(entries.size());
  const auto script = [](const EmbeddedScript& e) {
    return Script{e.file, e.sql, e.checksum, e.tx, e.resumable};
  };
  for (const auto& e : entries) {
    Migration& m = out.emplace_back();
    m.version = Version::from_digits(e.version);
    m.name = e.name;
    m.up = script(e.up);
    if (e.has_down) m.down = script(e.down);
  }
  return out;
}
}  // namespace

MigrationSet migration_set_from(std::span<const EmbeddedMigration> entries,
                                std::string log_digest) {
  return MigrationSet(migrations_from(entries), {}, std::move(log_digest));
}

MigrationSet deferred_migration_set_from(std::size_t count, std::string_view latest_digits,
                                         std::string log_digest,
                                         std::function<std::vector<EmbeddedMigration>()> entries) {
  return MigrationSet::deferred(
      count, count == 0 ? Version() : Version::from_digits(latest_digits), std::move(log_digest),
      [entries = std::move(entries)] { return migrations_from(entries()); });
}

}  // namespace stepwise
