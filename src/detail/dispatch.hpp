// Private helpers for kernel writers: dtype dispatch and parallel loops.
//
//   detail::dispatch(x.dtype(), "exp", [&]<typename T>() { kernel<T>(...); });
// The branch on dtype happens once per op, never per element.
#pragma once

#include <cstdint>
#include <exception>
#include <string>

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

/// Runs body(begin, end) on contiguous chunks of [0, n), one per thread of an OpenMP team of at
/// most `threads`. The range is split by the team size actually obtained (inside a user's
/// parallel region, or with OMP_DYNAMIC, it may be smaller than asked), so every index runs
/// exactly once. An exception thrown by body is caught on its thread and the first one is
/// rethrown on the caller after the region (an exception escaping a region would terminate).
///   parallel_chunks(outer, 4, [&](std::int64_t b, std::int64_t e) { run(b, e); });
template <typename Body>
void parallel_chunks(std::int64_t n, int threads, Body&& body) {
  if (n <= 0) return;
#if defined(_OPENMP)
  std::exception_ptr error;
#pragma omp parallel num_threads(threads > 0 ? threads : 1)
  {
    const std::int64_t nt = omp_get_num_threads();
    const std::int64_t t = omp_get_thread_num();
    const std::int64_t chunk = (n + nt - 1) / nt;
    const std::int64_t b = chunk * t < n ? chunk * t : n;
    const std::int64_t e = b + chunk < n ? b + chunk : n;
    try {
      if (b < e) body(b, e);
    } catch (...) {
#pragma omp critical(loom_parallel_error)
      {
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
#else
  (void)threads;
  body(std::int64_t{0}, n);
#endif
}

/// Runs body(begin, end) over [0, n) split across threads when n is large (see parallel_chunks).
template <typename Body>
void parallel_for(std::int64_t n, Body&& body, std::int64_t grain = kParallelGrain) {
  if (n < 2 * grain) {
    body(std::int64_t{0}, n);
    return;
  }
#if defined(_OPENMP)
  parallel_chunks(n, omp_get_max_threads(), body);
#else
  body(std::int64_t{0}, n);
#endif
}

/// Throws unless x is a valid (non-default) array.
void check_valid(const Array& x, const char* op);

}  // namespace loom::detail
