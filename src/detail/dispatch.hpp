// Private helpers for kernel writers: dtype dispatch and parallel loops (on loom's pool,
// detail/thread_pool.hpp).
//
//   detail::dispatch(x.dtype(), "exp", [&]<typename T>() { kernel<T>(...); });
// The branch on dtype happens once per op, never per element.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include "detail/thread_pool.hpp"
#include "loom/array.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace loom::detail {

template <typename F>
decltype(auto) dispatch(DType dtype, F&& f) {
  switch (dtype) {
    case DType::float32:
      return f.template operator()<float>();
    case DType::float64:
      return f.template operator()<double>();
    case DType::int32:
      return f.template operator()<std::int32_t>();
    case DType::uint32:
      return f.template operator()<std::uint32_t>();
    case DType::bool_:
      return f.template operator()<bool>();
  }
  throw Error("internal: unknown dtype");
}

/// Only float32/float64.
template <typename F>
decltype(auto) dispatch_float(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::float32:
      return f.template operator()<float>();
    case DType::float64:
      return f.template operator()<double>();
    default:
      break;
  }
  throw Error(std::string(op) + ": expected a floating dtype (float32 or float64), got " +
              dtype_name(dtype));
}

/// Below this many elements a loop stays on one thread (threads cost ~microseconds).
inline constexpr std::int64_t kParallelGrain = 1 << 15;

/// Chunks per thread of parallel_for: participants claim them one at a time, so a thread the OS
/// has not scheduled (a loaded machine) delays at most one small chunk (thread_pool.hpp).
inline constexpr std::int64_t kChunksPerThread = 4;

/// The thread count parallel loops ask for: OpenMP's (omp_set_num_threads, OMP_NUM_THREADS).
inline int parallel_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Runs body(begin, end) over `threads` contiguous chunks of [0, n) (fewer when n is smaller) on
/// loom's pool (thread_pool.hpp), at most `threads` threads including the caller; every index runs
/// exactly once whatever the threads obtained (nested in a chunk, inside a user's OpenMP parallel
/// region, or while another thread's job holds the pool, the chunks run one after another on the
/// caller). detail::thread_id() is the chunk's index, below `threads`: per-chunk scratch and
/// partial sums indexed by it are deterministic. An exception thrown by body is rethrown on the
/// caller after every chunk has run (the first one, if several throw).
///   parallel_chunks(outer, 4, [&](std::int64_t b, std::int64_t e) { run(b, e); });
template <typename Body>
void parallel_chunks(std::int64_t n, int threads, Body&& body) {
  if (n <= 0) return;
  using B = std::remove_reference_t<Body>;
  // One chunk per thread: thread_id() (the chunk index) stays below `threads`.
  run_parallel(
      n, threads, std::int64_t{threads > 0 ? threads : 1},
      [](void* ctx, std::int64_t b, std::int64_t e) { (*static_cast<B*>(ctx))(b, e); },
      const_cast<void*>(static_cast<const void*>(std::addressof(body))));
}

/// Runs body(begin, end) over [0, n) split across threads when n is large (see parallel_chunks):
/// chunks of at least `grain` indices, a few per thread.
template <typename Body>
void parallel_for(std::int64_t n, Body&& body, std::int64_t grain = kParallelGrain) {
  if (n < 2 * grain) {
    body(std::int64_t{0}, n);
    return;
  }
  const int threads = parallel_threads();
  if (threads <= 1) {
    body(std::int64_t{0}, n);
    return;
  }
  using B = std::remove_reference_t<Body>;
  const std::int64_t g = grain > 0 ? grain : 1;
  run_parallel(
      n, threads, std::min<std::int64_t>(std::int64_t{threads} * kChunksPerThread, n / g),
      [](void* ctx, std::int64_t b, std::int64_t e) { (*static_cast<B*>(ctx))(b, e); },
      const_cast<void*>(static_cast<const void*>(std::addressof(body))));
}

/// Throws unless x is a valid (non-default) array.
void check_valid(const Array& x, const char* op);

}  // namespace loom::detail
