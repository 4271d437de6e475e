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

std::optional<loom::numpy::Axes> numpy_axes(std::vector<int> a) {
  return loom::numpy::Axes(std::move(a));
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

// The fused kernel: statistics and params on the same trailing axes, everything in x's dtype.
TEST(LayerNorm, FusedPathMatchesNumPyAndFiniteDifferences) {
  const Array x = wave({2, 3, 4}, 0.3);
  // golden "layernorm_last_sb"
  const Array last =
      golden({-1.00106483550131,  0.00595902197211834, 0.877411405505516,  1.35669157088701,
              1.64182470647642,   0.995460221719068,   -0.243030865306709, -2.0346628824293,
              1.95655093528033,   0.661531603969297,   -0.614243877610532, -1.64701663799249,
              -0.545720412274627, -0.469303322093361,  0.344481405135308,  1.90375833377683,
              -0.91971151860241,  -0.111703445860752,  0.764958078915802,  1.51181233985978,
              1.37133830736052,   1.18276826838621,    0.0235346149503098, -2.19317388900916},
             {2, 3, 4});
  nn::LayerNorm ln{.param_dtype = DType::float64};
  Tree v = {{"params", {{"scale", ramp(4, 1.0, 0.1)}, {"bias", ramp(4, 0.5, -0.2)}}}};
  EXPECT_TRUE(allclose(ln.apply(v, x), last, 1e-9, 1e-9));
  // float32 everywhere (the default params): fused too.
  Tree v32 = loom::tree_map([](const Array& a) { return a.astype(DType::float32); }, v);
  Array y32 = nn::LayerNorm{}.apply(v32, x.astype(DType::float32));
  EXPECT_EQ(y32.dtype(), DType::float32);
  EXPECT_TRUE(allclose(y32, last, 1e-5, 1e-5));
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return weighted_sum(ln.apply(v, a)); }, x));
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& sc) {
        Tree p = {{"params", {{"scale", sc}, {"bias", ramp(4, 0.5, -0.2)}}}};
        return weighted_sum(jnp::square(ln.apply(p, x)));
      },
      ramp(4, 1.0, 0.1)));
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& b) {
        Tree p = {{"params", {{"scale", ramp(4, 1.0, 0.1)}, {"bias", b}}}};
        return weighted_sum(jnp::square(ln.apply(p, x)));
      },
      ramp(4, 0.5, -0.2)));
  // Two trailing axes, params (3, 4). golden "layernorm_12_sb12"
  nn::LayerNorm ln12{
      .param_dtype = DType::float64, .reduction_axes = {1, 2}, .feature_axes = {1, 2}};
  Tree v12 = {{"params",
               {{"scale", jnp::reshape(ramp(12, 1.0, 0.05), {3, 4})},
                {"bias", jnp::reshape(ramp(12, -0.3, 0.1), {3, 4})}}}};
  EXPECT_TRUE(
      allclose(ln12.apply(v12, x),
               golden({-0.246469138864675, 0.37892138551253,  0.912681896830417, 1.27805368411022,
                       1.41727900965265,   1.30200943046427,  0.939895930165339, 0.376096271277684,
                       -0.310848611644767, -1.0184801721697,  -1.63410626763426, -2.05087636742178,
                       -1.90347058557596,  -1.77193626653633, -1.44164726198345, -0.930128358897909,
                       -0.28409069971469,  0.42546023321009,  1.11222872100232,  1.68660837669512,
                       2.06897521730792,   2.20233737108158,  2.06237584300232,  1.66320239479681},
                      {2, 3, 4}),
               1e-9, 1e-9));
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return weighted_sum(ln12.apply(v12, a)); }, x));
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& sc) {
        Tree p = {{"params", {{"scale", sc}, {"bias", v12.at("params").at("bias")}}}};
        return weighted_sum(jnp::square(ln12.apply(p, x)));
      },
      v12.at("params").at("scale").leaf()));
}

TEST(LayerNorm, FusedAndComposedAgreeOnConstantRows) {
  // A constant row has var exactly 0: max(0, .)'s derivative is 1/2 there (JAX's tie rule).
  // The fused path (float64 params) and the composed ops (float32 params, promoted) must agree,
  // values and gradients, also with scale and bias absent.
  std::vector<double> xv = wave({3, 4}, 0.5).to_vector<double>();
  for (int k = 4; k < 8; ++k) xv[std::size_t(k)] = 0.75;
  const Array x = f64(xv, {3, 4});
  for (bool params : {true, false}) {
    nn::LayerNorm fused{.param_dtype = DType::float64, .use_bias = params, .use_scale = params};
    nn::LayerNorm composed{.use_bias = params, .use_scale = params};
    Tree vf = fused.init(kKey, x), vc = composed.init(kKey, x);
    EXPECT_TRUE(allclose(fused.apply(vf, x), composed.apply(vc, x), 1e-12, 1e-12));
    Array gf = loom::grad([&](const Array& a) { return weighted_sum(fused.apply(vf, a)); })(x);
    Array gc = loom::grad([&](const Array& a) { return weighted_sum(composed.apply(vc, a)); })(x);
    EXPECT_TRUE(allclose(gf, gc, 1e-9, 1e-9));
  }
}

TEST(LayerNorm, FusedLongRowsStayAccurate) {
  // 2 rows of 60000 float32 values around 3: the fused sums (16 lanes in blocks, block totals
  // in double) against the textbook formula in double over the same float32 values.
  const Array x = (wave({2, 60000}, 0.1) + 3.0).astype(DType::float32);
  std::vector<double> xs = x.to_vector<double>(), ref(xs.size());
  for (std::size_t r = 0; r < 2; ++r) {
    double m = 0, var = 0;
    for (std::size_t k = 0; k < 60000; ++k) m += xs[r * 60000 + k] / 60000;
    for (std::size_t k = 0; k < 60000; ++k) {
      var += (xs[r * 60000 + k] - m) * (xs[r * 60000 + k] - m) / 60000;
    }
    for (std::size_t k = 0; k < 60000; ++k) {
      ref[r * 60000 + k] = (xs[r * 60000 + k] - m) / std::sqrt(var + 1e-6);
    }
  }
  nn::LayerNorm ln;
  EXPECT_TRUE(allclose(ln.apply(ln.init(kKey, x), x), f64(ref, {2, 60000}), 1e-4, 1e-4));
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

// ================================ BatchNorm ================================

Array bn_x() {
  return wave({4, 3}, 1.1);
}
Tree bn_vars(Array mean, Array var) {
  return {{"params", {{"scale", f64({2.0, 0.5, 1.5}, {3})}, {"bias", f64({0.1, -0.2, 0.3}, {3})}}},
          {"batch_stats", {{"mean", mean}, {"var", var}}}};
}

TEST(BatchNorm, TreeDefaultsAndInitLeavesStatsAlone) {
  nn::BatchNorm bn;
  EXPECT_EQ(bn.momentum, 0.99);
  EXPECT_EQ(bn.epsilon, 1e-5);
  // Flax's docstring: {'batch_stats': {'mean': (6,), 'var': (6,)}, 'params': {'bias': (6,),
  // 'scale': (6,)}} for a (5, 6) input.
  Tree v = bn.init(kKey, wave({5, 6}, 0.4, DType::float32), /*use_running_average=*/false);
  EXPECT_EQ(v.str(),
            "batch_stats/mean: float32[6]\nbatch_stats/var: float32[6]\n"
            "params/bias: float32[6]\nparams/scale: float32[6]\n");
  // Not updated during init (Flax checks is_initializing).
  EXPECT_TRUE(allclose(v.at("batch_stats").at("mean").leaf(), jnp::zeros({6}), 0, 0));
  EXPECT_TRUE(allclose(v.at("batch_stats").at("var").leaf(), jnp::ones({6}), 0, 0));
  // axis picks the feature axes; the others are reduced.
  Tree v1 = nn::BatchNorm{.axis = 1}.init(kKey, wave({2, 3, 5}, 0.0), false);
  EXPECT_EQ(v1.str(),
            "batch_stats/mean: float32[3]\nbatch_stats/var: float32[3]\n"
            "params/bias: float32[3]\nparams/scale: float32[3]\n");
  Tree v2 =
      nn::BatchNorm{.axis = {1, -1}, .use_bias = false}.init(kKey, wave({2, 3, 5}, 0.0), false);
  EXPECT_EQ(v2.str(),
            "batch_stats/mean: float32[3,5]\nbatch_stats/var: float32[3,5]\n"
            "params/scale: float32[3,5]\n");
}

TEST(BatchNorm, TrainingUpdatesRunningStatsWhenMutable) {
  nn::BatchNorm bn{.momentum = 0.9, .param_dtype = DType::float64};
  Tree v = bn.init(kKey, bn_x(), false);
  v.set("params", bn_vars(Array(), Array()).at("params"));
  auto [y, updates] =
      bn.apply_mutable(v, {.mutable_collections = {"batch_stats"}}, bn_x(), /*use_ra=*/false);
  // golden "batchnorm_train"
  EXPECT_TRUE(allclose(
      y,
      golden({2.07757790746415, 0.423000863436802, 2.4587662141203, 1.84455609727897,
              0.132735369384634, 0.938317935681831, -0.731918711254748, -0.528828756014793,
              -0.997833970759671, -2.79021529348837, -0.826907476806644, -1.19925017904246},
             {4, 3}),
      1e-9, 1e-9));
  EXPECT_EQ(updates.str(), "batch_stats/mean: float64[3]\nbatch_stats/var: float64[3]\n");
  // golden "batchnorm_ra_mean", "batchnorm_ra_var": 0.9 * ra + 0.1 * batch statistic. The old
  // values are float32, so 0.9 * 1 is float32's 0.9 (as in Flax): 2.4e-8 from NumPy's.
  EXPECT_TRUE(allclose(updates.at("batch_stats").at("mean").leaf(),
                       golden({0.0138980878307945, 0.000249146453573873, -0.0134335157273391}, {3}),
                       1e-7, 1e-7));
  EXPECT_TRUE(allclose(updates.at("batch_stats").at("var").leaf(),
                       golden({0.957873869513819, 0.963439267387823, 0.958239838214511}, {3}), 1e-7,
                       1e-7));
  // Flax's ModifyScopeVariableError when batch_stats is not mutable.
  EXPECT_TRUE(throws_error([&] { bn.apply(v, bn_x(), false); },
                           {"ModifyScopeVariableError", "\"mean\"", "batch_stats", "immutable"}));
  // float32 throughout: the stored statistics stay float32.
  nn::BatchNorm bn32{.momentum = 0.9};
  Tree v32 = bn32.init(kKey, bn_x().astype(DType::float32), false);
  auto [y32, up32] = bn32.apply_mutable(v32, {.mutable_collections = {"batch_stats"}},
                                        bn_x().astype(DType::float32), false);
  EXPECT_EQ(y32.dtype(), DType::float32);
  EXPECT_EQ(up32.str(), "batch_stats/mean: float32[3]\nbatch_stats/var: float32[3]\n");
  EXPECT_TRUE(allclose(up32.at("batch_stats").at("var").leaf(),
                       golden({0.957873869513819, 0.963439267387823, 0.958239838214511}, {3}), 1e-6,
                       1e-6));
}

TEST(BatchNorm, FlaxTestBatchNorm) {
  // Flax test_batch_norm (test_mask=False): momentum 0.9, use_running_average=False, (4, 3, 2):
  // the output has per-feature mean 0 and var 1 over (0, 1); after one apply the running mean
  // is 0.1 * mean and the running var 0.9 + 0.1 * var. Reference statistics in double here.
  const Array x = wave({4, 3, 2}, 0.5, DType::float32);
  nn::BatchNorm bn{.use_running_average = false, .momentum = 0.9};
  auto [y, v] = bn.init_with_output(kKey, x);
  auto stats = [](const Array& a, std::size_t f) {
    std::vector<double> d = a.to_vector<double>();
    double m = 0, q = 0;
    for (std::size_t i = f; i < d.size(); i += 2) m += d[i] / 12;
    for (std::size_t i = f; i < d.size(); i += 2) q += (d[i] - m) * (d[i] - m) / 12;
    return std::pair<double, double>(m, q);
  };
  for (std::size_t f = 0; f < 2; ++f) {
    EXPECT_NEAR(stats(y, f).first, 0.0, 1e-4);
    EXPECT_NEAR(stats(y, f).second, 1.0, 1e-4);
  }
  auto [_, upd] = bn.apply_mutable(v, {.mutable_collections = {"batch_stats"}}, x);
  std::vector<double> ema_m = upd.at("batch_stats").at("mean").leaf().to_vector<double>();
  std::vector<double> ema_v = upd.at("batch_stats").at("var").leaf().to_vector<double>();
  for (std::size_t f = 0; f < 2; ++f) {
    EXPECT_NEAR(ema_m[f], 0.1 * stats(x, f).first, 1e-4);
    EXPECT_NEAR(ema_v[f], 0.9 + 0.1 * stats(x, f).second, 1e-4);
  }
}

TEST(BatchNorm, RunningAverageFromFieldOrArgument) {
  const Array m = f64({0.2, -0.1, 0.05}, {3}), var = f64({0.5, 2.0, 1.5}, {3});
  Tree v = bn_vars(m, var);
  // golden "batchnorm_eval": (x - m) / sqrt(v + 1e-5) * scale + bias
  const Array expected =
      golden({2.05501009601876, 0.187113248525088, 1.41939225577553, 1.8043113053317,
              0.0236343021498363, 0.471981343912457, -0.96761428490289, -0.348961849980204,
              -0.734459854515594, -3.18205276871355, -0.516841243881487, -0.85996488895792},
             {4, 3});
  // From the argument; batch_stats immutable is fine (nothing is written).
  EXPECT_TRUE(allclose(nn::BatchNorm{}.apply(v, bn_x(), true), expected, 1e-9, 1e-9));
  // From the field.
  EXPECT_TRUE(
      allclose(nn::BatchNorm{.use_running_average = true}.apply(v, bn_x()), expected, 1e-9, 1e-9));
  // Both or neither: merge_param's error.
  EXPECT_TRUE(
      throws_error([&] { nn::BatchNorm{.use_running_average = true}.apply(v, bn_x(), true); },
                   {"use_running_average"}));
  EXPECT_TRUE(throws_error([&] { nn::BatchNorm{}.apply(v, bn_x()); }, {"use_running_average"}));
}

TEST(BatchNorm, AxisIsATransposeOfTheLastAxis) {
  // BatchNorm(axis=1) on (2, 3, 5) equals BatchNorm(axis=-1) on the transposed (2, 5, 3).
  const Array x = wave({2, 3, 5}, 0.9);
  nn::BatchNorm b1{.use_running_average = false, .axis = 1};
  nn::BatchNorm b2{.use_running_average = false};
  Tree v = b1.init(kKey, x);
  auto [y1, u1] = b1.apply_mutable(v, {.mutable_collections = {"batch_stats"}}, x);
  auto [y2, u2] =
      b2.apply_mutable(v, {.mutable_collections = {"batch_stats"}}, jnp::transpose(x, {0, 2, 1}));
  EXPECT_TRUE(allclose(y1, jnp::transpose(y2, {0, 2, 1}), 1e-12, 1e-12));
  EXPECT_TRUE(allclose(u1.at("batch_stats").at("var").leaf(), u2.at("batch_stats").at("var").leaf(),
                       1e-12, 1e-12));
}

struct TwoCalls : nn::Module<TwoCalls> {
  std::pair<Array, Array> call(const Array& x) const {
    auto norm = child("norm", nn::BatchNorm{.use_running_average = false, .axis_name = "batch"});
    Array y1 = norm(x);
    return {y1, norm(y1)};
  }
};

TEST(BatchNorm, AxisNameReservedButIgnoredInInit) {
  // Flax test_batch_norm_multi_init: axis_name is not used during init, and the same module
  // called twice gives (almost) the same normalized output.
  TwoCalls model;
  auto [y, v] = model.init_with_output(rnd::key(0), wave({2, 4}, 0.2, DType::float32));
  EXPECT_EQ(v.str(),
            "batch_stats/norm/mean: float32[4]\nbatch_stats/norm/var: float32[4]\n"
            "params/norm/bias: float32[4]\nparams/norm/scale: float32[4]\n");
  EXPECT_TRUE(allclose(y.first, y.second, 0.005, 1e-5));
  // Outside init the statistics are averaged over the axis: unbound here, a clear error.
  EXPECT_TRUE(throws_error(
      [&] {
        model.apply_mutable(v, {.mutable_collections = {"batch_stats"}},
                            wave({2, 4}, 0.2, DType::float32));
      },
      {"BatchNorm", "axis_name \"batch\"", "unbound", "/norm"}));
}

TEST(BatchNorm, GradientsMatchFiniteDifferences) {
  Tree v = bn_vars(f64({0.2, -0.1, 0.05}, {3}), f64({0.5, 2.0, 1.5}, {3}));
  nn::BatchNorm train{.param_dtype = DType::float64};
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& a) {
        return weighted_sum(
            train.apply_mutable(v, {.mutable_collections = {"batch_stats"}}, a, false).first);
      },
      bn_x()));
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& a) { return weighted_sum(nn::BatchNorm{}.apply(v, a, true)); }, bn_x()));
  nn::BatchNorm slow{.param_dtype = DType::float64, .use_fast_variance = false};
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& a) {
        return weighted_sum(
            slow.apply_mutable(v, {.mutable_collections = {"batch_stats"}}, a, false).first);
      },
      wave({3, 2, 3}, 0.3)));
}

TEST(BatchNorm, Errors) {
  Wrap<nn::BatchNorm> m{.norm = nn::BatchNorm{.use_running_average = true, .axis = 2}};
  EXPECT_TRUE(throws_error([&] { m.init(kKey, bn_x()); },
                           {"BatchNorm", "axis (2,)", "(4, 3)", "/BatchNorm_0"}));
  Wrap<nn::BatchNorm> ok{.norm = nn::BatchNorm{.use_running_average = true}};
  Tree v = ok.init(kKey, bn_x());
  EXPECT_TRUE(throws_error(
      [&] {
        ok.apply(v, wave({4, 5}, 0.0));
      },
      {"BatchNorm", "batch_stats", "(3,)", "(5,)", "/BatchNorm_0"}));
  // batch_stats missing from the variables.
  Tree only_params = {{"params", v.at("params")}};
  EXPECT_TRUE(throws_error([&] { ok.apply(only_params, bn_x()); }, {"batch_stats"}));
}

// ================================ GroupNorm ================================

const std::vector<double> kGroupNormGolden = {
    // golden "groupnorm": (2, 2, 6), 3 groups of 2, statistics over axis 1 and the group,
    // scale 1 + 0.1 k, bias 0.5 - 0.2 k.
    1.12454981087399,   1.63796599049939,   1.30570448530031,   1.17437693500314,
    1.31050299287924,   0.755394382102206,  0.0464753234140072, -1.22609363821619,
    -0.884402566580365, -1.61412068028308,  -1.652025400602,    -2.03233465954211,
    -0.616271566073599, -0.661777013476525, -1.44236370238727,  -0.951579887413326,
    -1.15565839213377,  1.34740531521407,   1.43133576844771,   1.46520639086501,
    1.42604282353547,   0.985927506169441,  0.636353456689469,  -2.43386431295232};

Tree group_vars() {
  return {{"params", {{"scale", ramp(6, 1.0, 0.1)}, {"bias", ramp(6, 0.5, -0.2)}}}};
}

TEST(GroupNorm, TreeDefaults) {
  nn::GroupNorm gn;
  EXPECT_EQ(gn.num_groups, 32);
  EXPECT_FALSE(gn.group_size.has_value());
  EXPECT_EQ(gn.epsilon, 1e-6);
  Tree v = gn.init(kKey, wave({2, 3, 64}, 0.0, DType::float32));
  EXPECT_EQ(v.str(), "params/bias: float32[64]\nparams/scale: float32[64]\n");
}

TEST(GroupNorm, GroupsMatchNumPy) {
  const Array x = wave({2, 2, 6}, 0.7);
  const Array expected = golden(kGroupNormGolden, {2, 2, 6});
  nn::GroupNorm by_count{.num_groups = 3, .param_dtype = DType::float64};
  EXPECT_TRUE(allclose(by_count.apply(group_vars(), x), expected, 1e-9, 1e-9));
  nn::GroupNorm by_size{.num_groups = std::nullopt, .group_size = 2, .param_dtype = DType::float64};
  EXPECT_TRUE(allclose(by_size.apply(group_vars(), x), expected, 1e-9, 1e-9));
  nn::GroupNorm slow = by_count;
  slow.use_fast_variance = false;
  EXPECT_TRUE(allclose(slow.apply(group_vars(), x), expected, 1e-9, 1e-9));
  Array y32 = nn::GroupNorm{.num_groups = 3}.apply(group_vars(), x.astype(DType::float32));
  EXPECT_EQ(y32.dtype(), DType::float64);  // float64 params promote (canonicalize_dtype)
  EXPECT_TRUE(allclose(y32, expected, 1e-5, 1e-5));
}

TEST(GroupNorm, FlaxTestGroupNormBatched) {
  // Flax test_group_norm_batched: explicit reduction_axes (-3, -2, -1) make a stacked batch
  // give the same result per element as the unstacked input.
  const Array x = wave({3, 4, 8}, 0.1, DType::float32);
  nn::GroupNorm gn{.num_groups = 2,
                   .epsilon = 1e-5,
                   .use_bias = false,
                   .use_scale = false,
                   .reduction_axes = numpy_axes({-3, -2, -1})};
  Array y = gn.apply(Tree{}, x);
  Array ys = gn.apply(Tree{}, jnp::stack({x, x, x}));
  EXPECT_EQ(ys.shape(), Shape({3, 3, 4, 8}));
  std::vector<double> a = y.to_vector<double>(), b = ys.to_vector<double>();
  for (std::size_t i = 0; i < b.size(); ++i) EXPECT_NEAR(b[i], a[i % a.size()], 1e-5);
  // Flax test_group_norm_unbatched: reduction_axes including the leading axis.
  nn::GroupNorm all{.num_groups = 2,
                    .use_bias = false,
                    .use_scale = false,
                    .reduction_axes = numpy_axes({0, 1, 2})};
  Array z = all.apply(Tree{}, x.astype(DType::float64));
  nn::LayerNorm ln{.use_bias = false, .use_scale = false, .reduction_axes = {0, 1, 3}};
  // Same statistics: (3, 4, 2, 4) over (0, 1, 3).
  Array z_ref = jnp::reshape(ln.apply(Tree{}, jnp::reshape(x.astype(DType::float64), {3, 4, 2, 4})),
                             {3, 4, 8});
  EXPECT_TRUE(allclose(z, z_ref, 1e-12, 1e-12));
}

TEST(GroupNorm, EquivalentToLayerNormAndInstanceNorm) {
  // Flax test_normalization_equivalence: GroupNorm(num_groups=1) == LayerNorm(reduction_axes
  // (1, 2, 3)); GroupNorm(group_size=1) == InstanceNorm(). Same init (keys) and outputs.
  const Array x = wave({2, 3, 4, 5}, 0.6, DType::float32);
  const auto u = nn::initializers::uniform();
  nn::LayerNorm ln{.bias_init = u, .scale_init = u, .reduction_axes = {1, 2, 3}};
  nn::GroupNorm g1{.num_groups = 1, .bias_init = u, .scale_init = u};
  Tree vl = ln.init(rnd::key(1), x), vg = g1.init(rnd::key(1), x);
  EXPECT_TRUE(
      allclose(vl.at("params").at("scale").leaf(), vg.at("params").at("scale").leaf(), 0, 0));
  EXPECT_TRUE(allclose(vl.at("params").at("bias").leaf(), vg.at("params").at("bias").leaf(), 0, 0));
  EXPECT_TRUE(allclose(ln.apply(vl, x), g1.apply(vg, x), 1e-6, 1e-6));
  nn::InstanceNorm in{.bias_init = u, .scale_init = u};
  nn::GroupNorm gs{.num_groups = std::nullopt, .group_size = 1, .bias_init = u, .scale_init = u};
  Tree vi = in.init(rnd::key(1), x), vs = gs.init(rnd::key(1), x);
  EXPECT_TRUE(
      allclose(vi.at("params").at("scale").leaf(), vs.at("params").at("scale").leaf(), 0, 0));
  EXPECT_TRUE(allclose(in.apply(vi, x), gs.apply(vs, x), 1e-6, 1e-6));
}

TEST(GroupNorm, GradientsMatchFiniteDifferences) {
  nn::GroupNorm gn{.num_groups = 3, .param_dtype = DType::float64};
  Tree v = group_vars();
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return weighted_sum(gn.apply(v, a)); },
                              wave({2, 2, 6}, 0.7)));
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& b) {
        Tree p = {{"params", {{"scale", ramp(6, 1.0, 0.1)}, {"bias", b}}}};
        return weighted_sum(jnp::square(gn.apply(p, wave({2, 2, 6}, 0.7))));
      },
      ramp(6, 0.5, -0.2)));
}

TEST(GroupNorm, Errors) {
  const Array x = wave({2, 5, 6}, 0.0);
  // Flax test_group_norm_raises: 3 groups do not divide 32 channels (here 4 and 6).
  Wrap<nn::GroupNorm> m{.norm = nn::GroupNorm{.num_groups = 4}};
  EXPECT_TRUE(throws_error(
      [&] { m.init(kKey, x); },
      {"GroupNorm", "number of groups (4)", "channels (6)", "(2, 5, 6)", "/GroupNorm_0"}));
  EXPECT_TRUE(throws_error([&] { nn::GroupNorm{.num_groups = 0}.init(kKey, x); },
                           {"number of groups (0)"}));
  EXPECT_TRUE(throws_error(
      [&] { nn::GroupNorm{.num_groups = std::nullopt, .group_size = 4}.init(kKey, x); },
      {"channels (6)", "group size (4)"}));
  EXPECT_TRUE(throws_error([&] { nn::GroupNorm{.num_groups = 2, .group_size = 3}.init(kKey, x); },
                           {"either `num_groups` or `group_size`"}));
  EXPECT_TRUE(throws_error([&] { nn::GroupNorm{.num_groups = std::nullopt}.init(kKey, x); },
                           {"either `num_groups` or `group_size`"}));
  // Flax test_group_norm_raises_incorrect_reduction_axes.
  EXPECT_TRUE(throws_error(
      [&] {
        nn::GroupNorm{.num_groups = 3, .reduction_axes = numpy_axes({0, 1})}.init(kKey, x);
      },
      {"reduction axes (0, 1)", "final dimension"}));
  EXPECT_TRUE(throws_error(
      [&] { nn::GroupNorm{.num_groups = 3, .reduction_axes = numpy_axes({5})}.init(kKey, x); },
      {"reduction_axes (5,)", "out of range"}));
  // Channels not matching the stored params.
  Tree v = nn::GroupNorm{.num_groups = 3}.init(kKey, x);
  EXPECT_TRUE(throws_error(
      [&] {
        nn::GroupNorm{.num_groups = 3}.apply(v, wave({2, 5, 9}, 0.0));
      },
      {"ScopeParamShapeError", "scale", "(9,)", "(6,)"}));
  EXPECT_TRUE(throws_error([&] { nn::GroupNorm{}.init(kKey, jnp::ones({})); }, {"GroupNorm"}));
}

// ================================ InstanceNorm ================================

TEST(InstanceNorm, TreeValuesAndGradients) {
  const Array x = wave({2, 3, 2}, 0.2);
  nn::InstanceNorm in;
  EXPECT_EQ(in.epsilon, 1e-6);
  EXPECT_EQ(in.init(kKey, x).str(), "params/bias: float32[2]\nparams/scale: float32[2]\n");
  // golden "instancenorm": statistics over axis 1, scale (1.5, 0.5), bias (0.25, -0.25).
  const Array expected =
      golden({-1.81732794369422, -0.946354456240653, 0.871854402796919, 0.204511296769907,
              1.6954735408973, -0.00815684052925464, 2.09147116699607, 0.392078088067604,
              0.241254996334109, -0.314523227134452, -1.58272616333018, -0.827554860933152},
             {2, 3, 2});
  nn::InstanceNorm i64{.param_dtype = DType::float64};
  Tree v = {{"params", {{"scale", f64({1.5, 0.5}, {2})}, {"bias", f64({0.25, -0.25}, {2})}}}};
  EXPECT_TRUE(allclose(i64.apply(v, x), expected, 1e-9, 1e-9));
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return weighted_sum(i64.apply(v, a)); }, x));
  // Flax test_normalization_equivalence: LayerNorm(feature_axes=(1, 2)) (statistics on -1)
  // and InstanceNorm(feature_axes=(1, 2)) (statistics on the axes left: 3) on (2, 3, 4, 5).
  const Array x4 = wave({2, 3, 4, 5}, 0.6, DType::float32);
  nn::LayerNorm ln{.feature_axes = {1, 2}};
  nn::InstanceNorm in12{.feature_axes = {1, 2}};
  Tree vl = ln.init(rnd::key(1), x4), vi = in12.init(rnd::key(1), x4);
  EXPECT_EQ(vi.str(), "params/bias: float32[3,4]\nparams/scale: float32[3,4]\n");
  EXPECT_TRUE(allclose(ln.apply(vl, x4), in12.apply(vi, x4), 1e-6, 1e-6));
}

TEST(InstanceNorm, FlaxTestInstanceNormRaiseError) {
  // Flax test_instance_norm_raise_error: feature_axes 0, -4, (0, 3), (2, -4) on (2, 3, 4, 5).
  const Array x = wave({2, 3, 4, 5}, 0.0, DType::float32);
  for (const loom::numpy::Axes& axes : {loom::numpy::Axes(0), loom::numpy::Axes(-4),
                                        loom::numpy::Axes({0, 3}), loom::numpy::Axes({2, -4})}) {
    Wrap<nn::InstanceNorm> m{.norm = nn::InstanceNorm{.feature_axes = axes}};
    EXPECT_TRUE(throws_error([&] { m.init(rnd::key(1), x); },
                             {"InstanceNorm", "cannot include the leading dimension",
                              "(2, 3, 4, 5)", "/InstanceNorm_0"}));
  }
  EXPECT_TRUE(throws_error([&] { nn::InstanceNorm{.feature_axes = 4}.init(kKey, x); },
                           {"feature_axes (4,)", "out of range"}));
}

TEST(Normalization, DtypeSelectsStatisticsAndResult) {
  // Flax: statistics in promote(dtype or x.dtype, float32), result in dtype when given.
  const Array x32 = wave({4, 3}, 1.1, DType::float32);
  nn::BatchNorm bn{.momentum = 0.9, .dtype = DType::float64};
  Tree v = bn.init(kKey, x32, false);
  EXPECT_EQ(v.str(),
            "batch_stats/mean: float32[3]\nbatch_stats/var: float32[3]\n"
            "params/bias: float32[3]\nparams/scale: float32[3]\n");
  auto [y, upd] = bn.apply_mutable(v, {.mutable_collections = {"batch_stats"}}, x32, false);
  EXPECT_EQ(y.dtype(), DType::float64);
  EXPECT_EQ(upd.str(), "batch_stats/mean: float64[3]\nbatch_stats/var: float64[3]\n");
  // dtype float32 on a float64 input: float32 statistics and result.
  const nn::GroupNorm g32{.num_groups = 3, .dtype = DType::float32};
  const Array x64 = wave({2, 2, 6}, 0.7);
  EXPECT_EQ(g32.apply(g32.init(kKey, x64), x64).dtype(), DType::float32);
  nn::RMSNorm rms{.dtype = DType::float64};
  EXPECT_EQ(rms.apply(rms.init(kKey, x32), x32).dtype(), DType::float64);
  nn::InstanceNorm in{.param_dtype = DType::float64};
  EXPECT_EQ(in.init(kKey, x32).str(), "params/bias: float64[3]\nparams/scale: float64[3]\n");
  EXPECT_EQ(in.apply(in.init(kKey, x32), x32).dtype(), DType::float64);
}

}  // namespace
