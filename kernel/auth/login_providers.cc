#include "kernel/auth/login_providers.h"

#include <algorithm>
#include <mutex>

namespace telekern::kernel::auth {

void LoginProviders::add(const void* owner, std::string module, const LoginProvider& provider) {
  std::unique_lock lock(mutex_);
  entries_.push_back({owner, std::move(module), &provider});
}

void LoginProviders::remove_all(const void* owner) {
  // The exclusive lock waits for every find() holding the shared one.
  std::unique_lock lock(mutex_);
  std::erase_if(entries_, [owner](const Entry& entry) { return entry.owner == owner; });
}

std::optional<LoginProviders::Found> LoginProviders::find(std::string_view user) const {
  std::shared_lock lock(mutex_);
  for (const auto& entry : entries_) {
    std::optional<LoginCredentials> credentials;
    try {
      credentials = entry.provider->find_login(user);
    } catch (...) {
      continue;
    }
    if (credentials) return Found{entry.module, std::move(*credentials)};
  }
  return std::nullopt;
}

size_t LoginProviders::size() const {
  std::shared_lock lock(mutex_);
  return entries_.size();
}

}  // namespace telekern::kernel::auth
