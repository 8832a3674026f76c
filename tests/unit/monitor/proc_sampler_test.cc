// The agent's sampler over fixed /proc and /sys files: CPU % from jiffy
// differences, memory from MemAvailable, disk and network rates.
#include "proc_sampler.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/process.h"

namespace telekern::monitor {
namespace {

void write(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

TEST(ProcSamplerTest, RatesFromTwoReads) {
  testing::TempDir dir("monitor-proc");
  auto proc = dir.path() / "proc";
  auto sys = dir.path() / "sys";
  std::filesystem::create_directories(sys / "block" / "sda");
  write(proc / "meminfo", "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 250 kB\n");
  write(proc / "loadavg", "0.50 0.25 0.10 1/100 1234\n");
  auto stat = [&](int busy, int idle) {
    write(proc / "stat", "cpu  " + std::to_string(busy) + " 0 0 " + std::to_string(idle) +
                             " 0 0 0 0 0 0\ncpu0 " + std::to_string(busy) + " 0 0 " +
                             std::to_string(idle) + " 0 0 0 0 0 0\nintr 1\n");
  };
  auto disks = [&](int read_sectors, int write_sectors) {
    write(proc / "diskstats", "   8       0 sda 1 0 " + std::to_string(read_sectors) +
                                  " 0 1 0 " + std::to_string(write_sectors) +
                                  " 0 0 0 0\n   8       1 sda1 1 0 999999 0 1 0 999999 0 0 0 0\n");
  };
  auto net = [&](long rx, long tx) {
    write(proc / "net" / "dev",
          "Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n"
          "    lo: 999999 1 0 0 0 0 0 0 999999 1 0 0 0 0 0 0\n"
          "  eth0: " + std::to_string(rx) + " 1 0 0 0 0 0 0 " + std::to_string(tx) +
          " 1 0 0 0 0 0 0\n");
  };
  stat(100, 100);
  disks(0, 0);
  net(0, 0);
  ProcSampler sampler(proc.string(), sys.string());
  auto t0 = std::chrono::steady_clock::time_point{};
  auto first = sampler.sample(t0);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->cpu_percent(), 0);
  EXPECT_DOUBLE_EQ(first->memory_percent(), 75);
  EXPECT_DOUBLE_EQ(first->load1(), 0.5);
  stat(175, 125);                    // 75 busy of 100
  disks(2 * 1000000 / 512 * 2, 0);   // 2 MB over 2 s... in sectors
  net(2'000'000, 500'000);           // bytes over 2 s
  auto second = sampler.sample(t0 + std::chrono::seconds(2));
  ASSERT_TRUE(second.ok());
  EXPECT_DOUBLE_EQ(second->cpu_percent(), 75);
  ASSERT_EQ(second->cores_size(), 1);
  EXPECT_DOUBLE_EQ(second->cores(0).cpu_percent(), 75);
  EXPECT_NEAR(second->disk_read_mbps(), 2.0, 0.01);
  EXPECT_EQ(second->disk_write_mbps(), 0);
  EXPECT_NEAR(second->network_rx_mbps(), 8.0, 1e-9);  // 1 MB/s = 8 Mbit/s
  EXPECT_NEAR(second->network_tx_mbps(), 2.0, 1e-9);
  ASSERT_EQ(second->network_devices_size(), 1);  // lo skipped
  EXPECT_EQ(second->network_devices(0).device(), "eth0");
}

TEST(ProcSamplerTest, ThisHostGivesPlausibleValues) {
  ProcSampler sampler("/proc", "/sys");
  auto now = std::chrono::steady_clock::now();
  ASSERT_TRUE(sampler.sample(now).ok());
  auto sample = sampler.sample(now + std::chrono::seconds(1));
  ASSERT_TRUE(sample.ok()) << sample.status();
  EXPECT_GE(sample->cpu_percent(), 0);
  EXPECT_LE(sample->cpu_percent(), 100);
  EXPECT_GT(sample->memory_percent(), 0);
  EXPECT_GT(sample->cores_size(), 0);
}

}  // namespace
}  // namespace telekern::monitor
