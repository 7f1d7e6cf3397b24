#pragma once
// Small text helpers shared by the core.
#include <string>
#include <string_view>
#include <vector>

namespace stepwise {
[[nodiscard]] bool is_valid_utf8(std::string_view s);
[[nodiscard]] bool is_blank(std::string_view s);  // empty or only white space
[[nodiscard]] std::string_view trim(std::string_view s);
[[nodiscard]] std::vector<std::string_view> split_lines(std::string_view s);
// The lines with their '\n' (the last one without, when the text does not end in one): the
// pieces concatenate back to the text, for converters that copy lines through.
[[nodiscard]] std::vector<std::string_view> split_lines_keeping_ends(std::string_view s);
// ASCII letters lowered (SQL keywords, tool annotations); other bytes as they are.
[[nodiscard]] std::string to_lower_ascii(std::string_view s);
// Printable form of an untrusted string for an error message: quoted, control bytes escaped,
// cut at max_chars.
[[nodiscard]] std::string printable(std::string_view s, std::size_t max_chars = 80);
// A name as it may appear in a one-line message: as is when printable, else printable(name).
[[nodiscard]] std::string display_name(std::string_view name);
// Control characters escaped (\n, \x01 ...), cut at max_chars: untrusted text in one line.
[[nodiscard]] std::string one_line(std::string_view s, std::size_t max_chars = 500);
// Splits "CONSTRAINT a CHECK (...) CONSTRAINT b CHECK (...)" / "x int, y text" at `sep` where
// it stands outside parentheses and single quotes; leading blanks trimmed. A separator with a
// word in it starts the next piece ("CONSTRAINT b ...").
[[nodiscard]] std::vector<std::string> split_top_level(std::string_view s, std::string_view sep);
// First line of a multi-line message.
[[nodiscard]] std::string first_line(std::string_view s);
}  // namespace stepwise
