#pragma once
// Splits a SQL script into statements the way psql does: semicolons end a statement except
// inside quotes ('...', E'...', "..."), dollar quotes ($tag$...$tag$), comments (--, nested
// /* */), parentheses, and BEGIN ATOMIC ... END bodies of SQL-standard functions.
#include <string>
#include <string_view>
#include <vector>

namespace stepwise {

struct Statement {
  std::string_view text;  // trimmed; without the terminating semicolon
  int line = 1;           // 1-based line in the script where the statement starts
};

// Statements that hold only comments or white space are dropped.
[[nodiscard]] std::vector<Statement> split_sql(std::string_view script);

// True when the script holds no statement at all (only comments and white space).
[[nodiscard]] bool is_comment_only(std::string_view script);

// Upper-cased leading keywords of a statement, comments skipped: ("CREATE","INDEX",...).
[[nodiscard]] std::vector<std::string> leading_keywords(std::string_view statement, std::size_t max);

}  // namespace stepwise
