#include "stepwise/redact.hpp"

#include <cctype>

namespace stepwise {
namespace {

constexpr std::string_view kMask = "***";

bool ieq(char a, char b) {
  return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
}

bool istarts(std::string_view s, std::size_t at, std::string_view word) {
  if (at + word.size() > s.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i)
    if (!ieq(s[at + i], word[i])) return false;
  return true;
}

// "scheme://user:password@host" -> "scheme://***@host": the whole userinfo, since a user name
// may be a password typed in the wrong place. The userinfo runs from "://" to the last '@'
// before any '/', so a password may hold '@', '?', '#', quotes or spaces (libpq stops at the
// first '@': masking to the last one also hides what it would read as a host). An '@' after
// the first '/' in the same word may mean a '/' in the password (libpq then reads part of it as
// a port or database name): masked up to that '@' too (an '@' in a query value is masked with
// it: better too much than too little).
std::string mask_userinfo(std::string_view in) {
  std::string out;
  std::size_t i = 0;
  while (i < in.size()) {
    const auto sep = in.find("://", i);
    if (sep == std::string_view::npos) break;
    const auto auth_start = sep + 3;
    std::size_t end = std::string_view::npos;
    std::size_t k = auth_start;
    for (; k < in.size() && in[k] != '/' && in[k] != '\n'; ++k)
      if (in[k] == '@') end = k;
    if (k < in.size() && in[k] == '/') {
      for (; k < in.size() && !std::isspace(static_cast<unsigned char>(in[k])) && in[k] != '"' &&
             in[k] != '\'';
           ++k)
        if (in[k] == '@') end = k;
    }
    out.append(in.substr(i, auth_start - i));
    if (end != std::string_view::npos) {
      out.append(kMask);
      i = end;  // continue at the '@'
    } else {
      i = auth_start;
    }
  }
  out.append(in.substr(i));
  return out;
}

// password=value / password = 'va lue' / ?password=value& / sslpassword=... / password: value
// -> mask the value.
std::string mask_parameters(std::string_view in) {
  std::string out;
  std::size_t i = 0;
  while (i < in.size()) {
    if (istarts(in, i, "password")) {
      std::size_t j = i + 8;
      while (j < in.size() && (in[j] == ' ' || in[j] == '\t')) ++j;
      // "password=..." as libpq writes it, "password: ..." as in YAML or a mistyped key/value.
      if (j < in.size() && (in[j] == '=' || in[j] == ':') &&
          !(in[j] == ':' && j + 2 < in.size() && in[j + 1] == '/' && in[j + 2] == '/')) {
        ++j;
        while (j < in.size() && (in[j] == ' ' || in[j] == '\t')) ++j;
        out.append(in.substr(i, j - i));
        out.append(kMask);
        if (j < in.size() && in[j] == '\'') {  // quoted keyword value, with \' escapes
          ++j;
          while (j < in.size() && in[j] != '\'') j += (in[j] == '\\' && j + 1 < in.size()) ? 2 : 1;
          if (j < in.size()) ++j;
        } else {
          while (j < in.size() && !std::isspace(static_cast<unsigned char>(in[j])) &&
                 in[j] != '&' && in[j] != '"' && in[j] != '#')
            ++j;
        }
        i = j;
        continue;
      }
    }
    out.push_back(in[i]);
    ++i;
  }
  return out;
}

void replace_all(std::string& s, std::string_view what) {
  if (what.empty()) return;
  std::size_t pos = 0;
  while ((pos = s.find(what, pos)) != std::string::npos) {
    s.replace(pos, what.size(), kMask);
    pos += kMask.size();
  }
}

}  // namespace

std::string redact(std::string_view text, const std::vector<std::string>& secrets) {
  std::string out = mask_parameters(mask_userinfo(text));
  for (const auto& secret : secrets) {
    // Very short secrets would mangle ordinary words; the patterns above still mask them.
    if (secret.size() >= 3) replace_all(out, secret);
  }
  return out;
}

}  // namespace stepwise
