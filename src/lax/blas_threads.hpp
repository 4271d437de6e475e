// Private: how loom's GEMM callers share the cores between OpenMP and OpenBLAS.
//
// Debian's OpenBLAS is the pthreads build: each GEMM may start OpenBLAS's own thread pool. When
// loom already runs independent GEMMs on OpenMP threads (conv images, batched contractions) it
// keeps BLAS on the calling thread; otherwise both pools' spinning threads fight over the cores.
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

/// While alive, OpenBLAS runs on the calling thread only (restored on destruction).
class BlasSingleThread {
 public:
  BlasSingleThread() : saved_(openblas_get_num_threads()) {
    if (saved_ != 1) openblas_set_num_threads(1);
  }
  ~BlasSingleThread() {
    if (saved_ != 1) openblas_set_num_threads(saved_);
  }
  BlasSingleThread(const BlasSingleThread&) = delete;
  BlasSingleThread& operator=(const BlasSingleThread&) = delete;

 private:
  int saved_;
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
