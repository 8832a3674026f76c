#include "consume_fanout.h"

#include <grpcpp/client_context.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "telekern/strings.h"

namespace telekern::proxy {
namespace {

using broker::v1::ConsumeRequest;
using broker::v1::ConsumeResponse;

constexpr size_t kQueuedMessages = 16;
constexpr auto kOwnerCheck = std::chrono::milliseconds(200);

struct Feed {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::pair<size_t, ConsumeResponse>> queue;  // (reader, message)
  size_t open = 0;
  bool closing = false;
  std::optional<size_t> failed;  // a reader whose upstream ended its stream with an error
};

struct Reader {
  std::shared_ptr<Upstream> upstream;
  std::set<uint32_t> partitions;  // the ones it serves for this stream
  grpc::ClientContext context;
  grpc::Status status;
  std::jthread thread;
};

// The upstream serving each partition, grouped by upstream.
absl::StatusOr<std::map<std::string, std::pair<std::shared_ptr<Upstream>, std::set<uint32_t>>>>
owners(ProxyEngine& engine, const std::string& topic, uint32_t partitions) {
  std::map<std::string, std::pair<std::shared_ptr<Upstream>, std::set<uint32_t>>> out;
  for (uint32_t p = 0; p < partitions; ++p) {
    auto upstream = engine.router().route(topic, p);
    if (!upstream.ok()) return upstream.status();
    auto& slot = out[(*upstream)->address];
    slot.first = *upstream;
    slot.second.insert(p);
  }
  return out;
}

}  // namespace

absl::Status consume_fanout(ProxyEngine& engine, const ConsumeRequest& request,
                            StreamWriter<ConsumeResponse>& writer, std::stop_token stop) {
  if (request.topic().empty())
    return absl::InvalidArgumentError("consume needs a topic; give ConsumeRequest.topic");
  uint32_t partitions = engine.partitions_of(request.topic());
  uint64_t epoch = engine.epoch();
  auto placed = owners(engine, request.topic(), partitions);
  if (!placed.ok()) return placed.status();

  Feed feed;
  std::vector<std::unique_ptr<Reader>> readers;
  for (auto& [address, owned] : *placed) {
    auto reader = std::make_unique<Reader>();
    reader->upstream = owned.first;
    reader->partitions = owned.second;
    readers.push_back(std::move(reader));
  }
  feed.open = readers.size();
  for (size_t index = 0; index < readers.size(); ++index) {
    Reader* reader = readers[index].get();
    auto connection = engine.connection(reader->upstream->address);
    reader->upstream->in_flight.fetch_add(1);
    reader->upstream->calls.fetch_add(1);
    reader->thread = std::jthread([&feed, &request, reader, index, connection] {
      auto stream = connection->broker->Consume(&reader->context, request);
      {
        // close() may have cancelled before this call existed: cancel it now.
        std::lock_guard lock(feed.mutex);
        if (feed.closing) reader->context.TryCancel();
      }
      ConsumeResponse message;
      while (stream->Read(&message)) {
        std::unique_lock lock(feed.mutex);
        feed.changed.wait(lock,
                          [&] { return feed.closing || feed.queue.size() < kQueuedMessages; });
        if (feed.closing) break;
        feed.queue.emplace_back(index, std::move(message));
        message = ConsumeResponse();
        feed.changed.notify_all();
      }
      if (feed.closing) reader->context.TryCancel();
      reader->status = stream->Finish();
      reader->upstream->in_flight.fetch_sub(1);
      std::lock_guard lock(feed.mutex);
      --feed.open;
      if (!reader->status.ok() && !feed.closing && !feed.failed) feed.failed = index;
      feed.changed.notify_all();
    });
  }
  auto close = [&] {
    {
      std::lock_guard lock(feed.mutex);
      feed.closing = true;
      feed.changed.notify_all();
    }
    for (auto& reader : readers) reader->context.TryCancel();
    for (auto& reader : readers) reader->thread.join();
  };
  std::stop_callback wake(stop, [&] {
    std::lock_guard lock(feed.mutex);
    feed.changed.notify_all();
  });

  std::map<size_t, std::set<uint32_t>> assigned;  // per reader, only partitions it serves
  bool first = true;
  uint64_t delivered = 0;
  while (true) {
    std::pair<size_t, ConsumeResponse> next;
    {
      std::unique_lock lock(feed.mutex);
      feed.changed.wait_for(lock, kOwnerCheck, [&] {
        return stop.stop_requested() || !feed.queue.empty() || feed.open == 0 ||
               feed.failed.has_value();
      });
      if (stop.stop_requested()) {
        lock.unlock();
        close();
        return absl::CancelledError("consume ended: the client went away or the proxy stops");
      }
      if (feed.failed && feed.queue.empty()) {
        // One upstream's part of the topic is gone (e.g. it died): end the
        // whole stream so the client reconnects to the current owners
        // rather than silently reading only the rest.
        const Reader& failed = *readers[*feed.failed];
        lock.unlock();
        close();
        return absl::Status(static_cast<absl::StatusCode>(failed.status.error_code()),
                            str_cat("upstream ", failed.upstream->address, ": ",
                                    failed.status.error_message(), "; reconnect"));
      }
      if (feed.queue.empty()) {
        if (feed.open == 0) break;
        if (engine.epoch() == epoch) continue;
        lock.unlock();
        auto now = owners(engine, request.topic(), partitions);
        bool same = now.ok() && now->size() == placed->size();
        if (same) {
          for (const auto& [address, owned] : *now) {
            auto it = placed->find(address);
            same = same && it != placed->end() && it->second.second == owned.second;
          }
        }
        if (same) {
          epoch = engine.epoch();
          continue;
        }
        close();
        return absl::UnavailableError(str_cat(
            "the upstreams serving topic '", request.topic(),
            "' changed (failover, failback or membership); reconnect to consume from them"));
      }
      next = std::move(feed.queue.front());
      feed.queue.pop_front();
      feed.changed.notify_all();
    }
    auto& [index, message] = next;
    // One member name (the first upstream's) and the union of what each
    // upstream assigned among the partitions it serves.
    if (!first) message.clear_member();
    first = false;
    if (message.assigned_partitions_size() > 0) {
      std::set<uint32_t> mine;
      for (uint32_t p : message.assigned_partitions()) {
        if (readers[index]->partitions.count(p)) mine.insert(p);
      }
      assigned[index] = std::move(mine);
      message.clear_assigned_partitions();
      for (const auto& [_, owned] : assigned) {
        for (uint32_t p : owned) message.add_assigned_partitions(p);
      }
    }
    delivered += message.records_size();
    if (!writer.write(message)) {
      close();
      return absl::CancelledError("the client went away");
    }
    if (request.max() > 0 && delivered >= request.max()) {
      close();
      return absl::OkStatus();
    }
  }
  close();
  for (const auto& reader : readers) {
    if (reader->status.ok()) continue;
    return absl::Status(
        static_cast<absl::StatusCode>(reader->status.error_code()),
        str_cat("upstream ", reader->upstream->address, ": ", reader->status.error_message()));
  }
  return absl::OkStatus();
}

}  // namespace telekern::proxy
