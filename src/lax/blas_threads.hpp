// Private: how loom's GEMM callers share the cores between OpenMP and OpenBLAS.
//
// With OpenBLAS's OpenMP build (what CMakeLists.txt links when installed) both run on libgomp's
// one pool, and a GEMM called inside a parallel region stays on its thread by itself: nothing to
// do. With the pthreads build each GEMM may start OpenBLAS's own pool; when loom already runs
// independent GEMMs on OpenMP threads (conv images, batched contractions) it keeps BLAS on the
// calling thread, otherwise both pools' spinning threads fight over the cores.
#pragma once

#include <cblas.h>

#include <climits>
#include <cstdint>
#include <string>

#include "loom/error.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace loom::detail {

/// True when OpenBLAS runs its threads on OpenMP (openblas_get_parallel() == 2).
bool blas_uses_openmp();
/// OpenBLAS's process-wide thread count (openblas_get_num_threads).
int blas_num_threads();

/// While alive, OpenBLAS runs on the calling thread only (pthreads build). OpenBLAS's thread
/// count is process-wide, so the scopes of all threads share one count: the first to enter saves
/// and lowers it, the last to leave restores it (a plain save/restore per scope, interleaved
/// across user threads, could restore a stale value and leave BLAS single-threaded for good).
/// A GEMM on another thread meanwhile runs single-threaded: slower, never wrong. With the OpenMP
/// build it does nothing: a GEMM inside a parallel region already stays on its thread.
class BlasSingleThread {
 public:
  BlasSingleThread();
  ~BlasSingleThread();
  BlasSingleThread(const BlasSingleThread&) = delete;
  BlasSingleThread& operator=(const BlasSingleThread&) = delete;

 private:
  bool active_;
};

/// `v` as the int a CBLAS call takes; a loom::Error naming the op and the size when it does not fit
/// (the LP64 BLAS interface takes 32-bit sizes).
inline int blas_int(std::int64_t v, const char* op, const char* what) {
  if (v < 0 || v > INT_MAX) {
    throw Error(std::string(op) + ": the GEMM needs " + what + " = " + std::to_string(v) +
                ", which exceeds INT_MAX (" + std::to_string(INT_MAX) +
                "), the largest size the 32-bit BLAS interface (cblas_?gemm) accepts");
  }
  return static_cast<int>(v);
}

inline int max_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline int thread_id() {
#if defined(_OPENMP)
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace loom::detail
