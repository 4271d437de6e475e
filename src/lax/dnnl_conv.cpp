// oneDNN convolution primitives for conv_general_dilated's float32 kernels (see dnnl_conv.hpp).
#include "lax/dnnl_conv.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <utility>

namespace loom::lax::dnnl_conv {
namespace {

using dnnl::memory;
using Dims = memory::dims;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// The spatial entries oneDNN sees: 1-D and 2-D convs are given as 2-D (a 1-D one with height 1,
// which oneDNN's 2-D JIT kernels handle as well as its 1-D ones), 3-D as 3-D.
int first_spatial(const Geometry& g) {
  return g.ns == 3 ? 0 : 1;
}

Dims spatial(const Geometry& g, const std::array<std::int64_t, 3>& v, std::int64_t minus = 0) {
  Dims d;
  for (int i = first_spatial(g); i < 3; ++i) d.push_back(v[std::size_t(i)] - minus);
  return d;
}

// (n, spatial..., ch) row-major, described in oneDNN's logical order (n, ch, spatial...).
memory::desc activation_md(const Geometry& g, const std::array<std::int64_t, 3>& sp,
                           std::int64_t ch) {
  const Dims s = spatial(g, sp);
  Dims dims{g.n, ch}, strides{0, 1};
  dims.insert(dims.end(), s.begin(), s.end());
  strides.resize(dims.size());
  std::int64_t step = ch;
  for (std::size_t i = dims.size(); i-- > 2;) {
    strides[i] = step;
    step *= dims[i];
  }
  strides[0] = step;
  return memory::desc(dims, memory::data_type::f32, strides);
}

// Flax's HWIO kernel (k..., c/groups, o), o = group * (o/groups) + og, in oneDNN's logical order
// (o, i, k...) or, grouped, (groups, o/groups, i, k...).
memory::desc kernel_md(const Geometry& g) {
  const Dims ks = spatial(g, g.k);
  const std::int64_t cg = g.c / g.groups, og = g.o / g.groups;
  Dims ks_strides(ks.size());
  std::int64_t step = cg * g.o;
  for (std::size_t i = ks.size(); i-- > 0;) {
    ks_strides[i] = step;
    step *= ks[i];
  }
  Dims dims, strides;
  if (g.groups > 1) {
    dims = {g.groups, og, cg};
    strides = {og, 1, g.o};
  } else {
    dims = {g.o, cg};
    strides = {1, g.o};
  }
  dims.insert(dims.end(), ks.begin(), ks.end());
  strides.insert(strides.end(), ks_strides.begin(), ks_strides.end());
  return memory::desc(dims, memory::data_type::f32, strides);
}

struct Entry {
  dnnl::primitive prim;
  memory::desc user_kernel, prim_kernel, scratch;
  dnnl::primitive kernel_reorder;  // user -> prim (forward, data), prim -> user (weights)
  bool reorder = false;
};

std::shared_ptr<const Entry> create(Kind kind, const Geometry& g) {
  auto& eng = cpu_engine();
  const memory::desc src = activation_md(g, g.in, g.c), dst = activation_md(g, g.out, g.o);
  const memory::desc user_w = kernel_md(g);
  // The kernel in the layout the primitive prefers (blocked by 8 output channels on AVX2): with
  // HWIO itself oneDNN picks its slower GEMM-based convolution (about 1.5x on ResNet's shapes).
  const memory::desc any_w(user_w.dims(), memory::data_type::f32, memory::format_tag::any);
  const Dims strides = spatial(g, g.stride), dil = spatial(g, g.rdil, 1);
  const Dims lo = spatial(g, g.pad_lo), hi = spatial(g, g.pad_hi);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const auto algo = dnnl::algorithm::convolution_direct;
  const dnnl::convolution_forward::desc fwd_desc(dnnl::prop_kind::forward_training, algo, src,
                                                 any_w, dst, strides, dil, lo, hi);
  const dnnl::convolution_forward::primitive_desc fwd_pd(fwd_desc, attr, eng);
  auto e = std::make_shared<Entry>();
  e->user_kernel = user_w;
  if (kind == Kind::forward_bias) {
    const memory::desc bias(Dims{g.o}, memory::data_type::f32, memory::format_tag::a);
    const dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training, algo, src, any_w,
                                            bias, dst, strides, dil, lo, hi);
    const dnnl::convolution_forward::primitive_desc pd(d, attr, eng);
    e->prim = dnnl::convolution_forward(pd);
    e->prim_kernel = pd.weights_desc();
    e->scratch = pd.scratchpad_desc();
  } else if (kind == Kind::forward) {
    e->prim = dnnl::convolution_forward(fwd_pd);
    e->prim_kernel = fwd_pd.weights_desc();
    e->scratch = fwd_pd.scratchpad_desc();
  } else if (kind == Kind::backward_data) {
    const dnnl::convolution_backward_data::desc d(algo, src, any_w, dst, strides, dil, lo, hi);
    const dnnl::convolution_backward_data::primitive_desc pd(d, attr, eng, fwd_pd);
    e->prim = dnnl::convolution_backward_data(pd);
    e->prim_kernel = pd.weights_desc();
    e->scratch = pd.scratchpad_desc();
  } else {
    const dnnl::convolution_backward_weights::desc d(algo, src, any_w, dst, strides, dil, lo, hi);
    const dnnl::convolution_backward_weights::primitive_desc pd(d, attr, eng, fwd_pd);
    e->prim = dnnl::convolution_backward_weights(pd);
    e->prim_kernel = pd.diff_weights_desc();
    e->scratch = pd.scratchpad_desc();
  }
  e->reorder = e->prim_kernel != user_w;
  if (e->reorder) {
    e->kernel_reorder =
        kind == Kind::backward_weights
            ? dnnl::reorder(dnnl::reorder::primitive_desc(eng, e->prim_kernel, eng, user_w))
            : dnnl::reorder(dnnl::reorder::primitive_desc(eng, user_w, eng, e->prim_kernel));
  }
  return e;
}

// The process-wide primitive cache; nullptr entries remember geometries oneDNN refused. Bounded:
// past kMaxEntries (a program sweeping shapes) it starts over; entries in use stay alive.
constexpr std::size_t kMaxEntries = 512;

std::shared_ptr<const Entry> lookup(Kind kind, const Geometry& g, bool& refused) {
  static std::mutex mu;
  static std::map<std::pair<Kind, Geometry>, std::shared_ptr<const Entry>> cache;
  const auto key = std::make_pair(kind, g);
  {
    std::lock_guard<std::mutex> lock(mu);
    const auto it = cache.find(key);
    if (it != cache.end()) {
      refused = it->second == nullptr;
      return it->second;
    }
  }
  std::shared_ptr<const Entry> e;
  try {
    e = create(kind, g);  // outside the lock: creation JIT-compiles (milliseconds)
  } catch (const dnnl::error&) {
    e = nullptr;  // no implementation for this geometry: the caller falls back to im2col
  }
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() >= kMaxEntries) cache.clear();
  const auto [it, inserted] = cache.emplace(key, e);
  refused = it->second == nullptr;
  return it->second;
}

// Per-thread growable buffers for the scratchpad and the reordered kernel: a training step
// runs the same convolutions every iteration, so they are allocated (and page-faulted) once.
float* thread_buffer(int which, std::size_t bytes) {
  thread_local std::array<std::unique_ptr<float[]>, 2> bufs;
  thread_local std::array<std::size_t, 2> sizes{0, 0};
  auto& buf = bufs[std::size_t(which)];
  auto& size = sizes[std::size_t(which)];
  if (size < bytes) {
    const std::size_t n = (bytes + sizeof(float) - 1) / sizeof(float);
    buf = std::make_unique_for_overwrite<float[]>(n);
    size = n * sizeof(float);
  }
  return buf.get();
}

std::atomic<std::int64_t> g_executions{0};

// a, b: the primitive's two inputs (forward: x, w; data: gy, w; weights: x, gy); out: its result;
// bias: forward_bias's third input.
bool run(Kind kind, const Geometry& g, const float* a, const float* b, float* out,
         const float* bias = nullptr) {
  if (!usable(g, kind)) return false;
  bool refused = false;
  const auto e = lookup(kind, g, refused);
  if (refused) return false;
  try {
    auto& eng = cpu_engine();
    dnnl::stream stream(eng);
    auto mem = [&](const memory::desc& md, const float* p) {
      return memory(md, eng, const_cast<float*>(p));
    };
    const memory::desc src = activation_md(g, g.in, g.c), dst = activation_md(g, g.out, g.o);
    float* kbuf = e->reorder ? thread_buffer(0, e->prim_kernel.get_size()) : nullptr;
    const float* user_kernel = kind == Kind::backward_weights ? out : b;
    const memory user_k = mem(e->user_kernel, user_kernel);
    const memory prim_k = e->reorder ? mem(e->prim_kernel, kbuf) : user_k;
    std::unordered_map<int, memory> args;
    if (e->scratch.get_size() > 0) {
      args.emplace(DNNL_ARG_SCRATCHPAD, mem(e->scratch, thread_buffer(1, e->scratch.get_size())));
    }
    if (kind != Kind::backward_weights && e->reorder) {
      e->kernel_reorder.execute(stream, {{DNNL_ARG_FROM, user_k}, {DNNL_ARG_TO, prim_k}});
    }
    if (kind == Kind::forward || kind == Kind::forward_bias) {
      args.emplace(DNNL_ARG_SRC, mem(src, a));
      args.emplace(DNNL_ARG_WEIGHTS, prim_k);
      args.emplace(DNNL_ARG_DST, mem(dst, out));
      if (kind == Kind::forward_bias) {
        args.emplace(
            DNNL_ARG_BIAS,
            mem(memory::desc(Dims{g.o}, memory::data_type::f32, memory::format_tag::a), bias));
      }
    } else if (kind == Kind::backward_data) {
      args.emplace(DNNL_ARG_DIFF_DST, mem(dst, a));
      args.emplace(DNNL_ARG_WEIGHTS, prim_k);
      args.emplace(DNNL_ARG_DIFF_SRC, mem(src, out));
    } else {
      args.emplace(DNNL_ARG_SRC, mem(src, a));
      args.emplace(DNNL_ARG_DIFF_DST, mem(dst, b));
      args.emplace(DNNL_ARG_DIFF_WEIGHTS, prim_k);
    }
    e->prim.execute(stream, args);
    if (kind == Kind::backward_weights && e->reorder) {
      e->kernel_reorder.execute(stream, {{DNNL_ARG_FROM, prim_k}, {DNNL_ARG_TO, user_k}});
    }
    stream.wait();
    g_executions.fetch_add(1, std::memory_order_relaxed);
  } catch (const dnnl::error&) {
    return false;  // nothing is half-done for the caller: the fallback rewrites all of `out`
  }
  return true;
}

}  // namespace

bool usable(const Geometry& g, Kind kind) {
  if (g_force_path == Path::im2col) return false;
  if (g.n <= 0 || g.c <= 0 || g.o <= 0 || g.groups < 1) return false;
  std::int64_t rows = g.n;
  for (std::size_t i = 0; i < 3; ++i) {
    if (g.in[i] <= 0 || g.k[i] <= 0 || g.out[i] <= 0) return false;
    if (g.pad_lo[i] < 0 || g.pad_hi[i] < 0) return false;  // cropping: im2col handles it
    rows *= g.out[i];
  }
  if (g_force_path == Path::dnnl) return true;
  // Few output pixels per kernel element: the kernel's reorder into (and, for the weight
  // gradient, out of) oneDNN's blocked layout costs as much as the convolution, and im2col's
  // GEMM reads HWIO as it is. Thresholds measured with bench/conv_bench (ResNet-18's deep
  // layers: 8x2x2x512 forward is a tie at 32 rows; weight gradients tie near 1024 rows).
  // One input channel (an image's first conv): oneDNN's d_input kernel is 1.3x slower than
  // col2im there (bench/conv_bench, cnn_conv0); a training step never asks for it anyway.
  if (kind == Kind::backward_data && g.c == 1) return false;
  return rows >= (kind == Kind::backward_weights ? kMinRowsWeights : kMinRows);
}

std::int64_t executions() {
  return g_executions.load(std::memory_order_relaxed);
}

bool forward(const Geometry& g, const float* x, const float* w, float* y) {
  return run(Kind::forward, g, x, w, y);
}

bool forward_bias(const Geometry& g, const float* x, const float* w, const float* bias, float* y) {
  return run(Kind::forward_bias, g, x, w, y, bias);
}

bool backward_data(const Geometry& g, const float* gy, const float* w, float* dx) {
  return run(Kind::backward_data, g, gy, w, dx);
}

bool backward_weights(const Geometry& g, const float* x, const float* gy, float* dw) {
  return run(Kind::backward_weights, g, x, gy, dw);
}

}  // namespace loom::lax::dnnl_conv
