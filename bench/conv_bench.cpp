// Per-kernel benchmarks of the convolutions and poolings of cnn_train (Flax's MNIST CNN, batch
// 128) and resnet_infer (ResNet-18, 8x64x64x3): conv forward, d_input and d_kernel, each on
// oneDNN (path 1) and on the im2col + sgemm fallback (path 0); avg/max pool forward and backward.
//
//   cmake --build build -j2 --target conv_bench
//   ./build/bench/conv_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Names: BM_Conv*/<case>/<path>, cases in kCases below. "FLOP/s": 2 per multiply-add.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "lax/dnnl_conv.hpp"
#include "loom/loom.hpp"
#include "loom/nn.hpp"

namespace lax = loom::lax;
namespace nn = loom::nn;
using loom::Array;
using loom::Shape;

namespace {

Array wave(Shape shape, double phase) {
  std::vector<float> v(static_cast<std::size_t>(shape.numel()));
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<float>(std::sin(0.37 * double(i) + phase));
  return Array(v, shape);
}

struct Case {
  const char* name;
  std::int64_t n, h, w, c, k, o, stride;
};

// SAME padding throughout, as Flax's nn.Conv default and ResNet's convs.
const Case kCases[] = {
    {"cnn_conv0", 128, 28, 28, 1, 3, 32, 1},       // 0
    {"cnn_conv1", 128, 14, 14, 32, 3, 64, 1},      // 1
    {"resnet_stem", 8, 64, 64, 3, 7, 64, 2},       // 2
    {"resnet_l1", 8, 16, 16, 64, 3, 64, 1},        // 3
    {"resnet_l2_down", 8, 16, 16, 64, 3, 128, 2},  // 4
    {"resnet_l2", 8, 8, 8, 128, 3, 128, 1},        // 5
    {"resnet_l3", 8, 4, 4, 256, 3, 256, 1},        // 6
    {"resnet_l4", 8, 2, 2, 512, 3, 512, 1},        // 7
    {"resnet_proj", 8, 16, 16, 64, 1, 128, 2},     // 8
};

double conv_flops(const Case& c) {
  const double ho = double((c.h + c.stride - 1) / c.stride),
               wo = double((c.w + c.stride - 1) / c.stride);
  return 2.0 * double(c.n) * ho * wo * double(c.o) * double(c.k * c.k * c.c);
}

Array conv(const Array& x, const Array& w, const Case& c) {
  return lax::conv_general_dilated(x, w, {c.stride, c.stride}, lax::Padding::same());
}

void set_flops(benchmark::State& state, double flops) {
  state.counters["FLOP/s"] = benchmark::Counter(
      flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::OneK::kIs1000);
  state.SetLabel(kCases[state.range(0)].name);
}

void ConvArgs(benchmark::internal::Benchmark* b) {
  for (int i = 0; i < int(std::size(kCases)); ++i) {
    for (int path : {1, 0}) b->Args({i, path});
  }
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

void BM_ConvForward(benchmark::State& state) {
  const Case& c = kCases[state.range(0)];
  const loom::lax::dnnl_conv::ForcePath path(
      state.range(1) == 0 ? loom::lax::dnnl_conv::Path::im2col : loom::lax::dnnl_conv::Path::dnnl);
  Array x = wave({c.n, c.h, c.w, c.c}, 0.1), w = wave({c.k, c.k, c.c, c.o}, 0.3);
  for (auto _ : state) {
    Array y = conv(x, w, c);
    benchmark::DoNotOptimize(y.raw_data());
  }
  set_flops(state, conv_flops(c));
}
BENCHMARK(BM_ConvForward)->Apply(ConvArgs);

void BM_ConvDInput(benchmark::State& state) {
  const Case& c = kCases[state.range(0)];
  const loom::lax::dnnl_conv::ForcePath path(
      state.range(1) == 0 ? loom::lax::dnnl_conv::Path::im2col : loom::lax::dnnl_conv::Path::dnnl);
  Array x = wave({c.n, c.h, c.w, c.c}, 0.1), w = wave({c.k, c.k, c.c, c.o}, 0.3);
  auto [y, pullback] = loom::vjp([&](const Array& xi) { return conv(xi, w, c); }, x);
  Array gy = wave(y.shape(), 0.9);
  for (auto _ : state) {
    Array g = pullback(gy);
    benchmark::DoNotOptimize(g.raw_data());
  }
  set_flops(state, conv_flops(c));
}
BENCHMARK(BM_ConvDInput)->Apply(ConvArgs);

void BM_ConvDKernel(benchmark::State& state) {
  const Case& c = kCases[state.range(0)];
  const loom::lax::dnnl_conv::ForcePath path(
      state.range(1) == 0 ? loom::lax::dnnl_conv::Path::im2col : loom::lax::dnnl_conv::Path::dnnl);
  Array x = wave({c.n, c.h, c.w, c.c}, 0.1), w = wave({c.k, c.k, c.c, c.o}, 0.3);
  auto [y, pullback] = loom::vjp([&](const Array& wi) { return conv(x, wi, c); }, w);
  Array gy = wave(y.shape(), 0.9);
  for (auto _ : state) {
    Array g = pullback(gy);
    benchmark::DoNotOptimize(g.raw_data());
  }
  set_flops(state, conv_flops(c));
}
BENCHMARK(BM_ConvDKernel)->Apply(ConvArgs);

// Pooling: {n, h, w, c, window, stride, same}: the CNN's two avg pools, ResNet's stem max pool.
const std::int64_t kPools[][7] = {
    {128, 28, 28, 32, 2, 2, 0}, {128, 14, 14, 64, 2, 2, 0}, {8, 32, 32, 64, 3, 2, 1}};

void PoolArgs(benchmark::internal::Benchmark* b) {
  for (int i = 0; i < 3; ++i) b->Arg(i);
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

Array pool(const Array& x, bool avg, const std::int64_t* p) {
  const std::vector<std::int64_t> win{p[4], p[4]}, st{p[5], p[5]};
  const char* pad = p[6] ? "SAME" : "VALID";
  return avg ? nn::avg_pool(x, win, st, pad) : nn::max_pool(x, win, st, pad);
}

void pool_forward(benchmark::State& state, bool avg) {
  const std::int64_t* p = kPools[state.range(0)];
  Array x = wave({p[0], p[1], p[2], p[3]}, 0.2);
  for (auto _ : state) {
    Array y = pool(x, avg, p);
    benchmark::DoNotOptimize(y.raw_data());
  }
}

void pool_backward(benchmark::State& state, bool avg) {
  const std::int64_t* p = kPools[state.range(0)];
  Array x = wave({p[0], p[1], p[2], p[3]}, 0.2);
  auto [y, pullback] = loom::vjp([&](const Array& xi) { return pool(xi, avg, p); }, x);
  Array gy = wave(y.shape(), 0.5);
  for (auto _ : state) {
    Array g = pullback(gy);
    benchmark::DoNotOptimize(g.raw_data());
  }
}

void BM_AvgPoolForward(benchmark::State& state) {
  pool_forward(state, true);
}
void BM_AvgPoolBackward(benchmark::State& state) {
  pool_backward(state, true);
}
void BM_MaxPoolForward(benchmark::State& state) {
  pool_forward(state, false);
}
void BM_MaxPoolBackward(benchmark::State& state) {
  pool_backward(state, false);
}
BENCHMARK(BM_AvgPoolForward)->Apply(PoolArgs);
BENCHMARK(BM_AvgPoolBackward)->Apply(PoolArgs);
BENCHMARK(BM_MaxPoolForward)->Apply(PoolArgs);
BENCHMARK(BM_MaxPoolBackward)->Apply(PoolArgs);

}  // namespace
