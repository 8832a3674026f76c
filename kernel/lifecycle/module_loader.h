// Loads a module's shared object with Boost.DLL, checks its ABI version and
// creates the module object. Nothing here throws; failures name the file.
#pragma once

#include <absl/status/statusor.h>

#include <boost/dll/shared_library.hpp>
#include <filesystem>
#include <memory>

#include "telekern/module.h"

namespace telekern::kernel {

// A module object together with the library that holds its code. Destroying it
// destroys the module first, then releases the library handle; the code itself
// stays mapped (see pin_loaded_libraries in module_loader.cc).
class LoadedModule {
 public:
  LoadedModule(boost::dll::shared_library library, std::unique_ptr<Module> module,
               std::filesystem::path file, AbiVersion abi);
  LoadedModule(LoadedModule&&) = default;
  LoadedModule& operator=(LoadedModule&&) = default;
  ~LoadedModule();

  Module& module() const { return *module_; }
  const std::filesystem::path& file() const { return file_; }
  AbiVersion abi() const { return abi_; }

 private:
  // Declared first so it is destroyed last.
  boost::dll::shared_library library_;
  std::unique_ptr<Module> module_;
  std::filesystem::path file_;
  AbiVersion abi_;
};

// Whether a module built for `module_abi` can run in this kernel; the error
// names both versions.
absl::Status check_abi(const AbiVersion& module_abi, const std::filesystem::path& file);

// Loads `file`. When `private_copy` is set, the file is copied there first and
// loaded from the copy, so a rebuilt .so at the same path is picked up by a
// reload while the old code is still mapped.
absl::StatusOr<LoadedModule> load_module(const std::filesystem::path& file,
                                         const std::filesystem::path& private_copy = {});

}  // namespace telekern::kernel
