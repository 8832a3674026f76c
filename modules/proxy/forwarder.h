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

// call_all for idempotent reads: a target answering UNAVAILABLE is asked
// again, up to retry_attempts in total, after a jittered exponential backoff
// from retry_backoff (never past the deadline).
template <typename Request, typename Response, typename Call>
std::vector<UpstreamResult<Response>> call_all_idempotent(
    ProxyEngine& engine, std::chrono::system_clock::time_point deadline,
    std::vector<Target<Request>> targets, const char* method, Call call) {
  auto results = call_all<Request, Response>(engine, deadline, targets, method, call);
  Backoff backoff({engine.options().retry_backoff, std::chrono::seconds(2), 2.0,
                   static_cast<int>(engine.options().retry_attempts)});
  for (int attempt = 1; attempt < static_cast<int>(engine.options().retry_attempts); ++attempt) {
    std::vector<size_t> again;
    for (size_t i = 0; i < results.size(); ++i) {
      if (results[i].status.error_code() == grpc::StatusCode::UNAVAILABLE) again.push_back(i);
    }
    auto wake = std::chrono::system_clock::now() + backoff.delay(attempt);
    if (again.empty() || wake >= deadline) break;
    std::this_thread::sleep_until(wake);  // an engine thread, never a gRPC one
    std::vector<Target<Request>> retry;
    for (size_t i : again) retry.push_back(targets[i]);
    auto retried = call_all<Request, Response>(engine, deadline, std::move(retry), method, call);
    for (size_t k = 0; k < again.size(); ++k) results[again[k]] = std::move(retried[k]);
  }
  return results;
}

}  // namespace telekern::proxy
