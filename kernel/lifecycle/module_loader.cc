#include "kernel/lifecycle/module_loader.h"

#include <dlfcn.h>
#include <link.h>

#include <set>
#include <system_error>
#include <vector>

#include "telekern/strings.h"

namespace telekern::kernel {
namespace {

std::set<std::string> loaded_libraries() {
  std::set<std::string> libraries;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') {
          static_cast<std::set<std::string>*>(out)->emplace(info->dlpi_name);
        }
        return 0;
      },
      &libraries);
  return libraries;
}

// Marks the libraries a module's load brought in (those not in `before`),
// but not the module's copy itself, as never to be unloaded. Generated
// protobuf code registers its descriptors in a process-wide pool and cannot
// register twice, so a module's proto library (and whatever else it pulled
// in) must stay. The module's copy goes once nothing runs its code
// (CodeRetirement), so reloads do not add up; other modules' copies are left
// alone too.
void pin_new_dependencies(const std::set<std::string>& before, const std::string& copy) {
  for (const auto& library : loaded_libraries()) {
    if (library == copy || before.count(library) > 0) continue;
    if (void* handle = dlopen(library.c_str(), RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE))
      dlclose(handle);
  }
}

}  // namespace

LoadedModule::LoadedModule(std::shared_ptr<boost::dll::shared_library> library,
                           std::unique_ptr<Module> module, std::filesystem::path file,
                           std::filesystem::path loaded_from, AbiVersion abi, CodeSink sink)
    : library_(std::move(library)),
      module_(std::move(module)),
      file_(std::move(file)),
      loaded_from_(std::move(loaded_from)),
      abi_(abi),
      sink_(std::move(sink)) {}

LoadedModule::~LoadedModule() {
  // The module's code lives in library_: destroy the object while it is mapped.
  module_.reset();
  if (sink_ && library_) sink_(std::move(library_), loaded_from_);
}

absl::Status check_abi(const AbiVersion& module_abi, const std::filesystem::path& file) {
  if (module_abi.major != kAbiVersion.major || module_abi.minor > kAbiVersion.minor) {
    return absl::FailedPreconditionError(str_cat(
        file.string(), ": module was built for ABI ", module_abi.major, ".", module_abi.minor,
        "; this kernel speaks ABI ", kAbiVersion.major, ".", kAbiVersion.minor,
        " (major must match, minor may be older): rebuild the module against this SDK"));
  }
  return absl::OkStatus();
}

absl::StatusOr<LoadedModule> load_module(const std::filesystem::path& file,
                                         const std::filesystem::path& private_copy, CodeSink sink) {
  std::error_code error;
  if (!std::filesystem::exists(file, error)) {
    return absl::NotFoundError(str_cat(file.string(), ": no such module file"));
  }
  std::filesystem::path load_path = file;
  if (!private_copy.empty()) {
    std::filesystem::create_directories(private_copy.parent_path(), error);
    std::filesystem::copy_file(file, private_copy,
                               std::filesystem::copy_options::overwrite_existing, error);
    if (error) {
      return absl::InternalError(str_cat(file.string(), ": cannot copy to ", private_copy.string(),
                                         ": ", error.message()));
    }
    load_path = private_copy;
  }
  // The loader records the path as given; absolute, it names the copy for good.
  load_path = std::filesystem::absolute(load_path);

  auto before = loaded_libraries();
  auto library = std::make_shared<boost::dll::shared_library>();
  boost::system::error_code load_error;
  library->load(boost::dll::fs::path(load_path.string()), boost::dll::load_mode::rtld_now,
                load_error);
  if (load_error) {
    return absl::FailedPreconditionError(
        str_cat(file.string(), ": cannot load shared object: ", load_error.message()));
  }
  pin_new_dependencies(before, load_path.string());
  if (!library->has(kModuleAbiSymbol)) {
    return absl::FailedPreconditionError(
        str_cat(file.string(), ": not a telekern module (no '", kModuleAbiSymbol,
                "' symbol; modules register with TELEKERN_MODULE)"));
  }
  AbiVersion abi = library->get_alias<ModuleAbiFunction>(kModuleAbiSymbol)();
  if (auto status = check_abi(abi, file); !status.ok()) return status;
  if (!library->has(kModuleCreateSymbol)) {
    return absl::FailedPreconditionError(
        str_cat(file.string(), ": module exports no '", kModuleCreateSymbol, "' factory"));
  }
  std::unique_ptr<Module> module;
  try {
    module = library->get_alias<ModuleCreateFunction>(kModuleCreateSymbol)();
  } catch (const std::exception& exception) {
    return absl::InternalError(
        str_cat(file.string(), ": module factory threw: ", exception.what()));
  }
  if (!module) {
    return absl::InternalError(str_cat(file.string(), ": module factory returned null"));
  }
  return LoadedModule(std::move(library), std::move(module), file, load_path, abi, std::move(sink));
}

}  // namespace telekern::kernel
