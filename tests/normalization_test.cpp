// nn::BatchNorm, LayerNorm, RMSNorm, GroupNorm, InstanceNorm (flax/linen/normalization.py).
// Golden values: NumPy, from tests/data/normalization_golden.py (textbook formulas with a
// two-pass variance; inputs are loom::testing::wave, sin(0.37 i + phase)); the values are pasted
// below under the name the script prints. Trees follow Flax's source (params/{bias,scale},
// batch_stats/{mean,var}, shaped as the feature axes). Cases reproduced from Flax's
// tests/linen/linen_test.py (NormalizationTest) are named in the comments.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <vector>

#include "loom/core/errors.hpp"
#include "loom/loom.hpp"
#include "loom/nn.hpp"
#include "test_util.hpp"

namespace nn = loom::nn;
namespace jnp = loom::numpy;
namespace rnd = loom::random;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::Tree;
using loom::testing::allclose;
using loom::testing::f64;
using loom::testing::grad_matches_fd;
using loom::testing::throws_error;
using loom::testing::wave;

namespace {

const rnd::Key kKey = rnd::key(0);

Array golden(std::vector<double> v, Shape s) {
  return f64(std::move(v), s);
}
Array ramp(std::int64_t n, double a, double b) {  // a + b k, float64
  std::vector<double> v;
  for (std::int64_t k = 0; k < n; ++k) v.push_back(a + b * double(k));
  return f64(v, Shape{n});
}
// sum(y * w) with fixed non-uniform weights: a scalar whose gradient exercises every output.
Array weighted_sum(const Array& y) {
  return jnp::sum(y * wave(y.shape(), 2.0, y.dtype()));
}

// A parent module, so errors and trees show a module path.
template <typename Norm>
struct Wrap : nn::Module<Wrap<Norm>> {
  Norm norm;
  Array call(const Array& x) const { return norm(x); }
};

// ================================ LayerNorm ================================

TEST(LayerNorm, TreeDefaultsAndDtype) {
  nn::LayerNorm ln;
  EXPECT_EQ(ln.epsilon, 1e-6);
  const Array x = wave({2, 3, 4}, 0.3, DType::float32);
  auto [y, v] = ln.init_with_output(kKey, x);
  EXPECT_EQ(v.str(), "params/bias: float32[4]\nparams/scale: float32[4]\n");
  EXPECT_TRUE(allclose(v.at("params").at("scale").leaf(), jnp::ones({4})));
  EXPECT_TRUE(allclose(v.at("params").at("bias").leaf(), jnp::zeros({4})));
  EXPECT_EQ(y.dtype(), DType::float32);
  EXPECT_EQ(y.shape(), x.shape());
  // float64 input with float32 params: promoted to float64 (Flax's canonicalize_dtype).
  EXPECT_EQ(ln.apply(v, wave({2, 3, 4}, 0.3)).dtype(), DType::float64);
  // dtype given: the result is in dtype.
  nn::LayerNorm ln32{.dtype = DType::float32};
  EXPECT_EQ(ln32.apply(v, wave({2, 3, 4}, 0.3)).dtype(), DType::float32);
  // No scale/bias: no params at all.
  EXPECT_TRUE(loom::tree_leaves(nn::LayerNorm{.use_bias = false, .use_scale = false}.init(kKey, x))
                  .empty());
}

TEST(LayerNorm, LastAxisMatchesNumPy) {
  // golden "layernorm_last"
  const Array expected =
      golden({-1.50106483550131, -0.267309980025347, 0.647842837921263,   1.12053197760539,
              1.14182470647642,  0.632236565199152,  -0.285859054422258,  -1.48820221725331,
              1.45655093528033,  0.328665094517543,  -0.59520323134211,   -1.19001279845576,
              -1.04572041227463, -0.69936665644851,  0.203734504279423,   1.54135256444371,
              -1.41971151860241, -0.374275859873411, 0.554131732429835,   1.23985564604599,
              0.871338307360523, 0.802516607623829,  -0.0637211542080751, -1.61013376077628},
             {2, 3, 4});
  const Array x = wave({2, 3, 4}, 0.3);
  nn::LayerNorm ln;
  Tree v = ln.init(kKey, x);
  EXPECT_TRUE(allclose(ln.apply(v, x), expected, 1e-9, 1e-9));
  // float32 input: the same to float32 rounding.
  EXPECT_TRUE(allclose(ln.apply(v, x.astype(DType::float32)), expected, 1e-5, 1e-5));
  // use_fast_variance=false agrees.
  EXPECT_TRUE(
      allclose(nn::LayerNorm{.use_fast_variance = false}.apply(v, x), expected, 1e-9, 1e-9));
}

TEST(LayerNorm, ReductionAndFeatureAxesWithScaleBias) {
  // golden "layernorm_12": statistics over (1, 2), scale 1 + 0.1 k and bias 0.5 - 0.2 k on -1.
  const Array expected =
      golden({0.553530861135325,   0.906489070536936,  1.20474388745136,  1.34475633855938,
              1.59773250804387,    1.26976829880856,   0.690673166306467, -0.123018405436305,
              -0.0791775797462621, -0.927812544404604, -1.7672850141074,  -2.49105759848278,
              -1.10347058557596,   -1.34679037446663,  -1.36361519489104, -1.15144944918894,
              0.179924416904425,   0.498405005224879,  0.849749588617527, 1.1389562145953,
              1.62069658379137,    1.51556628151016,   1.18990067440186,  0.623976202087649},
             {2, 3, 4});
  nn::LayerNorm ln{.param_dtype = DType::float64, .reduction_axes = {1, 2}, .feature_axes = -1};
  Tree v = {{"params", {{"scale", ramp(4, 1.0, 0.1)}, {"bias", ramp(4, 0.5, -0.2)}}}};
  const Array x = wave({2, 3, 4}, 0.3);
  EXPECT_TRUE(allclose(ln.apply(v, x), expected, 1e-9, 1e-9));
  // Negative and repeated axes mean the same axes (Flax's _canonicalize_axes).
  nn::LayerNorm ln2 = ln;
  ln2.reduction_axes = {-1, 1, 2};
  EXPECT_TRUE(allclose(ln2.apply(v, x), expected, 1e-9, 1e-9));
}

TEST(LayerNorm, SlowVarianceSurvivesLargeOffset) {
  // Flax test_layer_norm(use_fast_variance=False): a large offset (1e6 there, 1e4 here) breaks the
  // fast variance in float32 but not the two-pass one. Reference: the textbook formula in double
  // over the float32 values.
  const Array x = (wave({2, 3, 4}, 0.1) + 1e4).astype(DType::float32);
  const double e = 1e-5;
  std::vector<double> xs = x.to_vector<double>(), ref(xs.size());
  for (std::size_t r = 0; r < 6; ++r) {
    double m = 0, var = 0;
    for (std::size_t k = 0; k < 4; ++k) m += xs[r * 4 + k] / 4;
    for (std::size_t k = 0; k < 4; ++k) var += (xs[r * 4 + k] - m) * (xs[r * 4 + k] - m) / 4;
    for (std::size_t k = 0; k < 4; ++k) ref[r * 4 + k] = (xs[r * 4 + k] - m) / std::sqrt(var + e);
  }
  nn::LayerNorm ln{.epsilon = e, .use_bias = false, .use_scale = false, .use_fast_variance = false};
  Array y = ln.apply(Tree{}, x);
  EXPECT_EQ(y.dtype(), DType::float32);
  // float32 rounding of x - mean at 1e4 (ulp 1e-3) bounds the agreement.
  EXPECT_TRUE(allclose(y, f64(ref, {2, 3, 4}), 1e-2, 1e-2));
  // The fast variance, mean(x^2) - mean^2 at 1e8 in float32, is far off.
  nn::LayerNorm fast = ln;
  fast.use_fast_variance = true;
  EXPECT_FALSE(allclose(fast.apply(Tree{}, x), f64(ref, {2, 3, 4}), 0.1, 0.1));
}

TEST(LayerNorm, GradientsMatchFiniteDifferences) {
  nn::LayerNorm ln{.param_dtype = DType::float64, .reduction_axes = {1, 2}};
  Tree v = {{"params", {{"scale", ramp(4, 1.0, 0.1)}, {"bias", ramp(4, 0.5, -0.2)}}}};
  const Array x = wave({2, 3, 4}, 0.3);
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return weighted_sum(ln.apply(v, a)); }, x));
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& s) {
        Tree p = {{"params", {{"scale", s}, {"bias", ramp(4, 0.5, -0.2)}}}};
        return weighted_sum(ln.apply(p, x));
      },
      ramp(4, 1.0, 0.1)));
  nn::LayerNorm slow{.use_fast_variance = false};
  Tree v2 = slow.init(kKey, x);
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return weighted_sum(slow.apply(v2, a)); }, x));
}

TEST(LayerNorm, Errors) {
  Wrap<nn::LayerNorm> m{.norm = nn::LayerNorm{.reduction_axes = 3}};
  EXPECT_TRUE(throws_error(
      [&] {
        m.init(kKey, wave({2, 3, 4}, 0.0));
      },
      {"LayerNorm", "reduction_axes (3,)", "(2, 3, 4)", "/LayerNorm_0"}));
  Wrap<nn::LayerNorm> f{.norm = nn::LayerNorm{.feature_axes = {0, -4}}};
  EXPECT_TRUE(throws_error(
      [&] {
        f.init(kKey, wave({2, 3, 4}, 0.0));
      },
      {"feature_axes (0, -4)", "out of range"}));
  // Features not matching the stored params: Flax's ScopeParamShapeError.
  Wrap<nn::LayerNorm> ok;
  Tree v = ok.init(kKey, wave({2, 4}, 0.0));
  EXPECT_TRUE(throws_error(
      [&] {
        ok.apply(v, wave({2, 5}, 0.0));
      },
      {"ScopeParamShapeError", "scale", "(5,)", "(4,)", "/LayerNorm_0"}));
  EXPECT_TRUE(throws_error([&] { ok.init(kKey, jnp::ones({})); }, {"LayerNorm", "out of range"}));
}

// ================================ RMSNorm ================================

TEST(RMSNorm, TreeValuesAndGradients) {
  const Array x = wave({2, 3, 4}, 0.3);
  nn::RMSNorm rms;
  EXPECT_EQ(rms.init(kKey, x).str(), "params/scale: float32[4]\n");
  // golden "rmsnorm_last": x / sqrt(mean(x^2) + 1e-6) * (1 + 0.1 k)
  const Array expected =
      golden({0.399290800172849,  0.922946670575779,  1.39828031873188,  1.73383062948063,
              1.36362808420839,   1.28332132366157,   0.97413843694779,  0.451148650121856,
              -0.181516718725982, -0.793090084495095, -1.39545900655525, -1.8815983332053,
              -1.25362161629653,  -1.27189222419274,  -1.08289748141559, -0.684353668694443,
              -0.113539415148995, 0.597383414415134,  1.35142597396948,  2.0239394333646,
              1.14923727368139,   1.24956471467372,   1.16274077033443,  0.87202756891341},
             {2, 3, 4});
  nn::RMSNorm r64{.param_dtype = DType::float64};
  Tree v = {{"params", {{"scale", ramp(4, 1.0, 0.1)}}}};
  EXPECT_TRUE(allclose(r64.apply(v, x), expected, 1e-9, 1e-9));
  EXPECT_EQ(rms.apply(rms.init(kKey, x), x.astype(DType::float32)).dtype(), DType::float32);
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return weighted_sum(r64.apply(v, a)); }, x));
  // Flax test_rms_norm: use_scale=False, reduction_axes (1, 2): x * rsqrt(mean(x^2) + e).
  nn::RMSNorm plain{.epsilon = 1e-5, .use_scale = false, .reduction_axes = {1, 2}};
  EXPECT_TRUE(loom::tree_leaves(plain.init(kKey, x)).empty());
  std::vector<double> xs = x.to_vector<double>(), ref(xs.size());
  for (std::size_t b = 0; b < 2; ++b) {
    double ms = 0;
    for (std::size_t k = 0; k < 12; ++k) ms += xs[b * 12 + k] * xs[b * 12 + k] / 12;
    for (std::size_t k = 0; k < 12; ++k) ref[b * 12 + k] = xs[b * 12 + k] / std::sqrt(ms + 1e-5);
  }
  EXPECT_TRUE(allclose(plain.apply(Tree{}, x), f64(ref, {2, 3, 4}), 1e-12, 1e-12));
  EXPECT_TRUE(throws_error(
      [&] {
        nn::RMSNorm{.reduction_axes = -3}.init(kKey, wave({2, 2}, 0));
      },
      {"RMSNorm", "reduction_axes (-3,)", "(2, 2)"}));
}

}  // namespace
