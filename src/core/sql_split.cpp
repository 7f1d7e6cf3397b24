#include "stepwise/sql_split.hpp"

#include <fmt/format.h>

#include <array>
#include <cctype>

#include "stepwise/text.hpp"

namespace stepwise {
namespace {

// Character classes by table: the lexer reads every byte of every file at each start.
enum : unsigned char { kStart = 1, kIdent = 2, kSpaceClass = 4 };
constexpr auto kClass = [] {
  std::array<unsigned char, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const bool start = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
    const bool ident = start || (c >= '0' && c <= '9') || c == '$';
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    t[static_cast<std::size_t>(c)] = static_cast<unsigned char>(
        (start ? kStart : 0) | (ident ? kIdent : 0) | (space ? kSpaceClass : 0));
  }
  return t;
}();
bool ident_start(char c) {
  return (kClass[static_cast<unsigned char>(c)] & kStart) != 0;
}
bool ident_char(char c) {
  return (kClass[static_cast<unsigned char>(c)] & kIdent) != 0;
}
bool is_space(char c) {
  return (kClass[static_cast<unsigned char>(c)] & kSpaceClass) != 0;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool is_word(std::string_view token, std::string_view upper_word) {
  if (token.size() != upper_word.size()) return false;
  for (std::size_t i = 0; i < token.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(token[i])) != upper_word[i]) return false;
  return true;
}

// The one lexer of this file: PostgreSQL's token boundaries as psql sees them (with
// standard_conforming_strings on). The splitter, head_tokens() and everything built on them read
// a script through it.
enum class Tok {
  kSpace,
  kLineComment,
  kBlockComment,
  kWord,         // identifier or keyword, as written
  kQuotedIdent,  // "..."
  kString,       // '...', E'...', U&'...', B'...', X'...'
  kDollar,       // $tag$ ... $tag$
  kBackslash,    // a backslash outside quotes: the start of a psql meta-command
  kSemicolon,
  kOpen,
  kClose,
  kOther,  // a number, a positional parameter, or one punctuation character
  kEnd,
};

struct Token {
  Tok kind = Tok::kEnd;
  std::size_t begin = 0;
  std::size_t end = 0;
  int line = 1;               // line where the token starts
  bool unterminated = false;  // the script ends inside it
  bool escape = false;        // an E'...' string
  std::string_view text;
};

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  Token next() {
    Token t;
    t.begin = i_;
    t.line = line_;
    if (i_ >= s_.size()) {
      t.end = i_;
      return t;
    }
    const char c = s_[i_];
    const auto at = [&](std::size_t k) { return k < s_.size() ? s_[k] : '\0'; };
    if (is_space(c)) {
      t.kind = Tok::kSpace;
      while (i_ < s_.size() && is_space(s_[i_])) advance();
    } else if (c == '-' && at(i_ + 1) == '-') {
      t.kind = Tok::kLineComment;
      while (i_ < s_.size() && s_[i_] != '\n') ++i_;
    } else if (c == '/' && at(i_ + 1) == '*') {
      t.kind = Tok::kBlockComment;
      int depth = 0;
      t.unterminated = true;
      while (i_ < s_.size()) {
        if (s_[i_] == '/' && at(i_ + 1) == '*') {
          ++depth;
          i_ += 2;
        } else if (s_[i_] == '*' && at(i_ + 1) == '/') {
          i_ += 2;
          if (--depth == 0) {
            t.unterminated = false;
            break;
          }
        } else {
          advance();
        }
      }
    } else if (c == '\'') {
      t.kind = Tok::kString;
      t.unterminated = !skip_quoted('\'', false);
    } else if (c == '"') {
      t.kind = Tok::kQuotedIdent;
      t.unterminated = !skip_quoted('"', false);
    } else if (ident_start(c)) {
      std::size_t j = i_;
      while (j < s_.size() && ident_char(s_[j])) ++j;
      const auto word = s_.substr(i_, j - i_);
      if (at(j) == '\'' && word.size() == 1 && (c == 'E' || c == 'e')) {
        t.kind = Tok::kString;
        t.escape = true;
        i_ = j;
        t.unterminated = !skip_quoted('\'', true);
      } else if (at(j) == '\'' && word.size() == 1 &&
                 std::string_view("BbXxNn").find(c) != std::string_view::npos) {
        t.kind = Tok::kString;
        i_ = j;
        t.unterminated = !skip_quoted('\'', false);
      } else if (word.size() == 1 && (c == 'U' || c == 'u') && at(j) == '&' &&
                 (at(j + 1) == '\'' || at(j + 1) == '"')) {
        const char q = at(j + 1);
        t.kind = q == '\'' ? Tok::kString : Tok::kQuotedIdent;
        i_ = j + 1;
        t.unterminated = !skip_quoted(q, false);
      } else {
        t.kind = Tok::kWord;
        i_ = j;
      }
    } else if (c == '$') {
      // $tag$ where tag is empty or an identifier without '$'; else a parameter like $1.
      std::size_t j = i_ + 1;
      if (ident_start(at(j)))
        while (j < s_.size() && ident_char(s_[j]) && s_[j] != '$') ++j;
      if (at(j) == '$') {
        t.kind = Tok::kDollar;
        const auto tag = s_.substr(i_, j - i_ + 1);
        const auto close = s_.find(tag, j + 1);
        t.unterminated = close == std::string_view::npos;
        const auto end = t.unterminated ? s_.size() : close + tag.size();
        while (i_ < end) advance();
      } else {
        t.kind = Tok::kOther;
        ++i_;
        while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
      }
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      t.kind = Tok::kOther;
      while (i_ < s_.size() && (ident_char(s_[i_]) || s_[i_] == '.')) ++i_;
    } else if (c == '\\') {
      t.kind = Tok::kBackslash;
      ++i_;
      while (i_ < s_.size() && !is_space(s_[i_])) ++i_;
    } else {
      t.kind = c == ';'   ? Tok::kSemicolon
               : c == '(' ? Tok::kOpen
               : c == ')' ? Tok::kClose
                          : Tok::kOther;
      ++i_;
    }
    t.end = i_;
    t.text = s_.substr(t.begin, t.end - t.begin);
    return t;
  }

  // Skips the tokens that carry no meaning: white space and comments.
  Token next_meaningful() {
    for (;;) {
      auto t = next();
      if (t.kind != Tok::kSpace && t.kind != Tok::kLineComment && t.kind != Tok::kBlockComment)
        return t;
      if (t.unterminated) return t;
    }
  }

  [[nodiscard]] std::size_t pos() const noexcept { return i_; }
  [[nodiscard]] int line() const noexcept { return line_; }
  void jump(std::size_t pos, int line) {
    i_ = pos;
    line_ = line;
  }

 private:
  void advance() {
    if (s_[i_] == '\n') ++line_;
    ++i_;
  }

  // From the opening quote at i_; true when the closing quote was found.
  bool skip_quoted(char q, bool backslash) {
    ++i_;
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (backslash && c == '\\') {
        advance();
        if (i_ < s_.size()) advance();
        continue;
      }
      if (c == q) {
        if (i_ + 1 < s_.size() && s_[i_ + 1] == q) {
          i_ += 2;
          continue;
        }
        ++i_;
        return true;
      }
      advance();
    }
    return false;
  }

  std::string_view s_;
  std::size_t i_ = 0;
  int line_ = 1;
};

bool is_comment(const Token& t) {
  return t.kind == Tok::kLineComment || t.kind == Tok::kBlockComment;
}
bool is_blank(const Token& t) {
  return t.kind == Tok::kSpace || is_comment(t);
}

// A meta-command's name as written when it is short plain ASCII; escaped otherwise.
std::string shown(std::string_view word) {
  bool plain = word.size() <= 40;
  for (const char c : word) plain = plain && c > 0x20 && c < 0x7f;
  return plain ? std::string(word) : printable(word, 40);
}

std::string unterminated_problem(const Token& t) {
  switch (t.kind) {
    case Tok::kBlockComment:
      return "unterminated /* comment: the file ends inside it";
    case Tok::kQuotedIdent:
      return "unterminated quoted identifier (\"...): the file ends inside it";
    case Tok::kDollar: {
      std::size_t j = 1;
      while (j < t.text.size() && t.text[j] != '$') ++j;
      return fmt::format("unterminated dollar-quoted string {}: the file ends inside it",
                         t.text.substr(0, j + 1));
    }
    default:
      return t.escape ? "unterminated E'...' string: the file ends inside it"
                      : "unterminated quoted string ('...): the file ends inside it";
  }
}

// COPY ... FROM STDIN / TO STDOUT, judged from the top-level words of the statement.
enum class CopyKind { kNone, kFromStdin, kToStdout };
CopyKind copy_kind(std::string_view statement) {
  Lexer lx(statement);
  auto t = lx.next_meaningful();
  if (t.kind != Tok::kWord || !is_word(t.text, "COPY")) return CopyKind::kNone;
  int depth = 0;
  for (t = lx.next_meaningful(); t.kind != Tok::kEnd; t = lx.next_meaningful()) {
    if (t.kind == Tok::kOpen) ++depth;
    if (t.kind == Tok::kClose && depth > 0) --depth;
    if (depth != 0 || t.kind != Tok::kWord) continue;
    const bool from = is_word(t.text, "FROM");
    if (!from && !is_word(t.text, "TO")) continue;
    const auto where = lx.next_meaningful();
    if (where.kind != Tok::kWord) return CopyKind::kNone;  // 'file' or PROGRAM: the server's
    if (from && is_word(where.text, "STDIN")) return CopyKind::kFromStdin;
    if (!from && is_word(where.text, "STDOUT")) return CopyKind::kToStdout;
    return CopyKind::kNone;
  }
  return CopyKind::kNone;
}

// Splits one script into statements, with COPY data, and the first problem.
class Splitter {
 public:
  explicit Splitter(std::string_view s) : s_(s), lx_(s) {}

  ParsedScript run() {
    begin_statement();
    for (;;) {
      const auto t = lx_.next();
      if (t.unterminated) {
        fail(t.line, unterminated_problem(t));
        // The rest of the script belongs to the unterminated token.
      }
      if (t.kind == Tok::kEnd) break;
      if (is_blank(t)) continue;
      if (t.kind == Tok::kBackslash) {
        fail(t.line, fmt::format("psql meta-command {} is not SQL; stepwise sends files to the "
                                 "server as they are",
                                 shown(t.text)));
      }
      if (!has_content_ && t.kind != Tok::kSemicolon) {
        stmt_begin_ = t.begin;
        stmt_line_ = t.line;
        has_content_ = true;
      }
      if (t.kind == Tok::kOpen) {
        ++paren_;
      } else if (t.kind == Tok::kClose) {
        if (paren_ > 0) --paren_;
      } else if (t.kind == Tok::kSemicolon && paren_ == 0 && begin_depth_ == 0) {
        flush(t.begin);
        after_statement(t.end);
        begin_statement();
      } else if (t.kind == Tok::kWord) {
        word(t.text);
      }
    }
    flush(s_.size());
    if (!out_.statements.empty() && pending_copy_) {
      // COPY FROM STDIN as the last statement, without a terminating semicolon.
      fail(stmt_line_, no_data_end());
    }
    return std::move(out_);
  }

 private:
  void begin_statement() {
    has_content_ = false;
    words_ = 0;
    routine_ = false;
    paren_ = 0;
    begin_depth_ = 0;
    pending_copy_ = false;
    piece_begin_ = lx_.pos();
    piece_line_ = lx_.line();
  }

  void word(std::string_view w) {
    // CREATE [OR REPLACE] FUNCTION|PROCEDURE: BEGIN ATOMIC ... END bodies hold semicolons.
    if (words_ < 4) {
      const auto k = words_++;
      if (k == 0) {
        create_ = is_word(w, "CREATE");
        or_replace_ = false;
      } else if (create_ && k == 1 && is_word(w, "OR")) {
        or_replace_ = true;
      } else if (create_ && (k == 1 || (or_replace_ && k == 3)) &&
                 (is_word(w, "FUNCTION") || is_word(w, "PROCEDURE"))) {
        routine_ = true;
      }
    }
    if (!routine_) return;
    if (is_word(w, "BEGIN"))
      ++begin_depth_;
    else if (is_word(w, "CASE") && begin_depth_ > 0)
      ++begin_depth_;
    else if (is_word(w, "END") && begin_depth_ > 0)
      --begin_depth_;
  }

  // Ends the statement at `end` (its semicolon, or the end of the script).
  void flush(std::size_t end) {
    if (!has_content_) return;  // comments and white space only
    // The statement's text starts with the comments before it, as written.
    const auto piece = s_.substr(piece_begin_, end - piece_begin_);
    const auto text = trim(piece);
    int line = piece_line_;
    for (const char* p = piece.data(); p < text.data(); ++p)
      if (*p == '\n') ++line;
    Statement st{text, line, stmt_line_, std::nullopt};
    const auto kind = copy_kind(s_.substr(stmt_begin_, end - stmt_begin_));
    if (kind == CopyKind::kToStdout)
      fail(stmt_line_,
           "COPY ... TO STDOUT sends rows to the client, which a migration cannot take; write "
           "them with a query, or COPY TO a server file");
    pending_copy_ = kind == CopyKind::kFromStdin;
    out_.statements.push_back(st);
  }

  // After a statement's semicolon at `pos`: a COPY FROM STDIN takes the lines that follow, up to
  // a line that is exactly "\.", as psql does.
  void after_statement(std::size_t pos) {
    if (!pending_copy_) return;
    auto& st = out_.statements.back();
    const auto nl = s_.find('\n', pos);
    const auto rest = trim(s_.substr(pos, nl == std::string_view::npos ? s_.npos : nl - pos));
    if (!rest.empty() && !rest.starts_with("--")) {
      fail(stmt_line_,
           "text after COPY ... FROM STDIN; on the same line: its data must start on "
           "the next line");
      return;
    }
    if (nl == std::string_view::npos) {
      fail(stmt_line_, no_data_end());
      lx_.jump(s_.size(), lx_.line());
      return;
    }
    const auto data_begin = nl + 1;
    int line = lx_.line() + 1;
    for (std::size_t p = data_begin; p < s_.size();) {
      auto e = s_.find('\n', p);
      const auto next = e == std::string_view::npos ? s_.size() : e + 1;
      auto content = s_.substr(p, (e == std::string_view::npos ? s_.size() : e) - p);
      if (content.ends_with('\r')) content.remove_suffix(1);
      if (content == "\\.") {
        st.copy_data = s_.substr(data_begin, p - data_begin);
        out_.copy_regions.push_back({data_begin, next});
        lx_.jump(next, e == std::string_view::npos ? line : line + 1);
        return;
      }
      if (e == std::string_view::npos) break;
      p = next;
      ++line;
    }
    fail(stmt_line_, no_data_end());
    lx_.jump(s_.size(), line);
  }

  static std::string no_data_end() {
    return "COPY ... FROM STDIN has no inline data ending in a line \\.";
  }

  void fail(int line, std::string message) {
    if (!out_.problem) out_.problem = ScriptProblem{line, std::move(message)};
  }

  std::string_view s_;
  Lexer lx_;
  ParsedScript out_;
  std::size_t piece_begin_ = 0;  // after the previous statement's end
  int piece_line_ = 1;
  std::size_t stmt_begin_ = 0;  // first meaningful token
  int stmt_line_ = 1;
  bool has_content_ = false;
  int words_ = 0;
  bool create_ = false;
  bool or_replace_ = false;
  bool routine_ = false;
  int paren_ = 0;
  int begin_depth_ = 0;
  bool pending_copy_ = false;
};

}  // namespace

ParsedScript parse_script(std::string_view script) {
  return Splitter(script).run();
}

std::vector<Statement> split_sql(std::string_view script) {
  return parse_script(script).statements;
}

ScriptWithoutData strip_copy_data(std::string_view script) {
  auto parsed = parse_script(script);
  ScriptWithoutData out;
  std::size_t at = 0;
  for (const auto& st : parsed.statements)
    if (st.copy_data) out.copy_data.emplace_back(*st.copy_data);
  for (const auto& [begin, end] : parsed.copy_regions) {
    out.sql.append(script.substr(at, begin - at));
    // Each line of data (and the "\." line) becomes an empty line: the server's line numbers
    // still match the file's.
    for (std::size_t k = begin; k < end; ++k)
      if (script[k] == '\n') out.sql.push_back('\n');
    at = end;
  }
  out.sql.append(script.substr(at));
  return out;
}

bool is_comment_only(std::string_view script) {
  return split_sql(script).empty();
}

std::vector<std::string> leading_keywords(std::string_view st, std::size_t max) {
  std::vector<std::string> out;
  Lexer lx(st);
  while (out.size() < max) {
    const auto t = lx.next_meaningful();
    if (t.kind != Tok::kWord) break;
    out.push_back(upper(t.text));
  }
  return out;
}

std::vector<std::string_view> head_tokens(std::string_view st, std::size_t max) {
  std::vector<std::string_view> out;
  Lexer lx(st);
  while (out.size() < max) {
    const auto t = lx.next_meaningful();
    if (t.kind == Tok::kEnd || is_comment(t)) break;
    out.push_back(t.text);
  }
  return out;
}

namespace {
// Walks a statement's leading tokens, keyword by keyword.
struct Cursor {
  std::vector<std::string_view> t;
  std::size_t k = 0;

  bool next_is(std::string_view upper_word) {
    if (k < t.size() && is_word(t[k], upper_word)) {
      ++k;
      return true;
    }
    return false;
  }
  [[nodiscard]] bool at(std::string_view upper_word) const {
    return k < t.size() && is_word(t[k], upper_word);
  }
};
}  // namespace

std::optional<IndexStatement> parse_create_index(std::string_view statement) {
  Cursor c{head_tokens(statement, 16)};
  if (!c.next_is("CREATE")) return std::nullopt;
  c.next_is("UNIQUE");
  if (!c.next_is("INDEX")) return std::nullopt;
  IndexStatement out;
  out.concurrently = c.next_is("CONCURRENTLY");
  if (c.next_is("IF")) {
    if (!c.next_is("NOT") || !c.next_is("EXISTS")) return std::nullopt;
    out.if_not_exists = true;
  }
  if (c.k >= c.t.size() || c.at("ON")) return std::nullopt;  // unnamed index
  const auto name = c.t[c.k++];
  if (!c.next_is("ON")) return std::nullopt;
  c.next_is("ONLY");
  // [schema .] table: the index lives in the table's schema.
  if (c.k + 2 < c.t.size() && c.t[c.k + 1] == ".") {
    out.index = std::string(c.t[c.k]) + "." + std::string(name);
  } else {
    out.index = std::string(name);
  }
  return out;
}

namespace {
// "name" or schema.name (tokens as written) starting at t[k]; advances k.
std::optional<std::string> qualified_name(const std::vector<std::string_view>& t, std::size_t& k) {
  if (k >= t.size() || (!ident_start(t[k][0]) && t[k][0] != '"')) return std::nullopt;
  std::string name(t[k++]);
  if (k + 1 < t.size() && t[k] == ".") {
    name += "." + std::string(t[k + 1]);
    k += 2;
  }
  return name;
}

std::string fold_identifier(std::string_view token) {
  if (token.size() >= 2 && token.front() == '"') {
    std::string out;
    for (std::size_t i = 1; i + 1 < token.size(); ++i) {
      out += token[i];
      if (token[i] == '"') ++i;  // "" inside quotes
    }
    return out;
  }
  std::string out(token);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

namespace {
// TABLE, VIEW, SEQUENCE, MATERIALIZED VIEW (and, for DROP, INDEX) are relations; TYPE and DOMAIN
// are types. Empty for any other kind of object.
std::string object_kind(Cursor& c, bool index_too) {
  if (c.next_is("TABLE") || c.next_is("VIEW") || c.next_is("SEQUENCE") ||
      (index_too && c.next_is("INDEX")))
    return "relation";
  if (c.next_is("MATERIALIZED")) return c.next_is("VIEW") ? "relation" : "";
  if (c.next_is("TYPE") || c.next_is("DOMAIN")) return "type";
  if (c.next_is("SCHEMA")) return "schema";
  return "";
}

void skip_if_exists(Cursor& c) {
  if (c.next_is("IF")) {
    c.next_is("NOT");
    c.next_is("EXISTS");
  }
}
}  // namespace

std::optional<DdlEffect> parse_ddl_effect(std::string_view statement) {
  Cursor c{head_tokens(statement, 4096)};
  const auto& t = c.t;
  auto& k = c.k;
  if (c.next_is("CREATE")) {
    if (c.next_is("OR")) return std::nullopt;  // OR REPLACE: running it again is harmless
    c.next_is("UNLOGGED");
    c.next_is("TEMPORARY");
    const auto kind = object_kind(c, /*index_too=*/false);
    if (kind.empty()) return std::nullopt;
    skip_if_exists(c);
    const auto name = qualified_name(t, k);
    if (!name) return std::nullopt;
    return DdlEffect{DdlEffect::Action::kCreate, kind, *name, ""};
  }
  if (c.next_is("DROP")) {
    const auto kind = object_kind(c, /*index_too=*/true);
    if (kind.empty()) return std::nullopt;
    c.next_is("CONCURRENTLY");
    skip_if_exists(c);
    const auto name = qualified_name(t, k);
    if (!name || (k < t.size() && t[k] == ",")) return std::nullopt;  // one object only
    return DdlEffect{DdlEffect::Action::kDrop, kind, *name, ""};
  }
  if (c.next_is("ALTER") && c.next_is("TABLE")) {
    skip_if_exists(c);
    c.next_is("ONLY");
    const auto name = qualified_name(t, k);
    if (!name) return std::nullopt;
    DdlEffect e{DdlEffect::Action::kAddColumn, "relation", *name, ""};
    if (c.next_is("ADD")) {
      e.action = DdlEffect::Action::kAddColumn;
    } else if (c.next_is("DROP")) {
      e.action = DdlEffect::Action::kDropColumn;
    } else {
      return std::nullopt;
    }
    c.next_is("COLUMN");
    skip_if_exists(c);
    if (k >= t.size() || c.at("CONSTRAINT") || c.at("PRIMARY") || c.at("UNIQUE") || c.at("CHECK") ||
        c.at("FOREIGN") || c.at("EXCLUDE"))
      return std::nullopt;
    e.column = fold_identifier(t[k++]);
    // A single action only: "ADD COLUMN a int, ADD COLUMN b int" is not judged by its first
    // part (a comma inside parentheses, as in numeric(10,2), does not count).
    int depth = 0;
    for (std::size_t j = k; j < t.size(); ++j) {
      if (t[j] == "(") ++depth;
      if (t[j] == ")") --depth;
      if (t[j] == "," && depth == 0) return std::nullopt;
    }
    if (t.size() >= 4096) return std::nullopt;
    return e;
  }
  return std::nullopt;
}

TxControl transaction_control(std::string_view statement) {
  const auto t = head_tokens(statement, 3);
  if (t.empty()) return TxControl::kNone;
  const auto second = [&](std::string_view w) { return t.size() > 1 && is_word(t[1], w); };
  if (is_word(t[0], "SAVEPOINT") || is_word(t[0], "RELEASE")) return TxControl::kSavepoint;
  // ROLLBACK TO [SAVEPOINT] stays inside the transaction.
  if (is_word(t[0], "ROLLBACK") && second("TO")) return TxControl::kSavepoint;
  if (is_word(t[0], "BEGIN") || is_word(t[0], "COMMIT") || is_word(t[0], "END") ||
      is_word(t[0], "ROLLBACK") || is_word(t[0], "ABORT"))
    return TxControl::kBoundary;
  if ((is_word(t[0], "START") || is_word(t[0], "PREPARE")) && second("TRANSACTION"))
    return TxControl::kBoundary;
  return TxControl::kNone;
}

bool is_transaction_control(std::string_view statement) {
  return transaction_control(statement) == TxControl::kBoundary;
}

}  // namespace stepwise
