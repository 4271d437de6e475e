// Private: how loom's GEMM callers share the cores between loom's pool and OpenBLAS.
//
// With OpenBLAS's pthreads build (the default) each GEMM may start OpenBLAS's own pool; when loom
// already runs independent GEMMs on its pool's threads (conv images, batched contractions,
// detail/thread_pool.hpp) it keeps BLAS on the calling thread (BlasSingleThread), otherwise both
// pools' threads fight over the cores. With the OpenMP build (opt-in LOOM_OPENBLAS_OPENMP) the
// pool's threads run their chunks with an OpenMP thread count of 1, so a GEMM there stays on its
// thread too.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

#include "detail/dispatch.hpp"
#include "detail/thread_pool.hpp"
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
/// build it does nothing: the pool's chunks already run with OpenMP's thread count at 1.
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

/// Row-major C (m x n, ldc) = op(A) (m x k) op(B) (k x n) [+ C when accumulate], as cblas_?gemm
/// with alpha 1 and beta 0 or 1, but a product with one row or one column goes to cblas_?gemv:
/// OpenBLAS's gemm packs and pads a 1-row operand to its kernel's tile (a 1x784 by 784x128
/// product ran 4x slower than the same gemv), which is what a batch-1 Dense layer asks for.
///   blas_gemm<float>(CblasNoTrans, CblasNoTrans, 1, 128, 784, x, 784, w, 128, y, 128, false);
template <typename T>
void blas_gemm_serial(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const T* A,
                      int lda, const T* B, int ldb, T* C, int ldc, bool accumulate) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  const T beta = accumulate ? T(1) : T(0);
  auto gemv = [](CBLAS_TRANSPOSE t, int rows, int cols, const T* M, int ld, const T* x, int incx,
                 T beta, T* y, int incy) {
    if constexpr (std::is_same_v<T, float>) {
      cblas_sgemv(CblasRowMajor, t, rows, cols, 1.0f, M, ld, x, incx, beta, y, incy);
    } else {
      cblas_dgemv(CblasRowMajor, t, rows, cols, 1.0, M, ld, x, incx, beta, y, incy);
    }
  };
  // gemv's quick return (k == 0) would leave y unwritten where gemm zeroes C: gemm handles it.
  if (k >= 1 && m >= 1 && n >= 1 && (m == 1 || n == 1)) {
    // OpenBLAS threads a gemv from 9216 matrix elements where its gemm stays on one thread below
    // 4 * 65536 multiply-adds; a threaded batch-1 layer waited milliseconds for OpenBLAS's
    // threads on a loaded machine. Below gemm's own cutoff the gemv stays on this thread too.
    std::optional<BlasSingleThread> single;
    if (double(m) * double(n) * double(k) < double(1 << 18)) single.emplace();
    // y is zeroed first: the output buffer is uninitialized, and 0 * NaN must not reach it.
    if (m == 1) {
      // c (1 x n) = a (1 x k) op(B): y = op(B)^T a; B's stored matrix is k x n (NoTrans) or
      // n x k (Trans). a's k elements are contiguous (NoTrans) or lda apart (stored k x 1).
      if (!accumulate)
        for (int j = 0; j < n; ++j) C[j] = T(0);
      const int incx = ta == CblasNoTrans ? 1 : lda;
      if (tb == CblasNoTrans) {
        gemv(CblasTrans, k, n, B, ldb, A, incx, beta, C, 1);
      } else {
        gemv(CblasNoTrans, n, k, B, ldb, A, incx, beta, C, 1);
      }
    } else {
      // c (m x 1, ldc apart) = op(A) b (k x 1): b's elements are ldb apart (NoTrans, stored
      // k x 1) or contiguous (Trans, stored 1 x k).
      if (!accumulate)
        for (int i = 0; i < m; ++i) C[std::int64_t{i} * ldc] = T(0);
      const int incx = tb == CblasNoTrans ? ldb : 1;
      if (ta == CblasNoTrans) {
        gemv(CblasNoTrans, m, k, A, lda, B, incx, beta, C, ldc);
      } else {
        gemv(CblasTrans, k, m, A, lda, B, incx, beta, C, ldc);
      }
    }
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, A, lda, B, ldb, beta, C, ldc);
  } else {
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, A, lda, B, ldb, beta, C, ldc);
  }
}

/// blas_gemm_serial's product, split over loom's pool when it is big enough that OpenBLAS would
/// thread it (4 * 65536 multiply-adds): C's rows (or columns, when it has fewer rows) in a few
/// blocks per thread, each block a single-threaded BLAS call. OpenBLAS's own pool waits for every
/// one of its threads at the end of a GEMM, so on a loaded machine a descheduled BLAS thread
/// stalled the step (cnn_train with one busy process per core: 1452 ms with OpenBLAS's threads, 531
/// ms with the pool); the pool's caller takes a block nobody has started. K is never split, so each
/// element is summed in the same order as one unsplit call.
///   blas_gemm<float>(CblasNoTrans, CblasNoTrans, 128, 256, 3136, x, 3136, w, 256, y, 256, false);
template <typename T>
void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const T* A, int lda,
               const T* B, int ldb, T* C, int ldc, bool accumulate) {
  const int threads = std::min(parallel_threads(), std::max(blas_num_threads(), 1));
  const bool big = double(m) * double(n) * double(k) >= double(1 << 18);
  const bool by_rows = m >= n;
  const int extent = by_rows ? m : n;
  if (!big || threads < 2 || k < 1 || extent < 2) {
    return blas_gemm_serial<T>(ta, tb, m, n, k, A, lda, B, ldb, C, ldc, accumulate);
  }
  BlasSingleThread single;
  // A few blocks per thread (at least 16 rows or columns each, for the kernel's tiles): when a
  // thread the OS has descheduled holds one, the others take the rest.
  const std::int64_t blocks = std::clamp<std::int64_t>(extent / 16, threads, 4 * threads);
  auto body = [&](std::int64_t b, std::int64_t e) {
    const int lo = static_cast<int>(b), len = static_cast<int>(e - b);
    if (by_rows) {
      // Rows lo.. of op(A): stored rows (NoTrans) or columns (Trans).
      const T* a = ta == CblasNoTrans ? A + std::int64_t{lo} * lda : A + lo;
      blas_gemm_serial<T>(ta, tb, len, n, k, a, lda, B, ldb, C + std::int64_t{lo} * ldc, ldc,
                          accumulate);
    } else {
      // Columns lo.. of op(B): stored columns (NoTrans) or rows (Trans).
      const T* bb = tb == CblasNoTrans ? B + lo : B + std::int64_t{lo} * ldb;
      blas_gemm_serial<T>(ta, tb, m, len, k, A, lda, bb, ldb, C + lo, ldc, accumulate);
    }
  };
  run_parallel(
      extent, threads, blocks,
      [](void* ctx, std::int64_t b, std::int64_t e) { (*static_cast<decltype(body)*>(ctx))(b, e); },
      &body);
}

inline int max_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// The index of the parallel_chunks chunk the calling thread runs, in [0, threads): per-thread
/// scratch and partial sums of one call index by it (0 outside a job).
inline int thread_id() {
  return pool_slot();
}

}  // namespace loom::detail
