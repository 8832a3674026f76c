// Example: connect to telekernd, optionally log in, print the daemon's info
// and its modules.  TELEKERN_ADDR / TELEKERN_API_KEY / TELEKERN_TOKEN apply;
//   telekern_example_info [USER PASSWORD]
#include <iostream>

#include "telekern/client.h"
#include "telekern/kernel/v1/kernel.grpc.pb.h"

int main(int argc, char** argv) {
  namespace kv1 = telekern::kernel::v1;
  telekern::Client client;  // options from the environment
  if (auto ready = client.wait_until_ready(std::chrono::seconds(10)); !ready.ok()) {
    std::cerr << ready.message() << "\n";
    return 1;
  }
  if (argc == 3) {
    auto token = client.login(argv[1], argv[2]);
    if (!token.ok()) {
      std::cerr << "login: " << token.status().message() << "\n";
      return 1;
    }
  }
  auto kernel = client.stub<kv1::Kernel>();
  kv1::GetInfoResponse info;
  grpc::Status status = kernel->GetInfo(client.context().get(), {}, &info);
  if (!status.ok()) {
    std::cerr << "GetInfo: " << status.error_message() << "\n";
    return 1;
  }
  std::cout << "telekernd " << info.version() << " at " << info.grpc_address() << ", generation "
            << info.generation() << "\n";
  kv1::ListModulesResponse modules;
  status = kernel->ListModules(client.context().get(), {}, &modules);
  if (!status.ok()) {
    std::cerr << "ListModules: " << status.error_message() << "\n";
    return 1;
  }
  for (const auto& module : modules.modules()) {
    std::cout << "module " << module.name() << " " << kv1::ModuleState_Name(module.state()) << "\n";
  }
  return 0;
}
