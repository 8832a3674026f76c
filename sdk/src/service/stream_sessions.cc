#include "telekern/service/stream_sessions.h"

namespace telekern {

StreamSessions::StreamSessions(std::string stopping_message)
    : message_(std::move(stopping_message)) {}

StreamSessions::~StreamSessions() { stop(); }

bool StreamSessions::spawn(std::function<void(std::stop_token)> loop,
                           std::function<void()> cancel) {
  std::vector<std::thread> done;
  {
    std::lock_guard lock(mutex_);
    if (stop_.stop_requested()) return false;
    done.swap(finished_);
    uint64_t id = ++next_id_;
    auto& session = sessions_[id];
    session.cancel = std::move(cancel);
    session.thread = std::thread([this, id, loop = std::move(loop), stop = stop_.get_token()] {
      loop(stop);
      finished(id);
    });
  }
  for (auto& thread : done) thread.join();
  return true;
}

std::optional<StreamSessions::Entry> StreamSessions::enter(std::function<void()> cancel) {
  std::lock_guard lock(mutex_);
  if (stop_.stop_requested()) return std::nullopt;
  uint64_t id = ++next_id_;
  sessions_[id].cancel = std::move(cancel);
  return Entry{id, stop_.get_token()};
}

void StreamSessions::leave(uint64_t id) {
  std::lock_guard lock(mutex_);
  if (sessions_.erase(id) > 0) idle_.notify_all();
}

void StreamSessions::finished(uint64_t id) {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;  // stop() took it and joins it
  finished_.push_back(std::move(it->second.thread));
  sessions_.erase(it);
  idle_.notify_all();
}

void StreamSessions::end_all() {
  std::lock_guard lock(mutex_);
  stop_.request_stop();
}

void StreamSessions::reopen() {
  std::lock_guard lock(mutex_);
  if (stop_.stop_requested()) stop_ = std::stop_source();
}

bool StreamSessions::ending() const {
  std::lock_guard lock(mutex_);
  return stop_.stop_requested();
}

size_t StreamSessions::active() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

void StreamSessions::stop() {
  std::vector<std::function<void()>> cancels;
  {
    std::lock_guard lock(mutex_);
    stop_.request_stop();
    for (auto& [_, session] : sessions_) cancels.push_back(session.cancel);
  }
  for (auto& cancel : cancels) cancel();
  std::vector<std::thread> threads;
  {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return sessions_.empty(); });
    threads.swap(finished_);
  }
  for (auto& thread : threads) {
    if (thread.joinable()) thread.join();
  }
}

}  // namespace telekern
