// Running telesh against a test daemon, the way the shell tests do.
#pragma once

#include <string>

#include "tests/support/process.h"
#include "tests/support/telekernd.h"

namespace telekern::testing {

// `text` as one sh word: 'it'\''s'.
std::string shell_quote(const std::string& text);
// build/bin/telesh
std::string telesh_binary();

struct TeleshRun {
  std::string env;       // "NAME=value ..." put before the command
  std::string redirect;  // e.g. "2>&1" or "2>/dev/null"; stdin is always /dev/null
};

// `telesh --addr <daemon> <arguments>` without colours.
CommandResult run_telesh(const Telekernd& daemon, const std::string& arguments,
                         const TeleshRun& how = {});
// `telesh -c '<commands>'`: a batch of shell commands.
CommandResult telesh_commands(const Telekernd& daemon, const std::string& commands);

}  // namespace telekern::testing
