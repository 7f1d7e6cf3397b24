// `stepwise import`: other tools' folder layouts -> stepwise's. Pure.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <set>

#include "stepwise/adopt.hpp"
#include "stepwise/errors.hpp"
#include "stepwise/text.hpp"

namespace stepwise {
namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// "<version>_<name>.sql" (dbmate, goose, node-pg-migrate): whether the name starts with digits
// and an underscore; else a problem naming the file and the layout the tool expects.
bool versioned_name(std::string_view n, std::string_view tool, std::string_view layout,
                    std::vector<std::string>& problems) {
  const auto us = n.find('_');
  if (all_digits(n.substr(0, us == std::string_view::npos ? 0 : us))) return true;
  problems.push_back(
      fmt::format("{}: not a {} migration name ({})", printable(n, 200), tool, layout));
  return false;
}

bool is_code(std::string_view name) {
  for (const auto ext : {".go", ".java", ".class", ".js", ".cjs", ".mjs", ".ts", ".py", ".rb"})
    if (name.ends_with(ext)) return true;
  return false;
}

// The dbmate file's section after `marker` up to the next `-- migrate:` line; the marker
// line's options (e.g. "transaction:false") in *options.
std::optional<std::string> section(std::string_view text, std::string_view marker,
                                   std::string* options) {
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto nl = text.find('\n', pos);
    const auto line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    if (line.starts_with(marker) && (line.size() == marker.size() || line[marker.size()] == ' ' ||
                                     line[marker.size()] == '\r')) {
      *options = std::string(trim(line.substr(marker.size())));
      const auto body_start = nl == std::string_view::npos ? text.size() : nl + 1;
      auto end = body_start;
      while (end < text.size()) {
        if (text.substr(end).starts_with("-- migrate:")) break;
        const auto next = text.find('\n', end);
        end = next == std::string_view::npos ? text.size() : next + 1;
      }
      return std::string(text.substr(body_start, end - body_start));
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return std::nullopt;
}

// A goose SQL file split at its annotations (`-- +goose up` ...: case-insensitive, on their own
// line). StatementBegin/End only tell goose's splitter what stepwise's splitter knows anyway
// (dollar quotes, BEGIN ATOMIC bodies): their lines are dropped.
struct GooseFile {
  std::string up, down;
  bool seen_up = false;
  bool no_transaction = false;
};

std::optional<GooseFile> split_goose(std::string_view name, std::string_view text,
                                     std::vector<std::string>& problems) {
  GooseFile g;
  std::string* into = nullptr;
  for (const auto line : split_lines_keeping_ends(text)) {
    const auto bare = trim(line);
    if (bare.size() > 9 && line.starts_with("--") && (line[2] == ' ' || line[2] == '\t') &&
        trim(line.substr(2)).starts_with("+goose ")) {
      const auto annotation = to_lower_ascii(trim(trim(line.substr(2)).substr(7)));
      if (annotation == "up") {
        into = &g.up;
        g.seen_up = true;
      } else if (annotation == "down") {
        into = &g.down;
      } else if (annotation == "no transaction") {
        g.no_transaction = true;
      } else if (annotation == "envsub on") {
        problems.push_back(fmt::format(
            "{}: `-- +goose envsub on` substitutes environment variables; stepwise runs the SQL "
            "as written (put the values into the file)",
            printable(name, 200)));
        return std::nullopt;
      } else if (annotation != "statementbegin" && annotation != "statementend" &&
                 annotation != "envsub off") {
        problems.push_back(fmt::format("{}: unknown goose annotation {}", printable(name, 200),
                                       printable(annotation, 60)));
        return std::nullopt;
      }
      continue;
    }
    if (into != nullptr) {
      *into += line;
    } else if (!bare.empty() && !bare.starts_with("--")) {
      problems.push_back(fmt::format("{}: SQL before `-- +goose up`; goose would refuse it too",
                                     printable(name, 200)));
      return std::nullopt;
    }
  }
  if (!g.seen_up) {
    problems.push_back(fmt::format("{}: no `-- +goose up` line", printable(name, 200)));
    return std::nullopt;
  }
  return g;
}

// node-pg-migrate's SQL migration markers: a line `-- Up Migration` / `-- Down Migration`
// (its loader: /^\s*--[\s-]*up\s+migration/im).
bool is_npm_marker(std::string_view line, std::string_view direction) {
  auto rest = trim(line);
  if (!rest.starts_with("--")) return false;
  rest.remove_prefix(2);
  while (!rest.empty() &&
         (rest.front() == '-' || std::isspace(static_cast<unsigned char>(rest.front()))))
    rest.remove_prefix(1);
  const auto lowered = to_lower_ascii(rest);
  const std::string_view word(lowered);
  if (!word.starts_with(direction) || word.size() == direction.size() ||
      !std::isspace(static_cast<unsigned char>(word[direction.size()])))
    return false;
  return trim(word.substr(direction.size())).starts_with("migration");
}

MigrationFile out_file(std::string name, std::string bytes) {
  MigrationFile f;
  f.name = std::move(name);
  f.bytes = std::move(bytes);
  return f;
}

// A sqitch deploy or revert script without the BEGIN; / COMMIT; pair sqitch's templates put
// around it: stepwise runs a transactional file in its own transaction.
std::string without_sqitch_transaction(std::string_view text) {
  const auto lines = split_lines_keeping_ends(text);
  const auto code = [](std::string_view line) {
    const auto t = trim(line);
    return !t.empty() && !t.starts_with("--");
  };
  std::size_t first = 0, last = lines.size();
  while (first < lines.size() && !code(lines[first])) ++first;
  while (last > 0 && !code(lines[last - 1])) --last;
  if (first + 1 >= last || to_lower_ascii(trim(lines[first])) != "begin;" ||
      to_lower_ascii(trim(lines[last - 1])) != "commit;")
    return std::string(text);
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i)
    if (i != first && i != last - 1) out += lines[i];
  return out;
}

// sqitch: the plan orders the changes; deploy/<change>.sql and revert/<change>.sql become
// <position>_<change>.up.sql / .down.sql (adopt then maps sqitch's changes by name).
std::vector<MigrationFile> import_sqitch(const std::vector<MigrationFile>& files,
                                         std::vector<std::string>* skipped) {
  std::map<std::string, const MigrationFile*> by_name;
  for (const auto& f : files) by_name[f.name] = &f;
  const auto plan = by_name.find("sqitch.plan");
  if (plan == by_name.end())
    throw SourceError("sqitch.plan: not found; a sqitch project's folder holds it",
                      "give the folder that has sqitch.plan, deploy/ and revert/");
  std::vector<std::string> changes, problems;
  std::set<std::string> seen;
  int line_no = 0;
  for (const auto raw : split_lines(plan->second->bytes)) {
    const auto line = trim(raw);
    ++line_no;
    if (line.empty() || line.starts_with("%") || line.starts_with("#") || line.starts_with("@"))
      continue;
    auto name = std::string(line.substr(0, line.find_first_of(" \t[")));
    if (!name.empty() && name.front() == '-') {  // "-change": a change reverted in the plan
      problems.push_back(
          fmt::format("sqitch.plan:{}: {} is reverted in the plan; stepwise's set "
                      "only moves forward (remove both lines)",
                      line_no, printable(name, 80)));
      continue;
    }
    if (!name.empty() && name.front() == '+') name.erase(0, 1);
    if (!seen.insert(name).second) {
      problems.push_back(fmt::format(
          "sqitch.plan:{}: {} is reworked (a second entry); import the project before the rework "
          "or give the reworked change a new name",
          line_no, printable(name, 80)));
      continue;
    }
    changes.push_back(name);
  }
  std::vector<MigrationFile> out;
  const auto width =
      std::to_string(changes.size()).size() < 4 ? 4 : std::to_string(changes.size()).size();
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const auto& c = changes[i];
    const auto deploy = by_name.find("deploy/" + c + ".sql");
    if (deploy == by_name.end()) {
      problems.push_back(fmt::format("{}: not found (named in sqitch.plan)",
                                     printable("deploy/" + c + ".sql", 200)));
      continue;
    }
    const auto stem = fmt::format("{:0{}}_{}", i + 1, width, c);
    out.push_back(out_file(stem + ".up.sql", without_sqitch_transaction(deploy->second->bytes)));
    if (const auto revert = by_name.find("revert/" + c + ".sql"); revert != by_name.end())
      out.push_back(
          out_file(stem + ".down.sql", without_sqitch_transaction(revert->second->bytes)));
  }
  for (const auto& f : files)
    if (f.name != "sqitch.plan" && !f.name.starts_with("deploy/") &&
        !f.name.starts_with("revert/") && skipped != nullptr)
      skipped->push_back(f.name);
  if (!problems.empty()) {
    std::string msg;
    for (const auto& p : problems) msg += (msg.empty() ? "" : "\n") + p;
    throw SourceError(msg, "fix sqitch.plan or the scripts, then import again");
  }
  return out;
}

// graphile-migrate's committed migration (migrations/committed/000001[-slug].sql): `--! Key:
// value` header lines up to a blank line (Previous, Hash, Message, AllowInvalidHash), then the
// body graphile-migrate runs (trimmed). `--! no-transaction` on the body's first line runs it
// outside a transaction. Placeholders (:DATABASE_NAME, :DATABASE_OWNER, the .gmrc's own) are
// substituted by graphile-migrate and cannot be by stepwise: the built-in ones refuse.
std::optional<MigrationFile> import_graphile(std::string_view n, std::string_view text,
                                             std::vector<std::string>& problems) {
  const auto dash = n.find('-');
  const auto number = n.substr(0, std::min(dash, n.size() - 4));
  if (!all_digits(number) ||
      (dash != std::string_view::npos &&
       n.substr(dash + 1, n.size() - 4 - dash - 1)
               .find_first_not_of(
                   "-_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") !=
           std::string_view::npos)) {
    problems.push_back(fmt::format(
        "{}: not a graphile-migrate committed migration name (000001.sql or 000001-message.sql)",
        printable(n, 200)));
    return std::nullopt;
  }
  const auto lines = split_lines_keeping_ends(text);
  std::size_t i = 0;
  std::string message;
  bool hash = false;
  for (; i < lines.size(); ++i) {
    const auto line = trim(lines[i]);
    if (!line.starts_with("--! ") || line.size() < 5 ||
        !std::isupper(static_cast<unsigned char>(line[4])))
      break;
    const auto header = line.substr(4);
    if (header.starts_with("Message:")) message = std::string(trim(header.substr(8)));
    if (header.starts_with("Hash:")) hash = true;
  }
  if (!hash) {
    problems.push_back(fmt::format(
        "{}: no `--! Hash:` header; not a committed graphile-migrate migration (current.sql is "
        "not imported: commit it first)",
        printable(n, 200)));
    return std::nullopt;
  }
  std::string body;
  for (std::size_t j = i; j < lines.size(); ++j) body += lines[j];
  const auto trimmed = std::string(trim(body)) + "\n";
  for (const auto placeholder : {":DATABASE_NAME", ":DATABASE_OWNER"}) {
    for (auto at = trimmed.find(placeholder); at != std::string::npos;
         at = trimmed.find(placeholder, at + 1)) {
      const auto end = at + std::string_view(placeholder).size();
      if (end < trimmed.size() &&
          (std::isalnum(static_cast<unsigned char>(trimmed[end])) || trimmed[end] == '_'))
        continue;
      problems.push_back(fmt::format(
          "{}: uses the placeholder {}, which graphile-migrate substitutes; stepwise runs the SQL "
          "as written (put the value into the file)",
          printable(n, 200), placeholder));
      return std::nullopt;
    }
  }
  std::string out = trimmed;
  const auto first_line = std::string_view(out).substr(0, out.find('\n'));
  if (first_line.starts_with("--!") && trim(first_line.substr(3)).starts_with("no-transaction"))
    out = "-- stepwise:no-transaction\n" + out.substr(first_line.size() + 1);
  std::string name;
  if (dash != std::string_view::npos) {
    name = std::string(n.substr(dash + 1, n.size() - 4 - dash - 1));
  } else {
    for (const char c : message)
      name += std::isalnum(static_cast<unsigned char>(c))
                  ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
                  : '_';
    while (name.find("__") != std::string::npos) name.erase(name.find("__"), 1);
    while (!name.empty() && name.front() == '_') name.erase(0, 1);
    while (!name.empty() && name.back() == '_') name.pop_back();
    if (name.size() > 60) name.resize(60);
  }
  while (!name.empty() && (name.front() == '-' || name.front() == '_')) name.erase(0, 1);
  if (name.empty()) name = "migration";
  return out_file(fmt::format("{}_{}.up.sql", number, name), out);
}

}  // namespace

std::vector<MigrationFile> import_folder(Tool tool, const std::vector<MigrationFile>& files,
                                         std::vector<std::string>* skipped) {
  if (tool == Tool::kSqitch) return import_sqitch(files, skipped);
  std::vector<MigrationFile> out;
  std::vector<std::string> problems;
  for (const auto& f : files) {
    const std::string_view n = f.name;
    if (is_code(n)) {
      problems.push_back(
          fmt::format("{}: a code migration; only SQL files can be imported", printable(n, 200)));
      continue;
    }
    if (!n.ends_with(".sql")) {
      if (skipped) skipped->push_back(f.name);
      continue;
    }
    switch (tool) {
      case Tool::kGolangMigrate:
        out.push_back(out_file(f.name, f.bytes));  // the same grammar; checked by the loader
        break;
      case Tool::kDbmate: {
        if (!versioned_name(n, "dbmate", "<version>_<name>.sql", problems)) break;
        const auto stem = std::string(n.substr(0, n.size() - 4));
        std::string up_opts, down_opts;
        const auto up = section(f.bytes, "-- migrate:up", &up_opts);
        const auto down = section(f.bytes, "-- migrate:down", &down_opts);
        if (!up) {
          problems.push_back(fmt::format("{}: no `-- migrate:up` line", printable(n, 200)));
          break;
        }
        if (!up_opts.empty() && up_opts != "transaction:false") {
          problems.push_back(fmt::format("{}: unknown dbmate option {}", printable(n, 200),
                                         printable(up_opts, 60)));
          break;
        }
        const std::string prefix =
            up_opts == "transaction:false" ? "-- stepwise:no-transaction\n" : "";
        out.push_back(out_file(stem + ".up.sql", prefix + *up));
        if (down && !trim(*down).empty())
          out.push_back(out_file(
              stem + ".down.sql",
              (down_opts == "transaction:false" ? std::string("-- stepwise:no-transaction\n")
                                                : std::string()) +
                  *down));
        break;
      }
      case Tool::kGoose: {
        if (!versioned_name(n, "goose", "<version>_<name>.sql", problems)) break;
        const auto g = split_goose(n, f.bytes, problems);
        if (!g) break;
        const auto stem = std::string(n.substr(0, n.size() - 4));
        const std::string prefix = g->no_transaction ? "-- stepwise:no-transaction\n" : "";
        out.push_back(out_file(stem + ".up.sql", prefix + g->up));
        if (!trim(g->down).empty()) out.push_back(out_file(stem + ".down.sql", prefix + g->down));
        break;
      }
      case Tool::kNodePgMigrate: {
        if (!versioned_name(n, "node-pg-migrate", "<timestamp>_<name>.sql", problems)) break;
        std::string up, down, *into = nullptr;
        bool seen_up = false, seen_down = false;
        for (const auto line : split_lines_keeping_ends(f.bytes)) {
          if (is_npm_marker(line, "up")) {
            into = &up;
            seen_up = true;
          } else if (is_npm_marker(line, "down")) {
            into = &down;
            seen_down = true;
          } else if (into != nullptr) {
            *into += line;
          } else {
            up += line;  // before any marker: node-pg-migrate runs it as the up part
          }
        }
        if (seen_down && !seen_up) {
          problems.push_back(fmt::format(
              "{}: a `-- Down Migration` section without `-- Up Migration`; node-pg-migrate would "
              "run the down SQL as the up migration",
              printable(n, 200)));
          break;
        }
        const auto stem = std::string(n.substr(0, n.size() - 4));
        out.push_back(out_file(stem + ".up.sql", up));
        if (!trim(down).empty()) out.push_back(out_file(stem + ".down.sql", down));
        break;
      }
      case Tool::kPostgrator: {
        // <version>.do[.<name>].sql and <version>.undo[.<name>].sql
        const auto dot = n.find('.');
        const auto version = n.substr(0, dot == std::string_view::npos ? 0 : dot);
        // Without ".sql": "do", "do.<name>", "undo", "undo.<name>".
        const auto rest = dot == std::string_view::npos ? std::string_view()
                                                        : n.substr(dot + 1, n.size() - 4 - dot - 1);
        const bool up = rest == "do" || rest.starts_with("do.");
        const bool down = rest == "undo" || rest.starts_with("undo.");
        if (!all_digits(version) || (!up && !down)) {
          problems.push_back(
              fmt::format("{}: not a postgrator migration name (<version>.do.<name>.sql or "
                          "<version>.undo.<name>.sql)",
                          printable(n, 200)));
          break;
        }
        const auto prefix_len = std::string_view(up ? "do" : "undo").size();
        auto name = std::string(rest.size() > prefix_len ? rest.substr(prefix_len + 1) : "");
        if (name.empty()) name = "migration";
        out.push_back(
            out_file(fmt::format("{}_{}.{}.sql", version, name, up ? "up" : "down"), f.bytes));
        break;
      }
      case Tool::kGraphileMigrate: {
        if (n == "current.sql") {  // not committed yet: graphile-migrate does not run it either
          if (skipped) skipped->push_back(f.name);
          break;
        }
        if (auto g = import_graphile(n, f.bytes, problems)) out.push_back(std::move(*g));
        break;
      }
      case Tool::kFlyway: {
        const auto sep = n.find("__");
        if (n.starts_with("R__")) {
          problems.push_back(fmt::format(
              "{}: a Flyway repeatable migration; stepwise has none (make it a versioned file)",
              printable(n, 200)));
          break;
        }
        if ((!n.starts_with("V") && !n.starts_with("U")) || sep == std::string_view::npos) {
          problems.push_back(fmt::format("{}: not a Flyway migration name (V<version>__<desc>.sql)",
                                         printable(n, 200)));
          break;
        }
        const auto version = n.substr(1, sep - 1);
        if (!all_digits(version)) {
          problems.push_back(fmt::format(
              "{}: version {} is not a string of digits; stepwise versions are (rename the file "
              "with a digits-only version and map the old one in `adopt --mapping`)",
              printable(n, 200), printable(version, 40)));
          break;
        }
        const auto desc = std::string(n.substr(sep + 2, n.size() - 4 - (sep + 2)));
        out.push_back(
            out_file(fmt::format("{}_{}.{}.sql", version, desc.empty() ? "migration" : desc,
                                 n.starts_with("V") ? "up" : "down"),
                     f.bytes));
        break;
      }
      default:
        break;
    }
  }
  if (!problems.empty()) {
    std::string msg;
    for (const auto& p : problems) msg += (msg.empty() ? "" : "\n") + p;
    throw SourceError(msg, "convert or remove these files by hand, then import again");
  }
  return out;
}

}  // namespace stepwise
