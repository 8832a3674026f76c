#include "kernel/http/report_tickets.h"

#include <gtest/gtest.h>

#include <set>

namespace telekern::kernel::http {
namespace {

using std::chrono::seconds;

const std::string kPath = "/bench/runs/exp-1/report";

ReportTickets::Grant grant(std::string path = kPath) {
  return {std::move(path), "", "Bearer header.payload.signature"};
}

TEST(ReportTickets, RedeemsOnceForItsPathWithTheIssuersCredentials) {
  ReportTickets tickets(seconds(60));
  auto now = ReportTickets::Clock::now();
  std::string ticket = tickets.issue(grant(), now);
  EXPECT_GE(ticket.size(), 43u);  // 256 bits, base64url
  EXPECT_EQ(
      ticket.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);
  auto redeemed = tickets.redeem(ticket, kPath, now + seconds(1));
  ASSERT_TRUE(redeemed.ok()) << redeemed.status();
  EXPECT_EQ(redeemed->path, kPath);
  EXPECT_EQ(redeemed->authorization, "Bearer header.payload.signature");
  EXPECT_TRUE(redeemed->api_key.empty());

  auto again = tickets.redeem(ticket, kPath, now + seconds(2));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(again.status().message().find("used or expired"), std::string::npos);
  EXPECT_EQ(tickets.outstanding(), 0u);
}

TEST(ReportTickets, RefusesAnotherPathAndSpendsTheTicket) {
  ReportTickets tickets(seconds(60));
  auto now = ReportTickets::Clock::now();
  std::string ticket = tickets.issue(grant(), now);
  auto other = tickets.redeem(ticket, "/bench/runs/exp-2/report", now);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(other.status().message().find("another report"), std::string::npos);
  EXPECT_FALSE(tickets.redeem(ticket, kPath, now).ok());  // no second guess
}

TEST(ReportTickets, ExpiresAfterItsLifetime) {
  ReportTickets tickets(seconds(60));
  auto now = ReportTickets::Clock::now();
  std::string late = tickets.issue(grant(), now);
  std::string in_time = tickets.issue(grant(), now);
  EXPECT_TRUE(tickets.redeem(in_time, kPath, now + seconds(59)).ok());
  auto expired = tickets.redeem(late, kPath, now + seconds(60));
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(expired.status().message().find("expired"), std::string::npos);
  // Expired tickets are dropped when the next one is issued.
  tickets.issue(grant(), now);
  tickets.issue(grant(), now + seconds(61));
  EXPECT_EQ(tickets.outstanding(), 1u);
}

TEST(ReportTickets, UnknownTicketsAreRefused) {
  ReportTickets tickets;
  auto now = ReportTickets::Clock::now();
  EXPECT_FALSE(tickets.redeem("", kPath, now).ok());
  EXPECT_FALSE(tickets.redeem("bm90LWEtdGlja2V0", kPath, now).ok());
}

TEST(ReportTickets, AtCapacityTheOldestGoes) {
  ReportTickets tickets(seconds(60), 3);
  auto now = ReportTickets::Clock::now();
  std::vector<std::string> issued;
  for (int i = 0; i < 4; ++i) issued.push_back(tickets.issue(grant(), now + seconds(i)));
  EXPECT_EQ(tickets.outstanding(), 3u);
  EXPECT_FALSE(tickets.redeem(issued[0], kPath, now + seconds(5)).ok());
  for (int i = 1; i < 4; ++i) EXPECT_TRUE(tickets.redeem(issued[i], kPath, now + seconds(5)).ok());
}

TEST(ReportTickets, TicketsDoNotRepeat) {
  ReportTickets tickets(seconds(60), 10'000);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(seen.insert(tickets.issue(grant())).second);
}

}  // namespace
}  // namespace telekern::kernel::http
