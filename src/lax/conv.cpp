// lax.conv_general_dilated in Flax's layout (NHWC input, HWIO kernel), by im2col + GEMM.
//
// Every conv is handled as 3-D (missing spatial dims have size 1). One im2col row holds, for one
// output pixel, the K = prod(kernel) input pixels it reads, each a contiguous run of C channels
// (padding and lhs-dilation holes are zeros), laid out group-major: [group][tap][channel of
// group]. The kernel (K..., C/G, O) then already is the (K*C/G, O) GEMM operand of each group,
// so no weight is ever copied. Rows are processed in chunks (images) so the column buffer stays
// a few MB; a 1x1/stride-1/unpadded conv skips im2col and multiplies x itself.
//
// VJP: d(kernel) = cols^T @ g per chunk, accumulated; d(input) = col2im(g @ kernel^T).
#include <cblas.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <string>

#include "detail/dispatch.hpp"
#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "lax/blas_threads.hpp"
#include "lax/dnnl_conv.hpp"
#include "lax/window.hpp"
#include "loom/lax.hpp"
#include "loom/numpy/manipulation.hpp"

namespace loom::lax {
namespace {

using win::ints_str;

struct ConvGeom {
  std::int64_t n = 0, c = 0, o = 0, groups = 1, cg = 0, og = 0;
  std::array<std::int64_t, 3> in{1, 1, 1}, k{1, 1, 1}, out{1, 1, 1};
  std::array<std::vector<std::int64_t>, 3> taps;
  std::int64_t kvol = 1, in_img = 1, out_img = 1;
  bool identity = false;     // im2col would reproduce x (1x1 taps, stride 1, no padding/dilation)
  bool lhs_dilated = false;  // oneDNN has no lhs dilation: such convs stay on im2col
  dnnl_conv::Geometry dnnl;  // the same conv for oneDNN (float32)
  std::int64_t kc() const { return kvol * c; }
  std::int64_t rows() const { return n * out_img; }
};

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

std::int64_t chunk_rows(const ConvGeom& g) {
  std::int64_t r = std::max<std::int64_t>(1, kChunkElems / std::max<std::int64_t>(g.kc(), 1));
  if (g.out_img > 0 && g.out_img <= r) r = (r / g.out_img) * g.out_img;
  return std::min(r, std::max<std::int64_t>(g.rows(), 1));
}

// Visits the taps of output row `gr`: fn(tap index, input pixel offset within the image or -1).
template <typename Fn>
inline void for_taps(const ConvGeom& g, std::int64_t gr, Fn&& fn) {
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
void im2col(const ConvGeom& g, const T* x, T* cols, std::int64_t r0, std::int64_t r1) {
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
void col2im(const ConvGeom& g, const T* dcols, T* dx, std::int64_t r0, std::int64_t r1) {
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
int run_tasks(const ConvGeom& g, Body&& body) {
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
std::int64_t task_rows_bound(const ConvGeom& g) {
  const std::int64_t per_image = std::max<std::int64_t>(g.out_img * g.kc(), 1);
  const std::int64_t imgs = std::clamp<std::int64_t>(kChunkElems / per_image, 1, g.n);
  return std::max(imgs * g.out_img, chunk_rows(g));
}

// float32 runs on oneDNN where it can (dnnl_conv.hpp); float64 and the rest on im2col.
template <typename T>
bool use_dnnl(const ConvGeom& g) {
  return std::is_same_v<T, float> && !g.lhs_dilated;
}

template <typename T>
void conv_forward(const ConvGeom& g, const T* x, const T* w, T* out) {
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

// dx (when non-null) and dw (when non-null) from the output cotangent gy.
template <typename T>
void conv_backward(const ConvGeom& g, const T* x, const T* w, const T* gy, T* dx, T* dw) {
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

// ---- the VJP's kernels as primitives --------------------------------------------------------
// y = conv(x, w) is bilinear, and so are its two backward kernels dx = data(gy, w) and
// dw = filter(x, gy); the VJP of each of the three is made of the other two (and itself), so
// conv_general_dilated differentiates to any order through the same fast kernels.

struct ConvPlan {
  ConvGeom g;
  Shape x_shape, w_shape, y_shape;
};
using PlanPtr = std::shared_ptr<const ConvPlan>;

Array conv_data(const Array& gy, const Array& w, const PlanPtr& p);
Array conv_filter(const Array& x, const Array& gy, const PlanPtr& p);

// The VJP of y = conv(x, w) at cotangent gy; a cotangent only for inputs with history.
std::vector<Array> conv_vjp(const Array& x, const Array& w, const Array& gy, const PlanPtr& p) {
  return {x.node() ? conv_data(gy, w, p) : Array(), w.node() ? conv_filter(x, gy, p) : Array()};
}

Array conv_apply(const Array& x, const Array& w, const PlanPtr& p) {
  Array out = Array::empty(p->y_shape, x.dtype());
  if (out.size() > 0) {
    ::loom::detail::dispatch_float(x.dtype(), "conv_general_dilated", [&]<typename T>() {
      if (p->g.kc() == 0) {
        std::memset(out.mutable_data<T>(), 0, out.nbytes());
      } else {
        conv_forward<T>(p->g, x.data<T>(), w.data<T>(), out.mutable_data<T>());
      }
    });
  }
  static constexpr ::loom::detail::Primitive kConvApply{.name = "conv_general_dilated"};
  if (::loom::detail::transforming()) {
    ::loom::detail::bind(
        kConvApply, out, {&x, &w},
        [p](const std::vector<Array>& in) { return conv_apply(in[0], in[1], p); },
        [x, w, p](const Array& gy, const Array&) { return conv_vjp(x, w, gy, p); });
  }
  return out;
}

// dx (x_shape) = data(gy, w), or dw (w_shape) = filter(x, gy), by the backward kernel.
Array conv_backward_kernel(const Array& x, const Array& w, const Array& gy, const PlanPtr& p,
                           bool want_dx) {
  Array d = Array::empty(want_dx ? p->x_shape : p->w_shape, gy.dtype());
  ::loom::detail::dispatch_float(gy.dtype(), "conv_general_dilated", [&]<typename T>() {
    if (p->g.kc() == 0 || p->g.o == 0 || gy.size() == 0) {
      std::memset(d.mutable_data<T>(), 0, d.nbytes());
      return;
    }
    conv_backward<T>(p->g, want_dx ? nullptr : x.data<T>(), want_dx ? w.data<T>() : nullptr,
                     gy.data<T>(), want_dx ? d.mutable_data<T>() : nullptr,
                     want_dx ? nullptr : d.mutable_data<T>());
  });
  return d;
}

Array conv_data(const Array& gy, const Array& w, const PlanPtr& p) {
  Array dx = conv_backward_kernel(Array(), w, gy, p, true);
  static constexpr ::loom::detail::Primitive kConvData{.name = "conv_general_dilated_data"};
  if (::loom::detail::transforming()) {
    // <data(gy, w), u> = <gy, conv(u, w)>: linear in gy and in w.
    ::loom::detail::bind(
        kConvData, dx, {&gy, &w},
        [p](const std::vector<Array>& in) { return conv_data(in[0], in[1], p); },
        [gy, w, p](const Array& u, const Array&) {
          return std::vector<Array>{gy.node() ? conv_apply(u, w, p) : Array(),
                                    w.node() ? conv_filter(u, gy, p) : Array()};
        });
  }
  return dx;
}

Array conv_filter(const Array& x, const Array& gy, const PlanPtr& p) {
  Array dw = conv_backward_kernel(x, Array(), gy, p, false);
  static constexpr ::loom::detail::Primitive kConvFilter{.name = "conv_general_dilated_filter"};
  if (::loom::detail::transforming()) {
    // <filter(x, gy), v> = <gy, conv(x, v)>: linear in x and in gy.
    ::loom::detail::bind(
        kConvFilter, dw, {&x, &gy},
        [p](const std::vector<Array>& in) { return conv_filter(in[0], in[1], p); },
        [x, gy, p](const Array& v, const Array&) {
          return std::vector<Array>{x.node() ? conv_data(gy, v, p) : Array(),
                                    gy.node() ? conv_apply(x, v, p) : Array()};
        });
  }
  return dw;
}

}  // namespace

Array conv_general_dilated(const Array& lhs0, const Array& rhs0,
                           const std::vector<std::int64_t>& window_strides, const Padding& padding,
                           const std::vector<std::int64_t>& lhs_dilation_in,
                           const std::vector<std::int64_t>& rhs_dilation_in,
                           std::int64_t feature_group_count) {
  ::loom::detail::check_valid(lhs0, "conv_general_dilated");
  ::loom::detail::check_valid(rhs0, "conv_general_dilated");
  const std::string who = "conv_general_dilated: lhs " + lhs0.shape().str() + " " +
                          dtype_name(lhs0.dtype()) + ", rhs " + rhs0.shape().str() + " " +
                          dtype_name(rhs0.dtype());
  const int nd = lhs0.ndim();
  if (nd < 3 || nd > 5) {
    throw Error(who + ": lhs must be (N, spatial..., C) with 1 to 3 spatial dimensions");
  }
  if (rhs0.ndim() != nd) {
    throw Error(who + ": rhs must be (spatial..., C_in / groups, C_out) of the same rank as lhs (" +
                std::to_string(nd) + "), got rank " + std::to_string(rhs0.ndim()));
  }
  if (!is_floating(lhs0.dtype()) || !is_floating(rhs0.dtype())) {
    throw Error(who + ": expected floating operands (float32 or float64)");
  }
  const DType dt = promote_types(lhs0.dtype(), rhs0.dtype());
  const Array lhs = lhs0.astype(dt), rhs = rhs0.astype(dt);
  const int ns = nd - 2;
  auto per_dim = [&](const std::vector<std::int64_t>& v, const char* name) {
    std::vector<std::int64_t> r = v.empty() ? std::vector<std::int64_t>(std::size_t(ns), 1) : v;
    if (static_cast<int>(r.size()) != ns) {
      throw Error(who + ": " + name + " " + ints_str(v) +
                  " must have one entry per spatial dimension (" + std::to_string(ns) + ")");
    }
    win::check_window_arguments(who, name, r);
    return r;
  };
  if (static_cast<int>(window_strides.size()) != ns) {
    throw Error(who + ": window_strides " + ints_str(window_strides) +
                " must have one entry per spatial dimension (" + std::to_string(ns) + ")");
  }
  const auto strides = per_dim(window_strides, "window_strides");
  const auto ldil = per_dim(lhs_dilation_in, "lhs_dilation");
  const auto rdil = per_dim(rhs_dilation_in, "rhs_dilation");
  const std::int64_t G = feature_group_count;
  const std::int64_t C = lhs.shape()[nd - 1], cg = rhs.shape()[nd - 2], O = rhs.shape()[nd - 1];
  if (G < 1) throw Error(who + ": feature_group_count must be >= 1, got " + std::to_string(G));
  if (C % G != 0) {
    throw Error(who + ": feature_group_count " + std::to_string(G) + " does not divide the " +
                std::to_string(C) + " input channels");
  }
  if (O % G != 0) {
    throw Error(who + ": feature_group_count " + std::to_string(G) + " does not divide the " +
                std::to_string(O) + " output channels");
  }
  if (cg * G != C) {
    throw Error(who + ": channel mismatch: lhs has " + std::to_string(C) +
                " input channels, so rhs's input-feature dimension must be " +
                std::to_string(C / G) + " (C_in / feature_group_count), got " + std::to_string(cg));
  }
  std::vector<std::int64_t> in_sp, eff_k;
  for (int i = 0; i < ns; ++i) {
    in_sp.push_back(lhs.shape()[1 + i]);
    // A zero-size kernel dimension stays 0 when dilated (JAX's _dilate_shape).
    const std::int64_t k = rhs.shape()[i];
    eff_k.push_back(k == 0 ? 0 : win::checked_mul(k - 1, rdil[std::size_t(i)], who.c_str()) + 1);
  }
  if (padding.kind == Padding::Kind::same) {
    for (std::int64_t d : ldil) {
      if (d != 1) {
        throw Error(who + ": SAME padding is not defined with lhs_dilation " + ints_str(ldil) +
                    " (as in JAX); give explicit (low, high) pairs");
      }
    }
  }
  const auto pads = win::resolve_padding("conv_general_dilated", padding, in_sp, eff_k, strides);

  ConvGeom g;
  g.n = lhs.shape()[0];
  g.c = C;
  g.o = O;
  g.groups = G;
  g.cg = cg;
  g.og = O / G;
  Shape out_shape{g.n};
  bool identity = true;
  for (int i = 0; i < ns; ++i) {
    const std::size_t s = std::size_t(3 - ns + i), ui = std::size_t(i);
    g.in[s] = in_sp[ui];
    g.k[s] = rhs.shape()[i];
    const std::int64_t in_dil =
        in_sp[ui] == 0 ? 0 : win::checked_mul(in_sp[ui] - 1, ldil[ui], who.c_str()) + 1;
    g.out[s] =
        win::window_out_size(in_dil, pads[ui].first, pads[ui].second, eff_k[ui], strides[ui]);
    out_shape.push_back(g.out[s]);
    identity = identity && g.k[s] == 1 && strides[ui] == 1 && ldil[ui] == 1 &&
               pads[ui].first == 0 && pads[ui].second == 0;
  }
  out_shape.push_back(O);
  g.dnnl.ns = ns;
  g.dnnl.n = g.n;
  g.dnnl.c = C;
  g.dnnl.o = O;
  g.dnnl.groups = G;
  for (int i = 0; i < ns; ++i) {
    const std::size_t s = std::size_t(3 - ns + i), ui = std::size_t(i);
    g.dnnl.in[s] = g.in[s];
    g.dnnl.k[s] = g.k[s];
    g.dnnl.out[s] = g.out[s];
    g.dnnl.stride[s] = strides[ui];
    g.dnnl.pad_lo[s] = pads[ui].first;
    g.dnnl.pad_hi[s] = pads[ui].second;
    g.dnnl.rdil[s] = rdil[ui];
    g.lhs_dilated = g.lhs_dilated || ldil[ui] != 1;
  }
  for (int i = 0; i < 3; ++i) {
    const int u = i - (3 - ns);
    const std::size_t s = std::size_t(i);
    g.taps[s] = u < 0 ? std::vector<std::int64_t>{0}
                      : win::tap_table(g.in[s], g.out[s], g.k[s], strides[std::size_t(u)],
                                       pads[std::size_t(u)].first, ldil[std::size_t(u)],
                                       rdil[std::size_t(u)]);
    g.kvol *= g.k[s];
    g.in_img *= g.in[s];
    g.out_img *= g.out[s];
  }
  g.identity = identity;

  Array out = Array::empty(out_shape, dt);
  if (out.size() > 0) {
    ::loom::detail::dispatch_float(dt, "conv_general_dilated", [&]<typename T>() {
      if (g.kc() == 0) {
        std::memset(out.mutable_data<T>(), 0, out.nbytes());
      } else {
        conv_forward<T>(g, lhs.data<T>(), rhs.data<T>(), out.mutable_data<T>());
      }
    });
  }
  static constexpr ::loom::detail::Primitive kConv{.name = "conv_general_dilated"};
  if (::loom::detail::transforming()) {
    ::loom::detail::bind(
        kConv, out, {&lhs, &rhs},
        [window_strides, padding, lhs_dilation_in, rhs_dilation_in,
         feature_group_count](const std::vector<Array>& in) {
          return conv_general_dilated(in[0], in[1], window_strides, padding, lhs_dilation_in,
                                      rhs_dilation_in, feature_group_count);
        },
        [lhs, rhs,
         p = std::make_shared<const ConvPlan>(ConvPlan{g, lhs.shape(), rhs.shape(), out.shape()})](
            const Array& gy0, const Array&) {
          const Array gy = gy0.dtype() == lhs.dtype() ? gy0 : gy0.astype(lhs.dtype());
          return conv_vjp(lhs, rhs, gy, p);
        },
        // A batched input with shared filters folds the batch into N (a per-example filter loops).
        [window_strides, padding, lhs_dilation_in, rhs_dilation_in, feature_group_count](
            const std::vector<Array>& in, const std::vector<bool>& batched) {
          if (batched[1]) return Array();
          const Shape& s = in[0].shape();
          std::vector<std::int64_t> folded{s[0] * s[1]};
          for (int d = 2; d < s.size(); ++d) folded.push_back(s[d]);
          const Array y =
              conv_general_dilated(numpy::reshape(in[0], folded), in[1], window_strides, padding,
                                   lhs_dilation_in, rhs_dilation_in, feature_group_count);
          std::vector<std::int64_t> out{s[0], s[1]};
          for (int d = 1; d < y.ndim(); ++d) out.push_back(y.shape()[d]);
          return numpy::reshape(y, out);
        });
  }
  return out;
}

}  // namespace loom::lax
