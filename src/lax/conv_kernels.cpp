// conv_general_dilated's kernels (conv_kernels.hpp): im2col + GEMM in Flax's layout (NHWC
// input, HWIO kernel), float32 on oneDNN where it can run.
//
// Every conv is handled as 3-D (missing spatial dims have size 1). One im2col row holds, for one
// output pixel, the K = prod(kernel) input pixels it reads, each a contiguous run of C channels
// (padding and lhs-dilation holes are zeros), laid out group-major: [group][tap][channel of
// group]. The kernel (K..., C/G, O) then already is the (K*C/G, O) GEMM operand of each group,
// so no weight is ever copied. Rows are processed in chunks (images) so the column buffer stays
// a few MB; a 1x1/stride-1/unpadded conv skips im2col and multiplies x itself.
//
// VJP: d(kernel) = cols^T @ g per chunk, accumulated; d(input) = col2im(g @ kernel^T).
#include "lax/conv_kernels.hpp"

#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "detail/dispatch.hpp"
#include "lax/blas_threads.hpp"

namespace loom::lax::conv {
namespace {

template <typename T>
void gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, const T* a,
          std::int64_t lda, const T* b, std::int64_t ldb, bool accumulate, T* c, std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  const auto cta = ta ? CblasTrans : CblasNoTrans, ctb = tb ? CblasTrans : CblasNoTrans;
  using ::loom::detail::blas_int;
  constexpr const char* op = "conv_general_dilated";
  const int im = blas_int(m, op, "m"), in = blas_int(n, op, "n"), ik = blas_int(k, op, "k");
  const int ia = blas_int(lda, op, "lda"), ib = blas_int(ldb, op, "ldb"),
            ic = blas_int(ldc, op, "ldc");
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, cta, ctb, im, in, ik, 1.0f, a, ia, b, ib, accumulate ? 1.0f : 0.0f,
                c, ic);
  } else {
    cblas_dgemm(CblasRowMajor, cta, ctb, im, in, ik, 1.0, a, ia, b, ib, accumulate ? 1.0 : 0.0, c,
                ic);
  }
}

// Rows per chunk: about kChunkElems column-buffer elements, rounded to whole images when an
// image is smaller (col2im then runs one image per thread without write conflicts).
constexpr std::int64_t kChunkElems = std::int64_t{1} << 20;

std::int64_t chunk_rows(const Geom& g) {
  std::int64_t r = std::max<std::int64_t>(1, kChunkElems / std::max<std::int64_t>(g.kc(), 1));
  if (g.out_img > 0 && g.out_img <= r) r = (r / g.out_img) * g.out_img;
  return std::min(r, std::max<std::int64_t>(g.rows(), 1));
}

// Visits the taps of output row `gr`: fn(tap index, input pixel offset within the image or -1).
template <typename Fn>
inline void for_taps(const Geom& g, std::int64_t gr, Fn&& fn) {
  std::int64_t p = gr % g.out_img;
  const std::int64_t o2 = p % g.out[2];
  p /= g.out[2];
  const std::int64_t o1 = p % g.out[1];
  const std::int64_t o0 = p / g.out[1];
  const std::int64_t* t0 = g.taps[0].data() + o0 * g.k[0];
  const std::int64_t* t1 = g.taps[1].data() + o1 * g.k[1];
  const std::int64_t* t2 = g.taps[2].data() + o2 * g.k[2];
  std::int64_t kk = 0;
  for (std::int64_t j0 = 0; j0 < g.k[0]; ++j0) {
    for (std::int64_t j1 = 0; j1 < g.k[1]; ++j1) {
      for (std::int64_t j2 = 0; j2 < g.k[2]; ++j2, ++kk) {
        const std::int64_t i0 = t0[j0], i1 = t1[j1], i2 = t2[j2];
        fn(kk, (i0 < 0 || i1 < 0 || i2 < 0) ? -1 : (i0 * g.in[1] + i1) * g.in[2] + i2);
      }
    }
  }
}

// Serial: the callers parallelize over whole images (see run_tasks).
template <typename T>
void im2col(const Geom& g, const T* x, T* cols, std::int64_t r0, std::int64_t r1) {
  const std::int64_t kc = g.kc(), C = g.c, cg = g.cg, K = g.kvol;
  for (std::int64_t gr = r0; gr < r1; ++gr) {
    T* dst = cols + (gr - r0) * kc;
    const T* xn = x + (gr / g.out_img) * g.in_img * C;
    for_taps(g, gr, [&](std::int64_t kk, std::int64_t pix) {
      if (g.groups == 1) {
        if (pix < 0)
          std::memset(dst + kk * C, 0, sizeof(T) * std::size_t(C));
        else
          std::memcpy(dst + kk * C, xn + pix * C, sizeof(T) * std::size_t(C));
      } else {
        for (std::int64_t q = 0; q < g.groups; ++q) {
          T* d = dst + (q * K + kk) * cg;
          if (pix < 0)
            std::memset(d, 0, sizeof(T) * std::size_t(cg));
          else
            std::memcpy(d, xn + pix * C + q * cg, sizeof(T) * std::size_t(cg));
        }
      }
    });
  }
}

// dx += col2im(dcols) for rows [r0, r1). Serial; tasks own whole images, so never collide.
template <typename T>
void col2im(const Geom& g, const T* dcols, T* dx, std::int64_t r0, std::int64_t r1) {
  const std::int64_t kc = g.kc(), C = g.c, cg = g.cg, K = g.kvol;
  for (std::int64_t gr = r0; gr < r1; ++gr) {
    const T* src = dcols + (gr - r0) * kc;
    T* xn = dx + (gr / g.out_img) * g.in_img * C;
    for_taps(g, gr, [&](std::int64_t kk, std::int64_t pix) {
      if (pix < 0) return;
      T* d = xn + pix * C;
      if (g.groups == 1) {
        const T* s = src + kk * C;
        for (std::int64_t c = 0; c < C; ++c) d[c] += s[c];
      } else {
        for (std::int64_t q = 0; q < g.groups; ++q) {
          const T* s = src + (q * K + kk) * cg;
          T* dq = d + q * cg;
          for (std::int64_t c = 0; c < cg; ++c) dq[c] += s[c];
        }
      }
    });
  }
}

template <typename T>
std::unique_ptr<T[]> scratch(std::int64_t n) {
  return std::make_unique_for_overwrite<T[]>(
      static_cast<std::size_t>(std::max<std::int64_t>(n, 1)));
}

// Splits the rows into tasks and runs body(thread, r0, r1) for each. With several images and
// threads: each task is a run of whole images, tasks are spread statically over OpenMP threads
// (deterministic) and BLAS runs single-threaded inside. Otherwise: row chunks one after the
// other, each GEMM multi-threaded by OpenBLAS.
template <typename Body>
int run_tasks(const Geom& g, Body&& body) {
  const std::int64_t per_image = std::max<std::int64_t>(g.out_img * g.kc(), 1);
  const std::int64_t imgs = std::clamp<std::int64_t>(kChunkElems / per_image, 1, g.n);
  const std::int64_t tasks = (g.n + imgs - 1) / imgs;
  const int threads =
      static_cast<int>(std::min<std::int64_t>(::loom::detail::max_threads(), tasks));
  if (threads >= 2) {
    ::loom::detail::BlasSingleThread single;
    // Tasks split over the team actually obtained (fewer threads inside a user's parallel region
    // or with OMP_DYNAMIC); thread ids stay below `threads`; an exception is rethrown here.
    ::loom::detail::parallel_chunks(tasks, threads, [&](std::int64_t t0, std::int64_t t1) {
      const int tid = ::loom::detail::thread_id();
      for (std::int64_t t = t0; t < t1; ++t) {
        body(tid, t * imgs * g.out_img, std::min(g.n, (t + 1) * imgs) * g.out_img);
      }
    });
    return threads;
  }
  const std::int64_t step = chunk_rows(g);
  for (std::int64_t r0 = 0; r0 < g.rows(); r0 += step) body(0, r0, std::min(g.rows(), r0 + step));
  return 1;
}

// Rows per task in the serial case: about kChunkElems column-buffer elements.
std::int64_t task_rows_bound(const Geom& g) {
  const std::int64_t per_image = std::max<std::int64_t>(g.out_img * g.kc(), 1);
  const std::int64_t imgs = std::clamp<std::int64_t>(kChunkElems / per_image, 1, g.n);
  return std::max(imgs * g.out_img, chunk_rows(g));
}

// float32 runs on oneDNN where it can (dnnl_conv.hpp); float64 and the rest on im2col.
template <typename T>
bool use_dnnl(const Geom& g) {
  return std::is_same_v<T, float> && !g.lhs_dilated;
}

template <typename T>
void forward_kernel(const Geom& g, const T* x, const T* w, T* out) {
  if constexpr (std::is_same_v<T, float>) {
    if (use_dnnl<T>(g) && dnnl_conv::forward(g.dnnl, x, w, out)) return;
  }
  const std::int64_t O = g.o, K = g.kvol;
  if (g.identity) {
    for (std::int64_t q = 0; q < g.groups; ++q) {
      gemm<T>(false, false, g.rows(), g.og, g.cg, x + q * g.cg, g.c, w + q * g.og, O, false,
              out + q * g.og, O);
    }
    return;
  }
  const std::int64_t kc = g.kc(), rows_max = task_rows_bound(g);
  std::vector<std::unique_ptr<T[]>> cols(static_cast<std::size_t>(::loom::detail::max_threads()));
  run_tasks(g, [&](int tid, std::int64_t r0, std::int64_t r1) {
    auto& buf = cols[static_cast<std::size_t>(tid)];
    if (!buf) buf = scratch<T>(rows_max * kc);
    im2col(g, x, buf.get(), r0, r1);
    for (std::int64_t q = 0; q < g.groups; ++q) {
      gemm<T>(false, false, r1 - r0, g.og, K * g.cg, buf.get() + q * K * g.cg, kc, w + q * g.og, O,
              false, out + r0 * O + q * g.og, O);
    }
  });
}

template <typename T>
void backward_kernel(const Geom& g, const T* x, const T* w, const T* gy, T* dx, T* dw) {
  if constexpr (std::is_same_v<T, float>) {
    if (use_dnnl<T>(g)) {
      if (dx && dnnl_conv::backward_data(g.dnnl, gy, w, dx)) dx = nullptr;
      if (dw && dnnl_conv::backward_weights(g.dnnl, x, gy, dw)) dw = nullptr;
      if (!dx && !dw) return;
    }
  }
  const std::int64_t O = g.o, K = g.kvol, kcg = K * g.cg, wsize = kcg * O;
  if (dx) std::memset(dx, 0, sizeof(T) * std::size_t(g.n * g.in_img * g.c));
  if (dw) std::memset(dw, 0, sizeof(T) * std::size_t(wsize));
  if (g.rows() == 0) return;
  if (g.identity) {
    for (std::int64_t q = 0; q < g.groups; ++q) {
      if (dw) {
        gemm<T>(true, false, g.cg, g.og, g.rows(), x + q * g.cg, g.c, gy + q * g.og, O, false,
                dw + q * g.og, O);
      }
      if (dx) {
        gemm<T>(false, true, g.rows(), g.cg, g.og, gy + q * g.og, O, w + q * g.og, O, false,
                dx + q * g.cg, g.c);
      }
    }
    return;
  }
  const std::int64_t kc = g.kc(), rows_max = task_rows_bound(g);
  const auto nt = static_cast<std::size_t>(::loom::detail::max_threads());
  std::vector<std::unique_ptr<T[]>> cols(nt), dw_part(nt);
  const int used = run_tasks(g, [&](int tid, std::int64_t r0, std::int64_t r1) {
    auto& buf = cols[static_cast<std::size_t>(tid)];
    if (!buf) buf = scratch<T>(rows_max * kc);
    const T* gr = gy + r0 * O;
    if (dw) {
      // Each thread accumulates its own partial kernel gradient; summed below in thread order.
      auto& part = dw_part[static_cast<std::size_t>(tid)];
      if (!part) {
        part = scratch<T>(wsize);
        std::memset(part.get(), 0, sizeof(T) * std::size_t(wsize));
      }
      im2col(g, x, buf.get(), r0, r1);
      for (std::int64_t q = 0; q < g.groups; ++q) {
        gemm<T>(true, false, kcg, g.og, r1 - r0, buf.get() + q * kcg, kc, gr + q * g.og, O, true,
                part.get() + q * g.og, O);
      }
    }
    if (dx) {
      for (std::int64_t q = 0; q < g.groups; ++q) {
        gemm<T>(false, true, r1 - r0, kcg, g.og, gr + q * g.og, O, w + q * g.og, O, false,
                buf.get() + q * kcg, kc);
      }
      col2im(g, buf.get(), dx, r0, r1);
    }
  });
  if (dw) {
    for (int t = 0; t < used; ++t) {
      const T* part = dw_part[static_cast<std::size_t>(t)].get();
      if (!part) continue;
      for (std::int64_t i = 0; i < wsize; ++i) dw[i] += part[i];
    }
  }
}

}  // namespace

template <typename T>
void forward(const Geom& g, const T* x, const T* w, T* out, const T* bias) {
  if constexpr (std::is_same_v<T, float>) {
    if (bias && use_dnnl<T>(g) && dnnl_conv::forward_bias(g.dnnl, x, w, bias, out)) return;
  }
  forward_kernel<T>(g, x, w, out);
  if (bias == nullptr) return;
  // After the whole sum, exactly as a separate y + bias. oneDNN's fused bias (above) is not
  // bit-identical to that: float32 differs in the last bits (tests/conv_bias_test.cpp).
  const std::int64_t rows = g.rows(), o = g.o;
  ::loom::detail::parallel_for(rows, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      T* y = out + r * o;
      for (std::int64_t j = 0; j < o; ++j) y[j] = y[j] + bias[j];
    }
  });
}

template <typename T>
void backward(const Geom& g, const T* x, const T* w, const T* gy, T* dx, T* dw) {
  backward_kernel<T>(g, x, w, gy, dx, dw);
}

template void forward<float>(const Geom&, const float*, const float*, float*, const float*);
template void forward<double>(const Geom&, const double*, const double*, double*, const double*);
template void backward<float>(const Geom&, const float*, const float*, const float*, float*,
                              float*);
template void backward<double>(const Geom&, const double*, const double*, const double*, double*,
                               double*);

}  // namespace loom::lax::conv
