#pragma once
// The Connection stepwise runs on: libpq used directly (see libpq_connection.cpp for why).
#include <memory>
#include <string>

#include "stepwise/database.hpp"

namespace stepwise {

// Connects with a keyword/value conninfo. Throws ConnectError with libpq's first line (not
// redacted: open_connection() does that).
[[nodiscard]] std::unique_ptr<Connection> connect_libpq(const std::string& conninfo);

}  // namespace stepwise
