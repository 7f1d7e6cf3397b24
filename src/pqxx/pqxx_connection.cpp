#include "pqxx_connection.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <mutex>
#include <pqxx/pqxx>

#include "stepwise/errors.hpp"
#include "stepwise/redact.hpp"
#include "stepwise/text.hpp"

namespace stepwise {
namespace {

// Routes server notices to a handler instead of libpqxx's default (stderr).
class NoticeRouter final : public pqxx::errorhandler {
 public:
  explicit NoticeRouter(pqxx::connection_base& c) : pqxx::errorhandler(c) {}
  bool operator()(const char msg[]) noexcept override {
    if (handler) {
      try {
        handler(trim(msg));
      } catch (...) {
      }
    }
    return false;  // handled: stop the chain
  }
  std::function<void(std::string_view)> handler;
};

class PqxxConnection final : public Connection {
 public:
  explicit PqxxConnection(const std::string& conninfo)
      : conn_(conninfo), work_(conn_), notices_(conn_) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    // A silent reconnect would drop the session lock and the transaction: never do it.
    conn_.inhibit_reactivation(true);
#pragma GCC diagnostic pop
    pid_ = conn_.backendpid();
  }

  Rows execute(std::string_view sql) override {
    return guard([&] { return to_rows(work_.exec(std::string(sql))); });
  }

  Rows query(std::string_view sql, const Params& params) override {
    return guard([&] {
      std::vector<const char*> values;  // nullptr is SQL NULL
      values.reserve(params.size());
      for (const auto& f : params) values.push_back(f ? f->c_str() : nullptr);
      return to_rows(
          work_.exec_params(std::string(sql), pqxx::prepare::make_dynamic_params(values)));
    });
  }

  std::string quote_identifier(std::string_view name) override {
    return conn_.quote_name(std::string(name));
  }
  std::string quote_literal(std::string_view value) override {
    return conn_.quote(std::string(value));
  }

  void cancel() noexcept override {
    try {
      conn_.cancel_query();
    } catch (...) {
    }
  }
  int backend_pid() const override {
    return pid_;
  }
  void on_notice(std::function<void(std::string_view)> handler) override {
    notices_.handler = std::move(handler);
  }

 private:
  static Rows to_rows(const pqxx::result& r) {
    Rows rows;
    rows.reserve(r.size());
    for (const auto& row : r) {
      Row out;
      out.reserve(row.size());
      for (const auto& field : row) {
        if (field.is_null())
          out.emplace_back(std::nullopt);
        else
          out.emplace_back(std::string(field.c_str(), field.size()));
      }
      rows.push_back(std::move(out));
    }
    return rows;
  }

  template <typename F>
  Rows guard(F&& f) {
    try {
      return f();
    } catch (const pqxx::broken_connection& e) {
      throw ConnectionLost(
          fmt::format("lost the connection to the server: {}", first_line(e.what())));
    } catch (const pqxx::in_doubt_error& e) {
      throw ConnectionLost(
          fmt::format("lost the connection to the server: {}", first_line(e.what())));
    } catch (const pqxx::sql_error& e) {
      // libpq prefixes the severity ("ERROR:  "); the SQLSTATE already says it is an error.
      std::string full(trim(e.what()));
      if (full.starts_with("ERROR:")) full = std::string(trim(full.substr(6)));
      const std::string msg = first_line(full);
      // Class 08 (connection exception) and 57P01-57P03 (the server is shutting down or
      // terminated this session): the session, and with it the lock, is gone.
      const auto& state = e.sqlstate();
      if (!conn_.is_open() || state.starts_with("08") || state == "57P01" || state == "57P02" ||
          state == "57P03")
        throw ConnectionLost(fmt::format("lost the connection to the server: {}", msg));
      throw DbError(msg, e.sqlstate(), full);
    } catch (const pqxx::failure& e) {
      if (!conn_.is_open())
        throw ConnectionLost(
            fmt::format("lost the connection to the server: {}", first_line(e.what())));
      throw DbError(first_line(e.what()), "");
    }
  }

  pqxx::connection conn_;
  pqxx::nontransaction work_;  // statements run as sent; BEGIN/COMMIT are ours to send
  NoticeRouter notices_;
  int pid_ = 0;
};

}  // namespace

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
    return std::make_unique<PqxxConnection>(info.conninfo);
  } catch (const std::exception& e) {
    throw ConnectError(redact(first_line(e.what()), info.secrets));
  }
}

}  // namespace stepwise
