#include "stepwise/sql_split.hpp"

#include <cctype>

#include "stepwise/text.hpp"

namespace stepwise {
namespace {

bool ident_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool ident_char(char c) { return ident_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '$'; }

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
        const bool backslash_escapes = i > 0 && (s_[i - 1] == 'e' || s_[i - 1] == 'E') &&
                                       (i < 2 || !ident_char(s_[i - 2]));
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
          if (word == "BEGIN") ++begin_depth;
          else if (word == "CASE" && begin_depth > 0) ++begin_depth;
          else if (word == "END" && begin_depth > 0) --begin_depth;
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

std::vector<Statement> split_sql(std::string_view script) { return Scanner(script).run(); }

bool is_comment_only(std::string_view script) { return split_sql(script).empty(); }

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
      const auto e = st.find("*/", i + 2);
      i = e == std::string_view::npos ? st.size() : e + 2;
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

}  // namespace stepwise
