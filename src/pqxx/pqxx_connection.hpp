#pragma once
// Connection strings and opening a Connection (libpq_connection.cpp). The only product code
// that uses libpq; its errors are translated to stepwise errors here and never escape.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "stepwise/connect_retry.hpp"
#include "stepwise/database.hpp"

namespace stepwise {

// A connection string split into what libpq needs and what must never be printed.
struct ConnInfo {
  std::string conninfo;              // keyword/value form handed to libpq
  std::vector<std::string> secrets;  // password values to mask in any output
  std::string display;               // host:port/db as the user will recognise it, no secrets
  std::string conninfo_public;       // conninfo without password keywords (for child processes)
  std::string password;              // the password keyword's value, if any
  std::vector<std::string> hosts;    // host names as given (none: the local socket)
  std::string port;                  // as given, or PGPORT, or 5432
  std::string dbname;                // as given, or PGDATABASE, or "(default)"
  // Values that connect errors may quote: every setting but passwords and hosts, and the
  // user name unless it came as a URL userinfo without ':' (maybe a misplaced password).
  std::vector<std::string> shown;
};

// Parses a URL or keyword/value string (empty: libpq's PG* environment variables), adds
// fallback_application_name=stepwise and a per-attempt connect_timeout. Throws ConnectError
// (without echoing the input) when libpq cannot parse it.
[[nodiscard]] ConnInfo parse_conninfo(const std::string& dsn, int connect_timeout_seconds);

// The same connection options for another database on the same server.
[[nodiscard]] ConnInfo with_database(const ConnInfo& info, const std::string& dbname);

// True for a connection failure worth retrying while the server starts (refused, DNS, startup,
// shutdown, too many clients); false for authentication and configuration errors.
[[nodiscard]] bool is_transient_connect_error(const std::string& message);

// `message` with every double-quoted token replaced by "***", except tokens equal to one of
// `keep` (libpq and the server quote the input they reject).
[[nodiscard]] std::string without_quoted_tokens(std::string_view message,
                                                const std::vector<std::string>& keep);

// A connect error saying a host name did not resolve: that "host" may be a mis-split password,
// so it is never shown (callers mask ConnInfo::hosts in everything they print).
[[nodiscard]] bool is_unresolved_host_error(const std::string& message);

// Opens one connection; throws ConnectError (message already redacted; quoted tokens other
// than ConnInfo::shown values, keywords and hosts that resolved replaced by "***").
[[nodiscard]] std::unique_ptr<Connection> open_connection(const ConnInfo& info);

// Opens a connection to `info`, retrying as stepwise/connect_retry.hpp says, with libpq's
// attempts and its messages' meaning (is_transient_connect_error, is_unresolved_host_error).
[[nodiscard]] std::unique_ptr<Connection> connect_with_retry(const ConnInfo& info,
                                                             const ConnectRetryOptions& options);

}  // namespace stepwise
