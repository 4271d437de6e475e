// grad's argument checks: integer and bool arguments are refused as JAX's TypeError
// (jax/_src/api.py _check_input_dtype_revderiv), unless allow_int is set. Higher order (grad of
// grad), custom_vjp / custom_jvp on the JAX docs' examples ("Custom derivative rules for
// JAX-transformable Python functions": log1pexp, clip_gradient, f(x, y) = sin(x) y), and
// checkpoint (gradients bit for bit, peak memory).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "loom/loom.hpp"
#include "test_util.hpp"

using loom::Array;
using loom::DType;
using loom::Tree;
using loom::testing::f64;
using loom::testing::throws_error;
namespace jnp = loom::numpy;

TEST(Autodiff, GradOfIntegerArrayArgumentIsAnError) {
  auto f = [](const Array& x) { return jnp::sum(x.astype(DType::float32)); };
  Array ints = {1, 2, 3};  // int32, the easy mistake of the issue
  ASSERT_EQ(ints.dtype(), DType::int32);
  EXPECT_TRUE(
      throws_error([&] { loom::grad(f)(ints); }, {"grad requires real- or complex-valued inputs",
                                                  "np.inexact", "but got int32", "allow_int"}));
  EXPECT_TRUE(throws_error([&] { loom::value_and_grad(f)(ints); }, {"but got int32"}));
  EXPECT_TRUE(throws_error([&] { loom::grad(f)(ints.astype(DType::uint32)); }, {"but got uint32"}));
  EXPECT_TRUE(throws_error([&] { loom::grad(f)(ints.astype(DType::bool_)); }, {"but got bool"}));
  // has_aux does not bypass the check.
  auto with_aux = [](const Array& x) {
    return std::make_pair(jnp::sum(x.astype(DType::float32)), x);
  };
  EXPECT_TRUE(
      throws_error([&] { loom::grad(with_aux, {.has_aux = true})(ints); }, {"but got int32"}));
}

TEST(Autodiff, GradOfTreeWithIntegerLeafNamesThePath) {
  Tree params = {{"Dense_0", {{"kernel", f64({1, 2}, {2})}, {"step", Array{7}}}}};
  auto loss = [](const Tree& p) { return jnp::sum(p.at_path({"Dense_0", "kernel"}).leaf()); };
  EXPECT_TRUE(throws_error(
      [&] { loom::grad(loss)(params); },
      {"grad requires real- or complex-valued inputs", "but got int32", "\"Dense_0/step\""}));
}

TEST(Autodiff, AllowIntGivesZeroGradientsForIntegerLeaves) {
  Tree params = {{"k", f64({1, 2}, {2})}, {"n", Array{7, 8}}};
  auto loss = [](const Tree& p) { return jnp::sum(p.at("k").leaf() * p.at("k").leaf()); };
  Tree g = loom::grad(loss, {.allow_int = true})(params);
  EXPECT_EQ(g.at("k").leaf().to_vector<double>(), (std::vector<double>{2, 4}));  // d/dk k^2 = 2k
  EXPECT_EQ(g.at("n").leaf().dtype(), DType::int32);
  EXPECT_EQ(g.at("n").leaf().to_vector<std::int32_t>(), (std::vector<std::int32_t>{0, 0}));
  Array gi = loom::grad([](const Array& x) { return jnp::sum(x.astype(DType::float64)); },
                        {.allow_int = true})(Array{1, 2});
  EXPECT_EQ(gi.to_vector<std::int32_t>(), (std::vector<std::int32_t>{0, 0}));
}

TEST(Autodiff, FloatingArgumentsStillDifferentiate) {
  Array x = f64({0.5, -1.5}, {2});
  EXPECT_TRUE(
      loom::testing::grad_matches_fd([](const Array& v) { return jnp::sum(v * v * v); }, x));
  Array g = loom::grad([](const Array& v) { return jnp::sum(v * v); })(x.astype(DType::float32));
  EXPECT_EQ(g.dtype(), DType::float32);
  EXPECT_EQ(g.to_vector<float>(), (std::vector<float>{1.0f, -3.0f}));
}

TEST(Autodiff, GradOfGradOfSinIsMinusSin) {
  auto f = [](const Array& x) { return jnp::sin(x); };
  auto d1 = loom::grad(f);
  auto d2 = loom::grad(d1);
  auto d3 = loom::grad(d2);
  for (double v : {-1.3, 0.0, 0.4, 2.0}) {
    Array x = Array::scalar(v, DType::float64);
    EXPECT_NEAR(d1(x).item<double>(), std::cos(v), 1e-14);
    EXPECT_NEAR(d2(x).item<double>(), -std::sin(v), 1e-14);
    EXPECT_NEAR(d3(x).item<double>(), -std::cos(v), 1e-14);
  }
}

TEST(Autodiff, GradOfGradOfExp) {
  auto f = [](const Array& x) { return jnp::exp(x); };
  auto d2 = loom::grad(loom::grad(f));
  auto d3 = loom::grad(d2);
  Array x = Array::scalar(0.7, DType::float64);
  EXPECT_NEAR(d2(x).item<double>(), std::exp(0.7), 1e-14);
  EXPECT_NEAR(d3(x).item<double>(), std::exp(0.7), 1e-14);
  // d2/dx2 exp(exp(x)) = exp(exp(x)) e^x (e^x + 1)
  auto g2 = loom::grad(loom::grad([](const Array& v) { return jnp::exp(jnp::exp(v)); }));
  const double e = std::exp(0.7);
  EXPECT_NEAR(g2(x).item<double>(), std::exp(e) * e * (e + 1), 1e-12);
}

TEST(Autodiff, GradOfNonScalarIsAnError) {
  EXPECT_TRUE(throws_error(
      [] {
        loom::grad([](const Array& v) { return v * 2.0; })(f64({1, 2}, {2}));
      },
      {"grad", "scalar", "float64(2,)"}));
}

TEST(Autodiff, NestedGradClosingOverTheOuterArgument) {
  // d/dx [d/dy (x y^2) at y = 3] = d/dx (6 x) = 6 (the inner gradient keeps x's history).
  auto outer = [](const Array& x) {
    return loom::grad([&](const Array& y) { return x * y * y; })(
        Array::scalar(3.0, DType::float64));
  };
  EXPECT_EQ(loom::grad(outer)(Array::scalar(2.0, DType::float64)).item<double>(), 6.0);
  // An inner vjp inside an outer grad: d/dx <vjp(sin)(x), 1> = d/dx cos(x) = -sin(x).
  auto via_vjp = [](const Array& x) {
    auto [y, pb] = loom::vjp([](const Array& v) { return jnp::sin(v); }, x);
    EXPECT_NE(y.node(), nullptr);  // inside a trace outputs keep history
    return pb(jnp::ones_like(x));
  };
  EXPECT_NEAR(loom::grad(via_vjp)(Array::scalar(0.9, DType::float64)).item<double>(),
              -std::sin(0.9), 1e-14);
}

// ---- custom_jvp: the JAX docs' log1pexp ----

Array naive_log1pexp(const Array& x) {
  return jnp::log(1.0 + jnp::exp(x));
}

auto log1pexp =
    loom::custom_jvp([](const Array& x) { return naive_log1pexp(x); },
                     [](const std::vector<Array>& p, const std::vector<Array>& t) {
                       Array y = naive_log1pexp(p[0]);
                       return std::make_pair(y, (1.0 - 1.0 / (1.0 + jnp::exp(p[0]))) * t[0]);
                     });

TEST(CustomJvp, Log1pexpGradIsOneWhereTheNaiveOneIsNan) {
  // The docs: grad(log1pexp)(100.) == 1.0, while the naive version's gradient is nan (float32).
  Array x = Array::scalar(100.0f);
  EXPECT_TRUE(std::isnan(loom::grad(naive_log1pexp)(x).item<float>()));
  EXPECT_EQ(loom::grad(log1pexp)(x).item<float>(), 1.0f);
  EXPECT_EQ(log1pexp(Array::scalar(100.0, DType::float64)).item<double>(), 100.0);
  // Elsewhere the rule is the sigmoid, analytically.
  for (double v : {-3.0, 0.0, 2.5}) {
    Array xv = Array::scalar(v, DType::float64);
    const double sig = 1 / (1 + std::exp(-v));
    EXPECT_NEAR(loom::grad(log1pexp)(xv).item<double>(), sig, 1e-15);
    EXPECT_NEAR(loom::jvp(log1pexp, xv, Array::scalar(2.0, DType::float64)).second.item<double>(),
                2 * sig, 1e-15);
    // Second derivative through the rule: sigmoid' = sig (1 - sig).
    EXPECT_NEAR(loom::grad(loom::grad(log1pexp))(xv).item<double>(), sig * (1 - sig), 1e-14);
  }
}

// ---- custom_vjp: the docs' f(x, y) = sin(x) y and clip_gradient ----

auto sin_times = loom::custom_vjp(
    [](const Array& x, const Array& y) { return jnp::sin(x) * y; },
    [](const Array& x, const Array& y) {
      return std::make_pair(jnp::sin(x) * y, std::vector<Array>{jnp::cos(x), jnp::sin(x), y});
    },
    [](const std::vector<Array>& res, const Array& g) {
      return std::vector<Array>{res[0] * g * res[2], res[1] * g};
    });

TEST(CustomVjp, SinTimesYMatchesTheDocs) {
  Array x = Array::scalar(2.0, DType::float64), y = Array::scalar(3.0, DType::float64);
  // The docs: grad(f)(2., 3.) == 3 cos(2) = -1.2484405.
  EXPECT_NEAR(loom::grad([&](const Array& v) { return sin_times(v, y); })(x).item<double>(),
              3 * std::cos(2.0), 1e-15);
  // The residuals keep history: d2/dx2 = -3 sin(2); and jvp transposes the recorded bwd.
  EXPECT_NEAR(
      loom::grad(loom::grad([&](const Array& v) { return sin_times(v, y); }))(x).item<double>(),
      -3 * std::sin(2.0), 1e-14);
  EXPECT_NEAR(loom::jvp([&](const Array& v) { return sin_times(v, y); }, x,
                        Array::scalar(1.0, DType::float64))
                  .second.item<double>(),
              3 * std::cos(2.0), 1e-15);
}

auto clip_gradient =
    loom::custom_vjp([](const Array&, const Array&, const Array& x) { return x; },
                     [](const Array& lo, const Array& hi, const Array& x) {
                       return std::make_pair(x, std::vector<Array>{lo, hi});
                     },
                     [](const std::vector<Array>& res, const Array& g) {
                       return std::vector<Array>{Array(), Array(), jnp::clip(g, res[0], res[1])};
                     });

TEST(CustomVjp, ClipGradientClipsTheCotangent) {
  // The docs' clip_sin: grad(clip_sin)(t) == clip(cos(t), -0.75, 0.75).
  Array lo = Array::scalar(-0.75, DType::float64), hi = Array::scalar(0.75, DType::float64);
  auto clip_sin = [&](const Array& x) { return jnp::sin(clip_gradient(lo, hi, x)); };
  for (double t : {0.1, 1.2, 2.0, 3.1, 5.0, 6.2}) {
    const double expected = std::clamp(std::cos(t), -0.75, 0.75);
    EXPECT_EQ(loom::grad(clip_sin)(Array::scalar(t, DType::float64)).item<double>(), expected);
  }
  EXPECT_EQ(clip_sin(Array::scalar(1.0, DType::float64)).item<double>(), std::sin(1.0));
}

TEST(CustomVjp, BwdReturningTheWrongCotangentsIsAnError) {
  auto too_few =
      loom::custom_vjp([](const Array& x, const Array& y) { return x * y; },
                       [](const Array& x, const Array& y) { return std::make_pair(x * y, y); },
                       [](const Array& y, const Array& g) { return std::vector<Array>{g * y}; });
  Array x = f64({1, 2, 3}, {3});
  auto f = [&](const Array& v) { return jnp::sum(too_few(v, v)); };
  EXPECT_TRUE(throws_error([&] { loom::grad(f)(x); },
                           {"custom_vjp", "bwd returned 1 cotangents", "2 inputs"}));
  auto wrong_shape =
      loom::custom_vjp([](const Array& x) { return x * 2.0; },
                       [](const Array& x) { return std::make_pair(x * 2.0, 0); },
                       [](int, const Array& g) { return std::vector<Array>{jnp::sum(g)}; });
  EXPECT_TRUE(
      throws_error([&] { loom::grad([&](const Array& v) { return jnp::sum(wrong_shape(v)); })(x); },
                   {"custom_vjp", "cotangent 0", "float64()", "float64(3,)"}));
}

// ---- checkpoint ----

// A tanh MLP over a Tree of per-layer weights; `block` layers per checkpointed segment (0: none).
Array tanh_layers(const Tree& p, const Array& h, int first, int count) {
  Array out = h;
  for (int l = first; l < first + count; ++l)
    out = jnp::tanh(jnp::matmul(out, p.at("w" + std::to_string(10 + l)).leaf()));
  return out;
}

Array tanh_mlp(const Tree& params, const Array& x, int layers, int block) {
  Array h = x;
  if (block == 0) return jnp::mean(jnp::square(tanh_layers(params, x, 0, layers)));
  for (int first = 0; first < layers; first += block) {
    // checkpoint keeps f until the backward pass: capture by value.
    auto segment = [first, block](const Tree& p, const Array& hh) {
      return tanh_layers(p, hh, first, block);
    };
    h = loom::checkpoint(segment)(params, h);
  }
  return jnp::mean(jnp::square(h));
}

Tree mlp_params(int layers, std::int64_t width, DType dtype) {
  Tree p = Tree(Tree::Dict{});
  for (int l = 0; l < layers; ++l) {
    p.set("w" + std::to_string(10 + l),
          loom::testing::wave({width, width}, 0.3 * l, dtype) * (1.5 / std::sqrt(double(width))));
  }
  return p;
}

TEST(Checkpoint, GradientsEqualThePlainOnesBitForBit) {
  const int layers = 6;
  Tree params = mlp_params(layers, 8, DType::float32);
  Array x = loom::testing::wave({5, 8}, 0.9, DType::float32);
  for (int block : {1, 2, 3}) {
    auto [v_plain, g_plain] =
        loom::value_and_grad([&](const Tree& p) { return tanh_mlp(p, x, layers, 0); })(params);
    auto [v_ck, g_ck] =
        loom::value_and_grad([&](const Tree& p) { return tanh_mlp(p, x, layers, block); })(params);
    EXPECT_EQ(v_plain.item<float>(), v_ck.item<float>());
    auto lp = loom::tree_leaves(g_plain), lc = loom::tree_leaves(g_ck);
    ASSERT_EQ(lp.size(), lc.size());
    for (std::size_t i = 0; i < lp.size(); ++i)
      EXPECT_EQ(lp[i].to_vector<float>(), lc[i].to_vector<float>())
          << "block " << block << " leaf " << i;
  }
  // Gradient with respect to the input too, and through the checkpoint twice (grad of grad).
  auto ck_sin = loom::checkpoint([](const Array& v) { return jnp::sin(v) * v; });
  Array s = Array::scalar(0.7, DType::float64);
  // d2/dx2 (x sin x) = 2 cos x - x sin x
  EXPECT_NEAR(loom::grad(loom::grad(ck_sin))(s).item<double>(),
              2 * std::cos(0.7) - 0.7 * std::sin(0.7), 1e-14);
  EXPECT_EQ(ck_sin(s).item<double>(), (jnp::sin(s) * s).item<double>());
}

long status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) {
      std::istringstream ss(line.substr(std::string(field).size()));
      long kib = 0;
      ss >> kib;
      return kib;
    }
  }
  return -1;
}

// Run in a fresh process per variant (this binary, filtered to the child test below): loom's
// pool keeps freed buffers, so two variants in one process would share their peak.
long child_peak_growth_kib(int block) {
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return -1;
  exe[n] = 0;
  const std::string cmd = "LOOM_CHECKPOINT_CHILD_BLOCK=" + std::to_string(block) + " '" + exe +
                          "' --gtest_filter=Checkpoint.PeakMemoryChild 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return -1;
  long kib = -1;
  char line[512];
  while (std::fgets(line, sizeof line, pipe)) std::sscanf(line, "peak_growth_kib=%ld", &kib);
  pclose(pipe);
  return kib;
}

constexpr int kMemLayers = 32;

TEST(Checkpoint, PeakMemoryChild) {
  const char* block = std::getenv("LOOM_CHECKPOINT_CHILD_BLOCK");
  if (!block) GTEST_SKIP() << "runs as a child of SavesPeakMemoryOnATanhMlp";
  Tree params = mlp_params(kMemLayers, 192, DType::float32);
  Array x = loom::testing::wave({512, 192}, 0.4, DType::float32);
  // Warm up first (BLAS buffers, thread pool): only the differentiation's memory is measured.
  tanh_mlp(params, x, kMemLayers, 0);
  const long base = status_kib("VmRSS:");
  Tree g = loom::grad([&](const Tree& p) { return tanh_mlp(p, x, kMemLayers, std::atoi(block)); })(
      params);
  EXPECT_EQ(g.size(), std::size_t(kMemLayers));
  std::printf("peak_growth_kib=%ld\n", status_kib("VmHWM:") - base);
}

TEST(Checkpoint, SavesPeakMemoryOnATanhMlp) {
#if defined(__SANITIZE_ADDRESS__)
  // ASan's quarantine and shadow memory make peak RSS measure the sanitizer, not loom.
  GTEST_SKIP() << "peak RSS is not meaningful under AddressSanitizer";
#endif
  // 32 tanh layers on a (512, 192) float32 batch (384 KiB per activation). Without checkpoint
  // the backward pass needs every layer's input (32 activations); with checkpointed blocks of 4
  // layers only the 8 block boundaries stay alive, plus one block's residuals while it is pulled
  // back. Peak RSS (VmHWM) growth over the RSS before grad, each variant in its own process.
  const long plain = child_peak_growth_kib(0);
  const long block4 = child_peak_growth_kib(4);
  const long block8 = child_peak_growth_kib(8);
  std::printf(
      "[ peak RSS growth ] plain %ld KiB, checkpoint per 4 layers %ld KiB, per 8 layers %ld KiB\n",
      plain, block4, block8);
  ASSERT_GT(plain, 0);
  ASSERT_GT(block4, 0);
  EXPECT_LT(block4, plain);
}
