// The login providers modules add through their context (the monitor's
// users): Login asks them, in the order they were added, for a user the
// kernel's auth.users does not have. A module's providers are removed before
// its stop() is called, so no lookup runs in a module that is going away.
#pragma once

#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "telekern/module.h"

namespace telekern::kernel::auth {

class LoginProviders {
 public:
  // `owner` identifies who added it (the module's context), for remove_all.
  void add(const void* owner, std::string module, const LoginProvider& provider);
  // Removes `owner`'s providers; waits for a lookup running in one of them.
  void remove_all(const void* owner);

  struct Found {
    std::string module;  // which module knows the user
    LoginCredentials credentials;
  };
  // The first provider's credentials for `user`. A provider that throws is
  // skipped (an exception never leaves a module's code into Login).
  std::optional<Found> find(std::string_view user) const;
  size_t size() const;

 private:
  struct Entry {
    const void* owner;
    std::string module;
    const LoginProvider* provider;
  };
  mutable std::shared_mutex mutex_;
  std::vector<Entry> entries_;
};

}  // namespace telekern::kernel::auth
