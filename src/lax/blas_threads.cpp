// BlasSingleThread's shared count (see blas_threads.hpp).
#include "lax/blas_threads.hpp"

#include <mutex>

namespace loom::detail {
namespace {

struct State {
  std::mutex mu;
  int depth = 0;  // live scopes, all threads together
  int saved = 1;  // the count to restore when the last scope ends
};

State& state() {
  static State* s = new State;  // never destroyed: scopes may end during static teardown
  return *s;
}

}  // namespace

bool blas_uses_openmp() {
  static const bool openmp = openblas_get_parallel() == 2;
  return openmp;
}

int blas_num_threads() {
  return openblas_get_num_threads();
}

BlasSingleThread::BlasSingleThread() : active_(!blas_uses_openmp()) {
  if (!active_) return;
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.depth++ == 0) {
    s.saved = openblas_get_num_threads();
    if (s.saved != 1) openblas_set_num_threads(1);
  }
}

BlasSingleThread::~BlasSingleThread() {
  if (!active_) return;
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (--s.depth == 0 && s.saved != 1) openblas_set_num_threads(s.saved);
}

}  // namespace loom::detail
