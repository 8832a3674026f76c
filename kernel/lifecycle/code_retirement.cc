#include "kernel/lifecycle/code_retirement.h"

#include "kernel/lifecycle/stack_census.h"
#include "telekern/strings.h"

namespace telekern::kernel {
namespace {

// How long each thread gets to answer the census signal (a busy machine may
// not schedule it at once).
constexpr std::chrono::milliseconds kCensusTimeout{1000};
// A copy still referred to is looked at again after kRetry, and reported as
// retained after kAttemptsBeforeReport censuses; then looked at every kRecheck.
constexpr std::chrono::seconds kRetry{1};
constexpr int kAttemptsBeforeReport = 3;
constexpr std::chrono::seconds kRecheck{10};

}  // namespace

CodeRetirement::CodeRetirement(std::chrono::milliseconds grace, MetricsRegistry& metrics)
    : grace_(grace),
      log_(make_logger("kernel")),
      released_(metrics.counter("telekern_module_copies_total",
                                "Module copies unmapped after their instance went (outcome "
                                "released), or kept because something still refers to them "
                                "(outcome retained)",
                                {"outcome"})) {}

CodeRetirement::~CodeRetirement() {
  // At exit the copies stay mapped: threads the process is about to end may
  // still be inside them.
  std::lock_guard lock(mutex_);
  for (auto& entry : entries_) {
    [[maybe_unused]] auto* kept = new LibraryHandle(std::move(entry.library));
  }
}

void CodeRetirement::retire(std::string module, LibraryHandle library, std::filesystem::path copy) {
  if (!library) return;
  std::lock_guard lock(mutex_);
  entries_.push_back({{std::move(module), std::move(copy), std::chrono::system_clock::now(), ""},
                      std::move(library),
                      std::chrono::steady_clock::now() + grace_});
}

void CodeRetirement::collect(std::chrono::steady_clock::time_point now) {
  std::vector<Entry*> due;
  {
    std::lock_guard lock(mutex_);
    for (auto& entry : entries_) {
      if (entry.library && entry.next_check <= now) due.push_back(&entry);
    }
  }
  // Entries are only added at the back and removed below, on this thread.
  std::vector<Entry*> done;
  for (Entry* entry : due) {
    auto references = find_code_references(code_ranges(entry->info.copy), kCensusTimeout);
    std::string reason;
    if (!references.empty()) {
      const auto& first = references.front();
      reason = first.unanswered ? str_cat("thread ", first.thread, " (", first.thread_name,
                                          ") did not answer the stack census")
                                : str_cat("thread ", first.thread, " (", first.thread_name,
                                          ") still runs or refers to its code");
      if (references.size() > 1) reason += str_cat(" (and ", references.size() - 1, " more)");
    } else {
      entry->library.reset();  // dlclose
      if (library_ranges(entry->info.copy).empty()) {
        std::error_code ignored;
        std::filesystem::remove(entry->info.copy, ignored);
        released_.with({"released"}).inc();
        log_->debug("module '{}': copy {} unmapped", entry->info.module, entry->info.copy.string());
        done.push_back(entry);
        continue;
      }
      reason =
          "still mapped after dlclose: the library is marked NODELETE (STB_GNU_UNIQUE symbols; "
          "build modules with telekern_add_module, which passes -fno-gnu-unique)";
    }
    std::lock_guard lock(mutex_);
    entry->info.reason = reason;
    bool closed = !entry->library;  // closed yet still mapped: nothing more to try
    if (!closed && ++entry->attempts < kAttemptsBeforeReport) {
      entry->next_check = now + kRetry;
      continue;
    }
    entry->next_check = now + kRecheck;
    if (!entry->reported) {
      entry->reported = true;
      released_.with({"retained"}).inc();
      log_->warn("module '{}': copy {} kept mapped: {}", entry->info.module,
                 entry->info.copy.string(), reason);
    }
  }
  std::lock_guard lock(mutex_);
  std::erase_if(entries_, [&](const Entry& entry) {
    return std::find(done.begin(), done.end(), &entry) != done.end();
  });
}

std::vector<RetainedCode> CodeRetirement::retained() const {
  std::lock_guard lock(mutex_);
  std::vector<RetainedCode> out;
  for (const auto& entry : entries_) {
    if (entry.reported) out.push_back(entry.info);
  }
  return out;
}

size_t CodeRetirement::mapped() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace telekern::kernel
