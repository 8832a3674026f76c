// The ssh source's runner: one libssh2 session to the bastion carrying a
// channel per command, so max_parallel > 1 works with password auth (the
// seed needed --max-parallel 1 there). Host keys are checked against
// known_hosts (accept_new records a first contact); ssh_setup_keys makes a
// key, installs it over the password session and uses it from then on.
#pragma once

#include <absl/status/statusor.h>

#include <filesystem>
#include <memory>

#include "command_source.h"
#include "telekern/tracer/v1/tracer.pb.h"
#include "tracer_options.h"

namespace telekern::tracer {

absl::StatusOr<std::unique_ptr<CommandRunner>> make_ssh_runner(
    const v1::SshOptions& ssh, const TracerOptions& options, const std::filesystem::path& data_dir,
    uint32_t max_parallel);

}  // namespace telekern::tracer
