// The Connection on libpq itself. libpqxx 6.4 (as Debian ships it) throws
// serialization_failure, deadlock_detected, insufficient_privilege ... without their SQLSTATE,
// and it cannot feed caller-provided data to an arbitrary COPY ... FROM STDIN; libpq does both.
//
// Everything runs in blocking mode, one request at a time, and every request is drained to its
// end (PQgetResult until NULL), so the connection is always idle between calls. It is never
// reconnected: a silent reconnect would drop the session lock and the open transaction.
#include "libpq_connection.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "stepwise/errors.hpp"
#include "stepwise/text.hpp"

namespace stepwise {
namespace {

// Sent as the failure reason of a COPY ... FROM STDIN the script has no data for; the server
// then fails the statement ("COPY from stdin failed: ...", SQLSTATE 57014).
constexpr const char* kNoCopyData = "stepwise: no inline data for this COPY ... FROM STDIN";
constexpr const char* kCopyOut = "COPY ... TO STDOUT is not supported in a migration";
constexpr const char* kCopyBoth = "COPY BOTH (replication) is not supported in a migration";
constexpr std::size_t kCopyChunk = std::size_t{1} << 20;  // PQputCopyData takes an int length

struct ResultDeleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

struct Failure {
  std::string message;   // one line, no severity prefix
  std::string sqlstate;  // empty for errors libpq made up itself (e.g. connection lost)
  std::string detail;    // the server's full text: message, LINE n:, DETAIL, HINT
};

// Class 08 (connection exception) and 57P01-57P03 (the server is shutting down or terminated
// this session): the session, and with it the lock, is gone.
bool session_gone(const std::string& state) {
  return state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03";
}

Rows to_rows(const PGresult* r) {
  const int n = PQntuples(r);
  const int cols = PQnfields(r);
  Rows rows;
  rows.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    Row row;
    row.reserve(static_cast<std::size_t>(cols));
    for (int j = 0; j < cols; ++j) {
      if (PQgetisnull(r, i, j))
        row.emplace_back(std::nullopt);
      else
        row.emplace_back(
            std::string(PQgetvalue(r, i, j), static_cast<std::size_t>(PQgetlength(r, i, j))));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

class LibpqConnection final : public Connection {
 public:
  explicit LibpqConnection(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
    if (conn_ == nullptr) throw ConnectError("could not connect: out of memory");
    if (PQstatus(conn_) != CONNECTION_OK) {
      std::string why = first_line(PQerrorMessage(conn_));
      PQfinish(conn_);
      conn_ = nullptr;
      throw ConnectError(why.empty() ? "could not connect to the server" : why);
    }
    // Made now, used from the signal thread: PQcancel on it is thread- and signal-safe, while
    // PQgetCancel would read the PGconn the main thread is using.
    cancel_ = PQgetCancel(conn_);
    PQsetNoticeProcessor(conn_, &LibpqConnection::notice, this);
    pid_ = PQbackendPID(conn_);
  }
  ~LibpqConnection() override {
    if (cancel_ != nullptr) PQfreeCancel(cancel_);
    if (conn_ != nullptr) PQfinish(conn_);
  }
  LibpqConnection(const LibpqConnection&) = delete;
  LibpqConnection& operator=(const LibpqConnection&) = delete;

  Rows execute(std::string_view sql) override { return execute_with_copy(sql, {}); }

  // Sends `sql` with its parameters (text format; nullopt is SQL NULL).
  void send_with_params(std::string_view sql, const Params& params) {
    usable();
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& f : params) values.push_back(f ? f->c_str() : nullptr);
    const std::string text(sql);
    if (PQsendQueryParams(conn_, text.c_str(), static_cast<int>(values.size()), nullptr,
                          values.data(), nullptr, nullptr, 0) == 0)
      raise(from_connection());
  }

  Rows execute_with_copy(std::string_view sql, std::span<const std::string> copy_data) override {
    usable();
    const std::string text(sql);
    if (PQsendQuery(conn_, text.c_str()) == 0) raise(from_connection());
    return collect(copy_data);
  }

  Rows query(std::string_view sql, const Params& params) override {
    send_with_params(sql, params);
    return collect({});
  }

  void query_each(std::string_view sql, const Params& params,
                  const std::function<void(RowFields)>& row) override {
    send_with_params(sql, params);
    // Row by row as they arrive: the whole result is never held by libpq, nor copied.
    (void)PQsetSingleRowMode(conn_);
    std::exception_ptr failed;
    std::vector<std::optional<std::string_view>> fields;
    const RowSink sink = [&](const PGresult* r) {
      if (failed) return;  // the rest is drained unread
      const int n = PQntuples(r);
      const int cols = PQnfields(r);
      fields.resize(static_cast<std::size_t>(cols));
      try {
        for (int i = 0; i < n; ++i) {
          for (int j = 0; j < cols; ++j)
            fields[static_cast<std::size_t>(j)] =
                PQgetisnull(r, i, j)
                    ? std::nullopt
                    : std::optional<std::string_view>(std::string_view(
                          PQgetvalue(r, i, j), static_cast<std::size_t>(PQgetlength(r, i, j))));
          row(fields);
        }
      } catch (...) {
        failed = std::current_exception();
      }
    };
    collect({}, &sink);
    if (failed) std::rethrow_exception(failed);
  }

  std::string quote_identifier(std::string_view name) override {
    return escaped(PQescapeIdentifier(conn_, name.data(), name.size()));
  }
  std::string quote_literal(std::string_view value) override {
    return escaped(PQescapeLiteral(conn_, value.data(), value.size()));
  }

  void cancel() noexcept override {
    if (cancel_ == nullptr) return;
    char why[256];
    (void)PQcancel(cancel_, why, sizeof why);
  }
  int backend_pid() const override { return pid_; }
  void on_notice(std::function<void(std::string_view)> handler) override {
    notice_handler_ = std::move(handler);
  }

 private:
  static void notice(void* self, const char* message) {
    auto* c = static_cast<LibpqConnection*>(self);
    if (!c->notice_handler_ || message == nullptr) return;
    try {
      c->notice_handler_(trim(message));
    } catch (...) {
    }
  }

  // A request whose result could not be read to its end leaves the connection in an unknown
  // state: nothing more is sent on it.
  void usable() const {
    if (broken_ || PQstatus(conn_) == CONNECTION_BAD)
      throw ConnectionLost(fmt::format("lost the connection to the server: {}",
                                       broken_
                                           ? std::string("the connection is in an unknown state")
                                           : first_line(PQerrorMessage(conn_))));
  }

  std::string escaped(char* out) {
    if (out == nullptr) {
      usable();
      throw DbError(first_line(PQerrorMessage(conn_)), "");
    }
    std::string s(out);
    PQfreemem(out);
    return s;
  }

  Failure from_connection() const {
    std::string text(trim(PQerrorMessage(conn_)));
    if (text.empty()) text = "the connection failed";
    return {first_line(text), "", text};
  }

  static Failure from_result(const PGresult* r, const Failure& fallback) {
    Failure f;
    const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    f.sqlstate = state != nullptr ? state : "";
    // As the server formatted it; libpq prefixes the severity ("ERROR:  "), which the SQLSTATE
    // already says.
    std::string full(trim(PQresultErrorMessage(r)));
    if (full.starts_with("ERROR:")) full = std::string(trim(full.substr(6)));
    if (full.empty()) full = fallback.detail;
    const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    f.message = primary != nullptr && *primary != '\0' ? first_line(primary) : first_line(full);
    if (f.message.empty()) f.message = fallback.message;
    f.detail = std::move(full);
    return f;
  }

  [[noreturn]] void raise(const Failure& f) const {
    if (broken_ || PQstatus(conn_) == CONNECTION_BAD || session_gone(f.sqlstate))
      throw ConnectionLost(fmt::format("lost the connection to the server: {}", f.message));
    throw DbError(f.message, f.sqlstate, f.detail);
  }

  bool put_copy(const std::string& block) {
    for (std::size_t off = 0; off < block.size(); off += kCopyChunk) {
      const auto n = std::min(kCopyChunk, block.size() - off);
      if (PQputCopyData(conn_, block.data() + off, static_cast<int>(n)) != 1) return false;
    }
    return PQputCopyEnd(conn_, nullptr) == 1;
  }

  void discard_copy_data() {
    for (;;) {
      char* buf = nullptr;
      const int n = PQgetCopyData(conn_, &buf, 0);
      if (buf != nullptr) PQfreemem(buf);
      if (n < 0) return;  // -1: done, -2: error (reported by the next PQgetResult)
    }
  }

  // Reads every result of the request just sent. The rows are those of the last result that
  // has rows; the first error wins (the server stops at it anyway).
  using RowSink = std::function<void(const PGresult*)>;
  Rows collect(std::span<const std::string> copy_data, const RowSink* sink = nullptr) {
    Rows rows;
    std::optional<Failure> error;
    const auto note = [&](Failure f) {
      if (!error) error = std::move(f);
    };
    std::size_t next = 0;
    while (Result r{PQgetResult(conn_)}) {
      switch (PQresultStatus(r.get())) {
        case PGRES_TUPLES_OK:
        case PGRES_SINGLE_TUPLE:
          if (sink != nullptr)
            (*sink)(r.get());
          else
            rows = to_rows(r.get());
          break;
        case PGRES_COPY_IN: {
          const bool sent = next < copy_data.size() ? put_copy(copy_data[next++])
                                                    : PQputCopyEnd(conn_, kNoCopyData) == 1;
          if (!sent) {
            // Blocking mode: this fails only on a broken connection. Should libpq still be in
            // COPY IN state, asking for the next result would return the same COPY again.
            note(from_connection());
            if (PQstatus(conn_) != CONNECTION_BAD) broken_ = true;
            raise(*error);
          }
          break;
        }
        case PGRES_COPY_OUT:
          discard_copy_data();
          note({kCopyOut, "0A000", kCopyOut});
          break;
        case PGRES_COPY_BOTH:  // replication connections only; ours never are
          (void)PQputCopyEnd(conn_, nullptr);
          discard_copy_data();
          note({kCopyBoth, "0A000", kCopyBoth});
          break;
        case PGRES_BAD_RESPONSE:
        case PGRES_NONFATAL_ERROR:
        case PGRES_FATAL_ERROR:
          note(from_result(r.get(), from_connection()));
          break;
        default:  // PGRES_COMMAND_OK, PGRES_EMPTY_QUERY
          break;
      }
    }
    if (error) raise(*error);
    if (PQstatus(conn_) == CONNECTION_BAD) raise(from_connection());
    if (next < copy_data.size())
      throw Error(
          ExitCode::kFailed,
          fmt::format("internal error: {} COPY data block(s) given, but the SQL ran only {} "
                      "COPY ... FROM STDIN statement(s)",
                      copy_data.size(), next));
    return rows;
  }

  PGconn* conn_ = nullptr;
  PGcancel* cancel_ = nullptr;
  int pid_ = 0;
  bool broken_ = false;
  std::function<void(std::string_view)> notice_handler_;
};

}  // namespace

std::unique_ptr<Connection> connect_libpq(const std::string& conninfo) {
  return std::make_unique<LibpqConnection>(conninfo);
}

}  // namespace stepwise
