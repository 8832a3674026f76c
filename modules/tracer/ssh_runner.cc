#include "ssh_runner.h"

namespace telekern::tracer {

absl::StatusOr<std::unique_ptr<CommandRunner>> make_ssh_runner(const v1::SshOptions&,
                                                               const TracerOptions&,
                                                               const std::filesystem::path&,
                                                               uint32_t) {
  return absl::UnimplementedError("ssh source not built yet");
}

}  // namespace telekern::tracer
