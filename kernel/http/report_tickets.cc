#include "kernel/http/report_tickets.h"

#include <absl/status/status.h>

#include <algorithm>

#include "kernel/auth/crypto.h"

namespace telekern::kernel::http {

ReportTickets::ReportTickets(std::chrono::seconds lifetime, size_t capacity)
    : lifetime_(lifetime), capacity_(std::max<size_t>(capacity, 1)) {}

void ReportTickets::drop_expired(Clock::time_point now) {
  std::erase_if(tickets_, [now](const auto& item) { return item.second.expires <= now; });
}

std::string ReportTickets::issue(Grant grant, Clock::time_point now) {
  std::string ticket = auth::base64url_encode(auth::random_bytes(32));
  std::lock_guard lock(mutex_);
  drop_expired(now);
  if (tickets_.size() >= capacity_) {
    auto oldest = std::min_element(
        tickets_.begin(), tickets_.end(),
        [](const auto& a, const auto& b) { return a.second.order < b.second.order; });
    tickets_.erase(oldest);
  }
  tickets_.insert_or_assign(ticket, Entry{std::move(grant), now + lifetime_, ++issued_});
  return ticket;
}

absl::StatusOr<ReportTickets::Grant> ReportTickets::redeem(std::string_view ticket,
                                                           std::string_view path,
                                                           Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto found = tickets_.find(std::string(ticket));
  if (found == tickets_.end()) {
    return absl::UnauthenticatedError(
        "the report ticket is unknown, used or expired (each opens one report once, within a "
        "minute); open the report again from the console");
  }
  Entry entry = std::move(found->second);
  tickets_.erase(found);
  if (entry.expires <= now) {
    return absl::UnauthenticatedError(
        "the report ticket expired; open the report again from the console");
  }
  if (entry.grant.path != path) {
    return absl::UnauthenticatedError("the report ticket was issued for another report");
  }
  return entry.grant;
}

size_t ReportTickets::outstanding() const {
  std::lock_guard lock(mutex_);
  return tickets_.size();
}

}  // namespace telekern::kernel::http
