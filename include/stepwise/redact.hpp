#pragma once
// Keeps secrets out of every line stepwise prints.
#include <string>
#include <string_view>
#include <vector>

namespace stepwise {

// Masks passwords in any text that may hold a connection string: the userinfo password of a
// URL ("postgres://u:***@h"), and the value of password= / sslpassword= parameters in URL
// queries and keyword/value strings. Then replaces every occurrence of each known secret
// (e.g. the parsed password, PGPASSWORD) with "***".
[[nodiscard]] std::string redact(std::string_view text,
                                 const std::vector<std::string>& secrets = {});

}  // namespace stepwise
