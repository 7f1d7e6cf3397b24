#include "pqxx_connection.hpp"

#include "libpq_connection.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <cstdlib>

#include "stepwise/errors.hpp"
#include "stepwise/redact.hpp"
#include "stepwise/text.hpp"

namespace stepwise {

ConnInfo parse_conninfo(const std::string& dsn, int connect_timeout_seconds) {
  ConnInfo info;
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
  if (opts == nullptr) {
    std::string why = err ? first_line(err) : "out of memory";
    if (err) PQfreemem(err);
    throw ConnectError(
        fmt::format("invalid connection string: {}", redact(why, {dsn})),
        "use postgres://user@host:port/dbname or host=... dbname=... key/value pairs");
  }
  std::string out;
  bool has_app = false;
  bool has_timeout = false;
  std::string host, port, dbname;
  for (auto* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string key = o->keyword;
    const std::string val = o->val;
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
  if (host.empty()) host = std::getenv("PGHOST") ? std::getenv("PGHOST") : "local socket";
  if (port.empty()) port = std::getenv("PGPORT") ? std::getenv("PGPORT") : "5432";
  if (dbname.empty()) dbname = std::getenv("PGDATABASE") ? std::getenv("PGDATABASE") : "(default)";
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
    throw ConnectError(redact(first_line(e.what()), info.secrets));
  }
}

}  // namespace stepwise
