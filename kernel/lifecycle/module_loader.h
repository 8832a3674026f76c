// Loads a module's shared object with Boost.DLL, checks its ABI version and
// creates the module object. Nothing here throws; failures name the file.
#pragma once

#include <absl/status/statusor.h>

#include <boost/dll/shared_library.hpp>
#include <filesystem>
#include <functional>
#include <memory>

#include "telekern/module.h"

namespace telekern::kernel {

// Receives the library of a destroyed module object and the path it was
// loaded from, to unmap it once nothing runs its code (CodeRetirement).
using CodeSink =
    std::function<void(std::shared_ptr<boost::dll::shared_library>, std::filesystem::path)>;

// A module object together with the library that holds its code. Destroying it
// destroys the module first, then hands the library to its sink (or closes it
// at once without one). The libraries the module depends on (its protos, the
// SDK) stay mapped for good: see pin_loaded_libraries in module_loader.cc.
class LoadedModule {
 public:
  LoadedModule(std::shared_ptr<boost::dll::shared_library> library, std::unique_ptr<Module> module,
               std::filesystem::path file, std::filesystem::path loaded_from, AbiVersion abi,
               CodeSink sink);
  LoadedModule(LoadedModule&&) = default;
  LoadedModule& operator=(LoadedModule&&) = default;
  ~LoadedModule();

  Module& module() const { return *module_; }
  const std::filesystem::path& file() const { return file_; }
  AbiVersion abi() const { return abi_; }

 private:
  // Declared first so it is destroyed last.
  std::shared_ptr<boost::dll::shared_library> library_;
  std::unique_ptr<Module> module_;
  std::filesystem::path file_;
  std::filesystem::path loaded_from_;
  AbiVersion abi_;
  CodeSink sink_;
};

// Whether a module built for `module_abi` can run in this kernel; the error
// names both versions.
absl::Status check_abi(const AbiVersion& module_abi, const std::filesystem::path& file);

// Loads `file`. When `private_copy` is set, the file is copied there first and
// loaded from the copy, so a rebuilt .so at the same path is picked up by a
// reload while the old code is still mapped. `sink` takes the library when
// the module object is destroyed.
absl::StatusOr<LoadedModule> load_module(const std::filesystem::path& file,
                                         const std::filesystem::path& private_copy = {},
                                         CodeSink sink = {});

}  // namespace telekern::kernel
