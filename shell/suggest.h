// "Did you mean": the known word nearest to a misspelt command, subcommand or
// flag, so usage errors can name the fix.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace telekern::shell {

// Edits (insert, delete, replace, swap of neighbours) that turn `a` into `b`.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate nearest to `word`, or "" when none is close enough to be a
// likely misspelling (about a third of the word's letters).
std::string nearest(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace telekern::shell
