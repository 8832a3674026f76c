// Report tickets: how a browser tab opens a module's HTML report (a GET
// route answering text/html, e.g. /bench/runs/ID/report) without the
// console's token in its URL. The console asks for a ticket with its own
// credentials; the kernel keeps those credentials for at most a minute,
// bound to that one path, and answers an unguessable ticket (256 random
// bits). The tab's GET of path?ticket=T is then made with the kept
// credentials, once: the call gate still checks them as for the console
// itself (expiry, role), and a used, expired or foreign-path ticket is
// refused. Tickets live in memory only; a restart voids them.
#pragma once

#include <absl/status/statusor.h>

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace telekern::kernel::http {

class ReportTickets {
 public:
  using Clock = std::chrono::steady_clock;

  // The credentials a ticket lends its one GET.
  struct Grant {
    std::string path;
    std::string api_key;        // X-API-Key of the issuing call, may be empty
    std::string authorization;  // Authorization of the issuing call, may be empty
  };

  explicit ReportTickets(std::chrono::seconds lifetime = std::chrono::seconds(60),
                         size_t capacity = 1024);

  // A ticket for one GET of `grant.path` until now + lifetime. At capacity
  // the oldest outstanding ticket is dropped.
  std::string issue(Grant grant, Clock::time_point now = Clock::now());

  // The grant of `ticket` when it was issued for `path`, has not expired and
  // was not used; consumes it either way once found. UNAUTHENTICATED says
  // which check failed.
  absl::StatusOr<Grant> redeem(std::string_view ticket, std::string_view path,
                               Clock::time_point now = Clock::now());

  std::chrono::seconds lifetime() const { return lifetime_; }
  size_t outstanding() const;

 private:
  struct Entry {
    Grant grant;
    Clock::time_point expires;
    uint64_t order;
  };
  void drop_expired(Clock::time_point now);

  const std::chrono::seconds lifetime_;
  const size_t capacity_;
  mutable std::mutex mutex_;
  uint64_t issued_ = 0;
  std::unordered_map<std::string, Entry> tickets_;
};

}  // namespace telekern::kernel::http
