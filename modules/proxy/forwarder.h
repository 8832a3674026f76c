// Forwards Broker calls to upstream stubs with gRPC's callback API: one call
// or a fan-out of several, each counted in its upstream's in-flight calls and
// the metrics, merged once the last answers. The client's deadline carries
// over (call_timeout when it has none).
#pragma once

#include <grpcpp/client_context.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "proxy_engine.h"
#include "telekern/retry.h"
#include "telekern/status.h"
#include "telekern/strings.h"

namespace telekern::proxy {

using Stub = broker::v1::Broker::Stub;

template <typename Response>
struct UpstreamResult {
  std::string upstream;
  grpc::Status status;
  Response response;
  int attempts = 1;  // > 1: earlier attempts answered UNAVAILABLE (and may have been applied)
};

// Calls stub.async()->Method(context, request, response, callback).
#define TELEKERN_PROXY_METHOD(Method)                                                          \
#Method, [](Stub & stub, grpc::ClientContext * context, const auto* request, auto* response, \
              std::function <void(grpc::Status)>                                               \
                  done) { stub.async()->Method(context, request, response, std::move(done)); }

// A request for one upstream: owned, or borrowed from the client's call
// (which outlives the forwarded call) to save the copy.
template <typename Request>
struct Target {
  std::shared_ptr<Upstream> upstream;
  Request request;
  const Request* borrowed = nullptr;
  const Request* get() const { return borrowed ? borrowed : &request; }
};

// Sends each target's request to its upstream; `merge` sees every result
// (in target order) and its status completes the call.
template <typename Request, typename Response, typename Call>
void fan_out(ProxyEngine& engine, std::chrono::system_clock::time_point deadline,
             std::vector<Target<Request>> targets, const char* method, Call call,
             std::function<absl::Status(std::vector<UpstreamResult<Response>>&)> merge,
             std::function<void(absl::Status)> done) {
  struct State {
    std::shared_ptr<ProxyEngine> engine;  // outlives a module stop while calls are out
    std::vector<Target<Request>> targets;
    std::vector<UpstreamResult<Response>> results;
    std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
    std::function<absl::Status(std::vector<UpstreamResult<Response>>&)> merge;
    std::function<void(absl::Status)> done;
    std::mutex mutex;
    size_t pending = 0;
  };
  if (targets.empty()) {
    std::vector<UpstreamResult<Response>> none;
    done(merge(none));
    return;
  }
  auto state = std::make_shared<State>();
  state->engine = engine.shared_from_this();
  state->targets = std::move(targets);
  state->results.resize(state->targets.size());
  state->merge = std::move(merge);
  state->done = std::move(done);
  state->pending = state->targets.size();
  for (size_t i = 0; i < state->targets.size(); ++i) {
    auto& upstream = state->targets[i].upstream;
    state->results[i].upstream = upstream->address;
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(deadline);
    state->contexts.push_back(std::move(context));
  }
  for (size_t i = 0; i < state->targets.size(); ++i) {
    auto upstream = state->targets[i].upstream;
    auto finish_one = [state, i, upstream, method,
                       started = std::chrono::steady_clock::now()](grpc::Status status) {
      upstream->in_flight.fetch_sub(1);
      state->engine->observe_call(
          upstream->address, method, status.error_code(),
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      bool last = false;
      {
        std::lock_guard lock(state->mutex);
        state->results[i].status = std::move(status);
        last = --state->pending == 0;
      }
      if (last) state->done(state->merge(state->results));
    };
    upstream->calls.fetch_add(1);
    if (upstream->in_flight.fetch_add(1) >= engine.options().max_in_flight) {
      finish_one(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          str_cat("upstream ", upstream->address, " has ", engine.options().max_in_flight,
                  " calls in flight (max_in_flight); retry later or raise it")));
      continue;
    }
    auto connection = engine.connection(upstream->address);
    call(*connection->broker, state->contexts[i].get(), state->targets[i].get(),
         &state->results[i].response, std::move(finish_one));
  }
}

// The first failed result's status, naming its upstream; OK when all passed.
template <typename Response>
absl::Status first_error(const std::vector<UpstreamResult<Response>>& results) {
  for (const auto& result : results) {
    if (result.status.ok()) continue;
    return absl::Status(static_cast<absl::StatusCode>(result.status.error_code()),
                        str_cat("upstream ", result.upstream, ": ", result.status.error_message()));
  }
  return absl::OkStatus();
}

}  // namespace telekern::proxy

namespace telekern::proxy {

// fan_out, waiting for every result on this (engine) thread: for admin calls
// that merge the upstreams' views.
template <typename Request, typename Response, typename Call>
std::vector<UpstreamResult<Response>> call_all(ProxyEngine& engine,
                                               std::chrono::system_clock::time_point deadline,
                                               std::vector<Target<Request>> targets,
                                               const char* method, Call call) {
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  std::vector<UpstreamResult<Response>> out;
  fan_out<Request, Response>(
      engine, deadline, std::move(targets), method, call,
      [&](std::vector<UpstreamResult<Response>>& results) {
        out = std::move(results);
        return absl::OkStatus();
      },
      [&](absl::Status) {
        std::lock_guard lock(mutex);
        done = true;
        finished.notify_all();
      });
  std::unique_lock lock(mutex);
  finished.wait(lock, [&] { return done; });
  return out;
}

// fan_out for idempotent calls: a target answering UNAVAILABLE is sent again,
// up to retry_attempts in total, after a jittered exponential backoff from
// retry_backoff (at most 2 s, never past the deadline). The waits run on the
// engine's timer, so no thread sleeps. Only for calls whose repeat is
// harmless: an UNAVAILABLE answer may come after the upstream applied the
// call. If the engine stops while a retry waits, the call ends UNAVAILABLE.
template <typename Request, typename Response, typename Call>
void fan_out_idempotent(ProxyEngine& engine, std::chrono::system_clock::time_point deadline,
                        std::vector<Target<Request>> targets, const char* method, Call call,
                        std::function<absl::Status(std::vector<UpstreamResult<Response>>&)> merge,
                        std::function<void(absl::Status)> done) {
  struct State {
    std::shared_ptr<ProxyEngine> engine;
    std::chrono::system_clock::time_point deadline;
    std::vector<Target<Request>> targets;
    std::vector<UpstreamResult<Response>> results;
    std::function<absl::Status(std::vector<UpstreamResult<Response>>&)> merge;
    std::function<void(absl::Status)> done;
    Backoff backoff;
    int attempt = 1;
    bool finished = false;
    State(const ProxyOptions& options)
        : backoff({options.retry_backoff, std::chrono::seconds(2), 2.0,
                   static_cast<int>(options.retry_attempts)}) {}
    ~State() {
      if (!finished && done) done(absl::UnavailableError("the proxy is stopping; retry"));
    }
    void finish() {
      finished = true;
      done(merge(results));
    }
  };
  auto state = std::make_shared<State>(engine.options());
  state->engine = engine.shared_from_this();
  state->deadline = deadline;
  state->targets = std::move(targets);
  state->results.resize(state->targets.size());
  state->merge = std::move(merge);
  state->done = std::move(done);
  // One round over `indexes` of the targets; retries those answering UNAVAILABLE.
  auto round = std::make_shared<std::function<void(std::vector<size_t>)>>();
  *round = [state, round_weak = std::weak_ptr(round), method,
            call](std::vector<size_t> indexes) mutable {
    std::vector<Target<Request>> targets;
    for (size_t i : indexes) targets.push_back(state->targets[i]);
    auto round = round_weak.lock();
    fan_out<Request, Response>(
        *state->engine, state->deadline, std::move(targets), method, call,
        [state, indexes](std::vector<UpstreamResult<Response>>& results) {
          for (size_t k = 0; k < indexes.size(); ++k) {
            results[k].attempts = state->attempt;
            state->results[indexes[k]] = std::move(results[k]);
          }
          return absl::OkStatus();
        },
        [state, indexes, round](absl::Status) {
          std::vector<size_t> again;
          for (size_t i : indexes) {
            if (state->results[i].status.error_code() == grpc::StatusCode::UNAVAILABLE)
              again.push_back(i);
          }
          auto delay = state->backoff.delay(state->attempt);
          if (again.empty() ||
              state->attempt >= static_cast<int>(state->engine->options().retry_attempts) ||
              std::chrono::system_clock::now() + delay >= state->deadline) {
            return state->finish();
          }
          ++state->attempt;
          state->engine->count_retries(again.size());
          state->engine->after(delay, [round, again] { (*round)(again); });
        });
  };
  std::vector<size_t> all(state->targets.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  (*round)(std::move(all));
}

// fan_out_idempotent, waiting for every result on this (engine) thread: for
// admin calls that merge the upstreams' views.
template <typename Request, typename Response, typename Call>
std::vector<UpstreamResult<Response>> call_all_idempotent(
    ProxyEngine& engine, std::chrono::system_clock::time_point deadline,
    std::vector<Target<Request>> targets, const char* method, Call call) {
  std::mutex mutex;
  std::condition_variable finished;
  bool done = false;
  std::vector<UpstreamResult<Response>> out;
  std::vector<std::string> addresses;
  for (const auto& target : targets) addresses.push_back(target.upstream->address);
  fan_out_idempotent<Request, Response>(
      engine, deadline, std::move(targets), method, call,
      [&](std::vector<UpstreamResult<Response>>& results) {
        out = std::move(results);
        return absl::OkStatus();
      },
      [&](absl::Status status) {
        std::lock_guard lock(mutex);
        if (!status.ok() && out.empty()) {
          // Stopped while a retry waited (merge never ran): every target answers that.
          for (const auto& address : addresses)
            out.push_back({address, to_grpc(status), Response(), 1});
        }
        done = true;
        finished.notify_all();
      });
  std::unique_lock lock(mutex);
  finished.wait(lock, [&] { return done; });
  return out;
}

}  // namespace telekern::proxy
