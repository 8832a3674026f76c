#include "telekern/service/inline_step_scope.h"

namespace telekern {
namespace {

thread_local InlineStepScope* open_scope = nullptr;

}  // namespace

InlineStepScope::InlineStepScope() : enclosing_(open_scope) { open_scope = this; }

InlineStepScope::~InlineStepScope() {
  open_scope = enclosing_;
  if (step_) {
    auto step = std::move(step_);
    step();
  }
}

bool InlineStepScope::take(std::function<void()>& step) {
  if (open_scope == nullptr || open_scope->step_) return false;
  open_scope->step_ = std::move(step);
  return true;
}

}  // namespace telekern
