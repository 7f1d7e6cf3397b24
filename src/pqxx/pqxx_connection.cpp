#include "pqxx_connection.hpp"

#include "libpq_connection.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "stepwise/errors.hpp"
#include "stepwise/redact.hpp"
#include "stepwise/text.hpp"

namespace stepwise {

namespace {

constexpr std::string_view kEncodeHint =
    "percent-encode special characters in the user name and password of a URL (% as %25, @ as "
    "%40, / as %2F, : as %3A, # as %23, space as %20), or use the key/value form with the value "
    "in single quotes";

[[noreturn]] void refuse_conninfo(std::string_view problem) {
  throw ConnectError(fmt::format("invalid connection string: {}", problem),
                     std::string(kEncodeHint));
}

bool all_digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// libpq splits a URL without regard to what was meant: an unencoded '@', '/' or ':' in a
// password moves part of it into the host, port or database name, where it would be printed.
// Such a URL is refused before libpq sees it, with a message that quotes none of it.
void check_url_shape(std::string_view dsn) {
  std::string_view rest;
  if (dsn.starts_with("postgresql://"))
    rest = dsn.substr(13);
  else if (dsn.starts_with("postgres://"))
    rest = dsn.substr(11);
  else
    return;
  // As libpq reads it: the userinfo ends at the first '@' that comes before any '/'.
  const auto q = rest.find_first_of("@/");
  const bool has_userinfo = q != std::string_view::npos && rest[q] == '@';
  const auto after = has_userinfo ? rest.substr(q + 1) : rest;
  const auto hosts_end = std::min(after.find_first_of("/?"), after.size());
  const auto hosts = after.substr(0, hosts_end);
  auto path = after.substr(hosts_end);
  path = path.substr(0, std::min(path.find('?'), path.size()));
  if (hosts.find('@') != std::string_view::npos)
    refuse_conninfo(
        "the URL has more than one '@' before its host (an '@' in the user name or password must "
        "be written %40)");
  if (path.find('@') != std::string_view::npos)
    refuse_conninfo(has_userinfo
                        ? "the URL has an '@' after its host (an '@' in the user name or password "
                          "must be written %40)"
                        : "the URL has an '@' after a '/' (a '/' in the user name or password must "
                          "be written %2F)");
  // Each host of the list: name or [IPv6], then an optional :port of digits.
  std::size_t i = 0;
  while (i <= hosts.size()) {
    const auto comma = std::min(hosts.find(',', i), hosts.size());
    auto entry = hosts.substr(i, comma - i);
    if (entry.starts_with('[')) {
      const auto close = entry.find(']');
      entry = close == std::string_view::npos ? std::string_view{} : entry.substr(close + 1);
    }
    if (const auto colon = entry.find(':'); colon != std::string_view::npos) {
      const auto port = entry.substr(colon + 1);
      // After the one '@', the port cannot hold a piece of the password: then it is named.
      if (!all_digits(port))
        refuse_conninfo(
            has_userinfo ? fmt::format("the port {} in the URL is not a number", one_line(port, 40))
                         : std::string("the port in the URL is not a number (a ':' or '/' in "
                                       "the user name or password must be written %3A or "
                                       "%2F)"));
    }
    if (comma == hosts.size()) break;
    i = comma + 1;
  }
}

// libpq's connection keywords ("host", "sslmode" ...).
const std::vector<std::string>& keywords() {
  static const std::vector<std::string> all = [] {
    std::vector<std::string> out;
    if (PQconninfoOption* d = PQconndefaults()) {
      for (auto* o = d; o->keyword != nullptr; ++o) out.emplace_back(o->keyword);
      PQconninfoFree(d);
    }
    return out;
  }();
  return all;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const auto up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The double-quoted token after `marker` in a libpq message (never printed as such).
std::string quoted_after(std::string_view message, std::string_view marker) {
  const auto at = message.find(marker);
  if (at == std::string_view::npos) return {};
  const auto open = message.find('"', at + marker.size());
  if (open == std::string_view::npos) return {};
  const auto close = message.find('"', open + 1);
  if (close == std::string_view::npos) return {};
  return std::string(message.substr(open + 1, close - open - 1));
}

bool is_keyword(std::string_view token) {
  const auto& all = keywords();
  return std::find(all.begin(), all.end(), token) != all.end();
}

// A close misspelling of a keyword: then the token is a typo, not a piece of a password, and
// both may be named. Empty otherwise.
std::string suggestion(std::string_view token) {
  if (token.size() < 3 || token.size() > 40) return {};
  std::string best;
  std::size_t best_distance = 3;
  for (const auto& k : keywords())
    if (const auto d = edit_distance(token, k); d < best_distance) {
      best = k;
      best_distance = d;
    }
  return best;
}

// libpq's parse errors quote the token they stumbled on, which may hold the password: say what
// is wrong in words of our own. A token is named only when it is a keyword, or a close
// misspelling of one.
std::string parse_problem(std::string_view libpq_message, bool url) {
  if (libpq_message.find("missing \"=\" after") != std::string_view::npos ||
      libpq_message.find("missing key/value separator") != std::string_view::npos) {
    const auto token = quoted_after(
        libpq_message,
        libpq_message.find("after \"") != std::string_view::npos ? "after " : "parameter: ");
    const auto form = url ? "a URL query parameter has no '='"
                          : "a keyword is not followed by '=' (the form is keyword=value)";
    if (is_keyword(token))
      return url ? fmt::format("the URL query parameter {} has no '='", token)
                 : fmt::format("the keyword {} is not followed by '=' (the form is keyword=value)",
                               token);
    return form;
  }
  if (libpq_message.find("invalid connection option") != std::string_view::npos ||
      libpq_message.find("invalid URI query parameter") != std::string_view::npos) {
    const auto token = quoted_after(libpq_message, url ? "parameter: " : "option ");
    const auto kind = url ? "an unknown URL query parameter" : "an unknown keyword";
    if (const auto near = suggestion(token); !near.empty())
      return fmt::format("{} {} (did you mean {}?)", kind, token, near);
    return kind;
  }
  static constexpr std::pair<std::string_view, std::string_view> kKnown[] = {
      {"invalid percent-encoded token", "a '%' is not followed by two hex digits"},
      {"forbidden value %00", "the URL holds %00, which is not allowed"},
      {"unterminated quoted string", "a quoted value has no closing quote"},
      {"extra key/value separator", "a URL query parameter has more than one '='"},
      {"IPv6", "a malformed IPv6 host address in the URL"},
      {"unexpected character", "an unexpected character in the URL"},
      {"out of memory", "out of memory"},
  };
  for (const auto& [needle, says] : kKnown)
    if (libpq_message.find(needle) != std::string_view::npos) return std::string(says);
  return url ? "libpq cannot parse the URL" : "libpq cannot parse the key/value string";
}

}  // namespace

std::string without_quoted_tokens(std::string_view message, const std::vector<std::string>& keep) {
  std::string out;
  std::size_t i = 0;
  while (i < message.size()) {
    const auto open = message.find('"', i);
    if (open == std::string_view::npos) break;
    const auto close = message.find('"', open + 1);
    if (close == std::string_view::npos) break;  // a lone quote: keep the text, it quotes nothing
    const auto token = message.substr(open + 1, close - open - 1);
    out.append(message.substr(i, open - i));
    bool shown = false;
    for (const auto& k : keep) shown = shown || (!k.empty() && token == k);
    out += shown ? std::string(message.substr(open, close - open + 1)) : std::string("\"***\"");
    i = close + 1;
  }
  out.append(message.substr(i));
  return out;
}

ConnInfo parse_conninfo(const std::string& dsn, int connect_timeout_seconds) {
  ConnInfo info;
  const bool url = dsn.starts_with("postgres://") || dsn.starts_with("postgresql://");
  check_url_shape(dsn);
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
  if (opts == nullptr) {
    const std::string why = err ? first_line(err) : "out of memory";
    if (err) PQfreemem(err);
    refuse_conninfo(parse_problem(why, url));
  }
  std::string out;
  bool has_app = false;
  bool has_timeout = false;
  std::string host, port, dbname;
  // A URL's userinfo without ':' may be a password typed where the user name goes: its user
  // name is never quoted back. Other settings' values (user=, sslmode= ...) may be.
  bool lone_userinfo = false;
  if (url) {
    const auto rest = std::string_view(dsn).substr(dsn.find("://") + 3);
    const auto q = rest.find_first_of("@/");
    lone_userinfo = q != std::string_view::npos && rest[q] == '@' &&
                    rest.substr(0, q).find(':') == std::string_view::npos;
  }
  for (auto* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string key = o->keyword;
    const std::string val = o->val;
    if (key != "password" && key != "sslpassword" && key != "host" && key != "hostaddr" &&
        !(key == "user" && lone_userinfo))
      info.shown.push_back(val);
    if (key == "password" || key == "sslpassword") info.secrets.push_back(val);
    if (key == "application_name" || key == "fallback_application_name") has_app = true;
    if (key == "connect_timeout") has_timeout = true;
    if (key == "host" || key == "hostaddr") host = host.empty() ? val : host;
    if (key == "port") port = val;
    if (key == "dbname") dbname = val;
    std::string quoted;
    for (char c : val) {
      if (c == '\'' || c == '\\') quoted += '\\';
      quoted += c;
    }
    out += fmt::format("{}='{}' ", key, quoted);
    if (key == "password")
      info.password = val;
    else if (key != "sslpassword")
      info.conninfo_public += fmt::format("{}='{}' ", key, quoted);
  }
  PQconninfoFree(opts);
  if (!has_app) out += "fallback_application_name='stepwise' ";
  if (!has_timeout && connect_timeout_seconds > 0)
    out += fmt::format("connect_timeout={} ", connect_timeout_seconds);
  if (const char* pw = std::getenv("PGPASSWORD"); pw && *pw) info.secrets.emplace_back(pw);
  if (const char* user = std::getenv("PGUSER"); user && *user) info.shown.emplace_back(user);
  if (host.empty() && std::getenv("PGHOST")) host = std::getenv("PGHOST");
  for (std::size_t i = 0; !host.empty() && i <= host.size();) {
    const auto comma = std::min(host.find(',', i), host.size());
    info.hosts.push_back(host.substr(i, comma - i));
    i = comma + 1;
  }
  if (host.empty()) host = "local socket";
  if (port.empty()) port = std::getenv("PGPORT") ? std::getenv("PGPORT") : "5432";
  if (dbname.empty()) dbname = std::getenv("PGDATABASE") ? std::getenv("PGDATABASE") : "(default)";
  info.port = port;
  info.dbname = dbname;
  info.conninfo = std::move(out);
  info.display = redact(fmt::format("{}:{}/{}", host, port, dbname), info.secrets);
  return info;
}

ConnInfo with_database(const ConnInfo& info, const std::string& dbname) {
  ConnInfo out = info;
  std::string quoted;
  for (char c : dbname) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  out.conninfo += fmt::format(" dbname='{}'", quoted);  // a later keyword overrides an earlier one
  out.dbname = dbname;
  out.shown.push_back(dbname);
  const auto slash = out.display.rfind('/');
  out.display =
      (slash == std::string::npos ? out.display : out.display.substr(0, slash)) + "/" + dbname;
  return out;
}

bool is_transient_connect_error(const std::string& m) {
  for (const char* permanent :
       {"password authentication failed", "no password supplied", "authentication failed",
        "does not exist", "invalid ", "no pg_hba.conf entry", "SSL", "certificate",
        "permission denied for database", "unsupported"})
    if (m.find(permanent) != std::string::npos) return false;
  return true;
}

std::unique_ptr<Connection> open_connection(const ConnInfo& info) {
  try {
    return connect_libpq(info.conninfo);
  } catch (const std::exception& e) {
    // libpq and the server quote host, user and database names; a user name or a host that
    // does not resolve may be a password in the wrong place (a URL split where the user did
    // not mean it): only the port and database name given, and hosts that resolved, are shown.
    const std::string why = first_line(e.what());
    std::vector<std::string> keep = info.shown;
    keep.insert(keep.end(), {info.port, info.dbname});
    if (!is_unresolved_host_error(why))
      keep.insert(keep.end(), info.hosts.begin(), info.hosts.end());
    for (const auto& h : info.hosts)  // a socket directory: libpq quotes the socket's path
      if (h.starts_with('/')) keep.push_back(fmt::format("{}/.s.PGSQL.{}", h, info.port));
    for (const char* keyword : {"port", "host", "hostaddr", "dbname", "user", "sslmode",
                                "connect_timeout", "target_session_attrs", "gssencmode"})
      keep.emplace_back(keyword);
    throw ConnectError(redact(without_quoted_tokens(why, keep), info.secrets));
  }
}

bool is_unresolved_host_error(const std::string& message) {
  return message.find("could not translate host name") != std::string::npos;
}

std::unique_ptr<Connection> connect_with_retry(const ConnInfo& info,
                                               const ConnectRetryOptions& options) {
  ConnectAttempt attempt;
  attempt.display = info.display;
  attempt.hosts = info.hosts;
  attempt.open = [&info] { return open_connection(info); };
  attempt.is_transient = is_transient_connect_error;
  attempt.is_unresolved_host = is_unresolved_host_error;
  return connect_with_retry(attempt, options);
}

}  // namespace stepwise
