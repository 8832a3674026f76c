// How many terminal columns text takes, so tables line up when cells hold
// non-ASCII text: CJK and other wide characters take two columns, combining
// marks none, every other character one (not one per UTF-8 byte).
#pragma once

#include <string>
#include <string_view>

namespace telekern::shell {

size_t display_width(std::string_view utf8);
// `text` followed by spaces up to `columns` display columns.
std::string pad_to_width(std::string text, size_t columns);
// The longest prefix of `utf8` that fits `columns`, cut between characters.
std::string prefix_of_width(std::string_view utf8, size_t columns);

}  // namespace telekern::shell
