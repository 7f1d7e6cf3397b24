#pragma once
// Splits a SQL script into statements the way psql does: semicolons end a statement except
// inside quotes ('...', E'...', "..."), dollar quotes ($tag$...$tag$), comments (--, nested
// /* */), parentheses, and BEGIN ATOMIC ... END bodies of SQL-standard functions; the inline
// data of COPY ... FROM STDIN is taken up to its "\." line. Everything here (splitting, the
// statement classifiers, the resume parsers) reads SQL through one lexer in sql_split.cpp.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace stepwise {

struct Statement {
  std::string_view text;  // trimmed; without the terminating semicolon
  int line = 1;           // 1-based line in the script where the statement starts
  int token_line = 1;     // line of its first token after any leading comments
  // COPY ... FROM STDIN: the inline data that followed the statement's semicolon, as pg_dump
  // writes it: the lines after the statement's line up to (not including) the line that is
  // exactly "\.", each with its newline. nullopt for every other statement.
  std::optional<std::string_view> copy_data;
};

// What makes a script unloadable, found by reading it through to the end.
struct ScriptProblem {
  int line = 0;         // where the offending token or statement starts
  std::string message;  // one line, without the file name
};

struct ParsedScript {
  std::vector<Statement> statements;  // comment-only pieces dropped
  // Byte ranges [begin, end) of the COPY data blocks, each with its "\." line, in order.
  std::vector<std::pair<std::size_t, std::size_t>> copy_regions;
  // The first of: an unterminated quoted string, E'' string, quoted identifier, dollar quote
  // or block comment; a psql meta-command (a backslash outside quotes and comments); a COPY
  // FROM STDIN without a "\." line before the end; text after its semicolon on the same line;
  // COPY ... TO STDOUT.
  std::optional<ScriptProblem> problem;
};

// Tokenizes the whole script (one lexer for everything in this header).
[[nodiscard]] ParsedScript parse_script(std::string_view script);

// parse_script(script).statements. Statements that hold only comments or white space are
// dropped.
[[nodiscard]] std::vector<Statement> split_sql(std::string_view script);

// For sending a whole script in one round trip: the text with every COPY data block (and its
// "\." line) replaced by as many empty lines, so the server's line numbers still match the
// file's, and the blocks in order (for Connection::execute_with_copy).
struct ScriptWithoutData {
  std::string sql;
  std::vector<std::string> copy_data;
};
[[nodiscard]] ScriptWithoutData strip_copy_data(std::string_view script);

// True when the script holds no statement at all (only comments and white space).
[[nodiscard]] bool is_comment_only(std::string_view script);

// Upper-cased leading keywords of a statement, comments skipped: ("CREATE","INDEX",...).
[[nodiscard]] std::vector<std::string> leading_keywords(std::string_view statement,
                                                        std::size_t max);

// The first tokens of a statement, comments skipped: words and "quoted identifiers" as
// written, and single punctuation characters ("." "(" ...). Stops after `max` tokens.
[[nodiscard]] std::vector<std::string_view> head_tokens(std::string_view statement,
                                                        std::size_t max);

// CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON [ONLY] [schema.]table ...
struct IndexStatement {
  bool concurrently = false;
  bool if_not_exists = false;
  std::string index;  // as written (quotes kept), qualified with the table's schema if it has one
};
// nullopt when the statement is not a CREATE INDEX with a name.
[[nodiscard]] std::optional<IndexStatement> parse_create_index(std::string_view statement);

// What a DDL statement creates or drops, to tell after an interruption whether it took effect.
struct DdlEffect {
  enum class Action { kCreate, kDrop, kAddColumn, kDropColumn };
  Action action;
  std::string kind;    // "relation" (table, view, sequence, index), "type", "schema"
  std::string name;    // as written, quotes kept: a to_regclass()/to_regtype() argument
  std::string column;  // for add/drop column, unquoted-folded as PostgreSQL stores it
};
// CREATE TABLE/VIEW/MATERIALIZED VIEW/SEQUENCE/TYPE/SCHEMA name, DROP of the same,
// ALTER TABLE name ADD/DROP [COLUMN] col. nullopt for anything else (and CREATE OR REPLACE,
// which is safe to run again).
[[nodiscard]] std::optional<DdlEffect> parse_ddl_effect(std::string_view statement);

// kBoundary: BEGIN / START TRANSACTION / COMMIT / END / ROLLBACK / ABORT / PREPARE TRANSACTION /
// COMMIT PREPARED / ROLLBACK PREPARED (opens or ends a transaction). kSavepoint: SAVEPOINT,
// RELEASE [SAVEPOINT], ROLLBACK TO [SAVEPOINT] (only meaningful inside a transaction).
enum class TxControl { kNone, kSavepoint, kBoundary };
[[nodiscard]] TxControl transaction_control(std::string_view statement);
// transaction_control(statement) == TxControl::kBoundary.
[[nodiscard]] bool is_transaction_control(std::string_view statement);

}  // namespace stepwise
