#include "stepwise/sql_split.hpp"

#include <array>
#include <cctype>

#include "stepwise/text.hpp"

namespace stepwise {
namespace {

bool ident_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool ident_char(char c) {
  return ident_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '$';
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Scans one script; calls on_statement for each statement.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  std::vector<Statement> run() {
    std::size_t start = 0;
    int start_line = 1;
    int line = 1;
    int paren = 0;
    int begin_depth = 0;
    std::vector<std::string> words;  // leading words of the current statement (up to 4)
    const auto flush = [&](std::size_t end) {
      auto piece = s_.substr(start, end - start);
      const auto text = trim(piece);
      if (!text.empty() && !is_comment_only_text(text)) {
        // Line of the first non-blank character.
        int l = start_line;
        for (std::size_t k = start; k < start + (text.data() - piece.data()); ++k)
          if (s_[k] == '\n') ++l;
        out_.push_back({text, l});
      }
      words.clear();
      paren = 0;
      begin_depth = 0;
    };
    std::size_t i = 0;
    const std::size_t n = s_.size();
    while (i < n) {
      const char c = s_[i];
      if (c == '\n') {
        ++line;
        ++i;
      } else if (c == '-' && i + 1 < n && s_[i + 1] == '-') {
        while (i < n && s_[i] != '\n') ++i;
      } else if (c == '/' && i + 1 < n && s_[i + 1] == '*') {
        int depth = 0;
        while (i < n) {
          if (s_[i] == '/' && i + 1 < n && s_[i + 1] == '*') {
            ++depth;
            i += 2;
          } else if (s_[i] == '*' && i + 1 < n && s_[i + 1] == '/') {
            i += 2;
            if (--depth == 0) break;
          } else {
            if (s_[i] == '\n') ++line;
            ++i;
          }
        }
      } else if (c == '\'') {
        const bool backslash_escapes =
            i > 0 && (s_[i - 1] == 'e' || s_[i - 1] == 'E') && (i < 2 || !ident_char(s_[i - 2]));
        i = skip_quoted(i, '\'', backslash_escapes, line);
      } else if (c == '"') {
        i = skip_quoted(i, '"', false, line);
      } else if (c == '$' && (i == 0 || !ident_char(s_[i - 1]))) {
        i = skip_dollar(i, line);
      } else if (c == '(') {
        ++paren;
        ++i;
      } else if (c == ')') {
        if (paren > 0) --paren;
        ++i;
      } else if (c == ';' && paren == 0 && begin_depth == 0) {
        flush(i);
        ++i;
        start = i;
        start_line = line;
      } else if (ident_start(c)) {
        std::size_t j = i;
        while (j < n && ident_char(s_[j])) ++j;
        const auto word = upper(s_.substr(i, j - i));
        if (words.size() < 4) words.push_back(word);
        if (is_routine(words)) {
          if (word == "BEGIN")
            ++begin_depth;
          else if (word == "CASE" && begin_depth > 0)
            ++begin_depth;
          else if (word == "END" && begin_depth > 0)
            --begin_depth;
        }
        i = j;
      } else {
        ++i;
      }
    }
    flush(n);
    return std::move(out_);
  }

 private:
  static bool is_routine(const std::vector<std::string>& w) {
    if (w.size() < 2 || w[0] != "CREATE") return false;
    std::size_t k = 1;
    if (w.size() >= 3 && w[1] == "OR" && w[2] == "REPLACE") k = 3;
    return k < w.size() && (w[k] == "FUNCTION" || w[k] == "PROCEDURE");
  }

  static bool is_comment_only_text(std::string_view t) {
    // After trimming, a piece made only of comments holds no statement.
    std::size_t i = 0;
    while (i < t.size()) {
      if (std::isspace(static_cast<unsigned char>(t[i]))) {
        ++i;
      } else if (t.substr(i, 2) == "--") {
        while (i < t.size() && t[i] != '\n') ++i;
      } else if (t.substr(i, 2) == "/*") {
        int depth = 0;
        while (i < t.size()) {
          if (t.substr(i, 2) == "/*") {
            ++depth;
            i += 2;
          } else if (t.substr(i, 2) == "*/") {
            i += 2;
            if (--depth == 0) break;
          } else {
            ++i;
          }
        }
      } else {
        return false;
      }
    }
    return true;
  }

  std::size_t skip_quoted(std::size_t i, char q, bool backslash, int& line) {
    ++i;
    while (i < s_.size()) {
      const char c = s_[i];
      if (c == '\n') ++line;
      if (backslash && c == '\\') {
        if (i + 1 < s_.size() && s_[i + 1] == '\n') ++line;
        i += 2;
        continue;
      }
      if (c == q) {
        if (i + 1 < s_.size() && s_[i + 1] == q) {
          i += 2;
          continue;
        }
        return i + 1;
      }
      ++i;
    }
    return i;
  }

  std::size_t skip_dollar(std::size_t i, int& line) {
    // $tag$ where tag is empty or an identifier without '$'.
    std::size_t j = i + 1;
    if (j < s_.size() && ident_start(s_[j])) {
      while (j < s_.size() && ident_char(s_[j]) && s_[j] != '$') ++j;
    }
    if (j >= s_.size() || s_[j] != '$') return i + 1;  // a positional parameter like $1
    const auto tag = s_.substr(i, j - i + 1);
    const auto close = s_.find(tag, j + 1);
    const auto end = close == std::string_view::npos ? s_.size() : close + tag.size();
    for (std::size_t k = j + 1; k < end; ++k)
      if (s_[k] == '\n') ++line;
    return end;
  }

  std::string_view s_;
  std::vector<Statement> out_;
};

}  // namespace

namespace {
// Index just past the (nested) block comment that starts at i.
std::size_t skip_block_comment(std::string_view st, std::size_t i) {
  int depth = 0;
  while (i < st.size()) {
    if (st.substr(i, 2) == "/*") {
      ++depth;
      i += 2;
    } else if (st.substr(i, 2) == "*/") {
      i += 2;
      if (--depth == 0) return i;
    } else {
      ++i;
    }
  }
  return i;
}
}  // namespace

std::vector<Statement> split_sql(std::string_view script) {
  return Scanner(script).run();
}

bool is_comment_only(std::string_view script) {
  return split_sql(script).empty();
}

std::vector<std::string> leading_keywords(std::string_view st, std::size_t max) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < st.size() && out.size() < max) {
    const char c = st[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (st.substr(i, 2) == "--") {
      while (i < st.size() && st[i] != '\n') ++i;
    } else if (st.substr(i, 2) == "/*") {
      i = skip_block_comment(st, i);
    } else if (ident_start(c)) {
      std::size_t j = i;
      while (j < st.size() && ident_char(st[j])) ++j;
      out.push_back(upper(st.substr(i, j - i)));
      i = j;
    } else {
      break;
    }
  }
  return out;
}

std::vector<std::string_view> head_tokens(std::string_view st, std::size_t max) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < st.size() && out.size() < max) {
    const char c = st[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (st.substr(i, 2) == "--") {
      while (i < st.size() && st[i] != '\n') ++i;
    } else if (st.substr(i, 2) == "/*") {
      i = skip_block_comment(st, i);
    } else if (c == '"') {
      std::size_t j = i + 1;
      while (j < st.size()) {
        if (st[j] == '"' && j + 1 < st.size() && st[j + 1] == '"') {
          j += 2;
        } else if (st[j] == '"') {
          ++j;
          break;
        } else {
          ++j;
        }
      }
      out.push_back(st.substr(i, j - i));
      i = j;
    } else if (ident_start(c)) {
      std::size_t j = i;
      while (j < st.size() && ident_char(st[j])) ++j;
      out.push_back(st.substr(i, j - i));
      i = j;
    } else {
      out.push_back(st.substr(i, 1));
      ++i;
    }
  }
  return out;
}

namespace {
bool is_word(std::string_view token, std::string_view upper_word) {
  if (token.size() != upper_word.size()) return false;
  for (std::size_t i = 0; i < token.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(token[i])) != upper_word[i]) return false;
  return true;
}

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
  if (k >= t.size() || (t[k].size() == 1 && !ident_start(t[k][0]) && t[k][0] != '"'))
    return std::nullopt;
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

bool is_transaction_control(std::string_view statement) {
  const auto t = head_tokens(statement, 3);
  if (t.empty()) return false;
  if (is_word(t[0], "BEGIN") || is_word(t[0], "COMMIT") || is_word(t[0], "END") ||
      is_word(t[0], "ROLLBACK") || is_word(t[0], "ABORT"))
    // ROLLBACK TO SAVEPOINT stays inside the transaction.
    return !(is_word(t[0], "ROLLBACK") && t.size() > 1 && is_word(t[1], "TO"));
  if (t.size() >= 2 && is_word(t[0], "START") && is_word(t[1], "TRANSACTION")) return true;
  if (t.size() >= 2 && is_word(t[0], "PREPARE") && is_word(t[1], "TRANSACTION")) return true;
  return false;
}

bool may_hold_transaction_control(std::string_view sql) {
  static constexpr std::string_view kWords[] = {"BEGIN", "COMMIT", "END",    "ROLLBACK",
                                                "ABORT", "START",  "PREPARE"};
  // A table instead of isalnum(): this runs over every byte of every embedded file at start-up.
  static constexpr auto kWordChar = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c)
      t[static_cast<std::size_t>(c)] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                       (c >= '0' && c <= '9') || c == '_' || c == '$' || c >= 0x80;
    return t;
  }();
  const auto word_char = [](char c) { return kWordChar[static_cast<unsigned char>(c)]; };
  std::size_t i = 0;
  while (i < sql.size()) {
    if (!word_char(sql[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < sql.size() && word_char(sql[j])) ++j;
    const auto word = sql.substr(i, j - i);
    if (word.size() >= 3 && word.size() <= 8)
      for (const auto k : kWords)
        if (is_word(word, k)) return true;
    i = j;
  }
  return false;
}

}  // namespace stepwise
