// Runs a woken stream's next step on the thread that woke it (see
// PolledStream), for engines that include no gRPC header.
#pragma once

#include <functional>

namespace telekern {

// While one lives on a thread, the first stream woken on that thread runs its
// step right there when the scope ends, instead of being handed to a step
// thread; streams woken after it are posted as usual. An engine opens one
// where it wakes streams from a thread of its own with no lock held (the
// broker, around the wake-up of a producer's append), so a waiting consumer
// gets its records without a thread hand-off. Scopes nest; the step runs
// with the enclosing scope (if any) in force again.
class InlineStepScope {
 public:
  InlineStepScope();
  ~InlineStepScope();
  InlineStepScope(const InlineStepScope&) = delete;
  InlineStepScope& operator=(const InlineStepScope&) = delete;

  // Moves `step` into this thread's open scope when it has none yet; false
  // (leaving `step` as it is) when there is no scope or it holds one already.
  static bool take(std::function<void()>& step);

 private:
  InlineStepScope* enclosing_;
  std::function<void()> step_;
};

}  // namespace telekern
