#pragma once
// The only view the engine has of a database. The real implementation is on libpq
// (src/pqxx); tests may supply their own. No third-party types appear here.
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "stepwise/errors.hpp"

namespace stepwise {

using Field = std::optional<std::string>;  // nullopt is SQL NULL
using Row = std::vector<Field>;
using Rows = std::vector<Row>;
using Params = std::vector<Field>;

// Errors: DbError (the server rejected a statement), ConnectionLost (the connection broke).
class Connection {
 public:
  virtual ~Connection() = default;
  // Simple-query protocol: several statements allowed; returns the rows of the last one.
  virtual Rows execute(std::string_view sql) = 0;
  // As execute(), feeding `copy_data` in order to the COPY ... FROM STDIN statements the text
  // runs: one block (the lines between the statement and its "\." line) per such statement.
  // The default serves connections that cannot stream COPY data (test fakes).
  virtual Rows execute_with_copy(std::string_view sql, std::span<const std::string> copy_data) {
    if (!copy_data.empty()) throw Error(ExitCode::kFailed, "this connection cannot send COPY data");
    return execute(sql);
  }
  // One statement with $1, $2 ... parameters sent separately from the SQL text.
  virtual Rows query(std::string_view sql, const Params& params) = 0;
  // As query(), handing each row to `row` as it is read (the fields are valid during the call
  // only; nullopt is SQL NULL) instead of copying the result: a large catalog read is never
  // held twice. An exception from `row` stops the reading and is rethrown once the connection
  // is idle again. The default serves connections that have only query() (test fakes).
  using RowFields = std::span<const std::optional<std::string_view>>;
  virtual void query_each(std::string_view sql, const Params& params,
                          const std::function<void(RowFields)>& row) {
    std::vector<std::optional<std::string_view>> fields;
    for (const auto& r : query(sql, params)) {
      fields.assign(r.begin(), r.end());
      row(fields);
    }
  }
  [[nodiscard]] virtual std::string quote_identifier(std::string_view name) = 0;
  [[nodiscard]] virtual std::string quote_literal(std::string_view value) = 0;
  // Asks the server to cancel the running statement. Safe to call from another thread.
  virtual void cancel() noexcept = 0;
  [[nodiscard]] virtual int backend_pid() const = 0;
  // Server notices (e.g. "relation already exists, skipping") go here; default: dropped.
  virtual void on_notice(std::function<void(std::string_view)> handler) = 0;
};

}  // namespace stepwise
