// nn attention (flax/linen/attention.py): dot_product_attention(_weights),
// MultiHeadDotProductAttention and its aliases, and the mask helpers. Cases marked "Flax:"
// reproduce tests/linen/linen_attention_test.py (test names cited); "NumPy" values come from
// tests/data/attention_golden.txt (tests/data/attention_golden.py); the rest are analytic.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "attention_golden.hpp"
#include "loom/loom.hpp"
#include "loom/nn.hpp"
#include "loom/random.hpp"
#include "test_util.hpp"

namespace nn = loom::nn;
namespace jnp = loom::numpy;
namespace rnd = loom::random;
namespace init = loom::nn::initializers;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::Tree;
using loom::testing::allclose;
using loom::testing::golden;
using loom::testing::grad_matches_fd;
using loom::testing::throws_error;
using loom::testing::wave;

namespace {

Array f32(const Array& x) {
  return x.astype(DType::float32);
}

// Flax's attention_kwargs of most of its tests: 8 heads, qkv_features 16, ones/zeros inits.
nn::MultiHeadDotProductAttention ones_mha() {
  return {.num_heads = 8,
          .qkv_features = 16,
          .kernel_init = init::ones_init(),
          .bias_init = init::zeros_init()};
}

std::int64_t count_params(const Tree& v) {
  std::int64_t n = 0;
  for (const Array& a : loom::tree_leaves(v.at("params"))) n += a.size();
  return n;
}

}  // namespace

// ---- dot_product_attention ------------------------------------------------------------------

TEST(DotProductAttention, MatchesNumPy) {
  // NumPy: softmax(q k^T / sqrt(d) + bias, masked with finfo.min) v, per batch and head.
  for (const char* name : {"dpa_basic", "dpa_bias_mask", "dpa_rank3", "dpa_rank5"}) {
    const auto& c = loom::testing::golden_cases().at(name);
    nn::AttentionOptions o;
    if (c.count("bias")) o.bias = c.at("bias");
    if (c.count("mask")) o.mask = c.at("mask") > 0.5;  // bool mask
    Array q = c.at("q"), k = c.at("k"), v = c.at("v");
    EXPECT_TRUE(allclose(nn::dot_product_attention(q, k, v, o), c.at("out"), 1e-12, 1e-12)) << name;
    EXPECT_TRUE(allclose(nn::dot_product_attention_weights(q, k, o), c.at("weights"), 1e-12, 1e-12))
        << name;
    // float32, with Flax's float 0/1 mask: the same to float32 rounding.
    nn::AttentionOptions o32;
    if (c.count("bias")) o32.bias = f32(c.at("bias"));
    if (c.count("mask")) o32.mask = f32(c.at("mask"));
    Array y32 = nn::dot_product_attention(f32(q), f32(k), f32(v), o32);
    EXPECT_EQ(y32.dtype(), DType::float32);
    EXPECT_TRUE(allclose(y32, c.at("out"), 1e-5, 1e-6)) << name;
  }
}

TEST(DotProductAttention, EqualScoresAttendUniformly) {
  // Zero queries: every score is 0, so the weights are 1 / kv_length and the output is the
  // mean of the values over kv_length.
  Array q = jnp::zeros({2, 3, 2, 4}, DType::float64);
  Array k = wave({2, 5, 2, 4}, 0.3);
  Array v = wave({2, 5, 2, 3}, 1.3);
  Array w = nn::dot_product_attention_weights(q, k);
  EXPECT_TRUE(allclose(w, jnp::full({2, 2, 3, 5}, 0.2, DType::float64), 1e-15, 1e-15));
  Array mean = jnp::mean(v, 1, /*keepdims=*/true);  // (2, 1, 2, 3)
  EXPECT_TRUE(allclose(nn::dot_product_attention(q, k, v),
                       jnp::broadcast_to(mean, Shape{2, 3, 2, 3}), 1e-14, 1e-14));
  // A mask keeping 2 of 5 keys: weight 1/2 on those, exactly 0 elsewhere; a row with every
  // key masked is uniform again (Flax's finfo.min fill).
  Array keep = Array({false, true, false, true, false});
  Array wm = nn::dot_product_attention_weights(q, k, {.mask = keep});
  EXPECT_TRUE(allclose(
      wm,
      jnp::broadcast_to(Array(std::vector<double>{0, .5, 0, .5, 0}, Shape{5}), Shape{2, 2, 3, 5}),
      0, 1e-15));
  Array none = jnp::zeros({5}, DType::bool_);
  EXPECT_TRUE(allclose(nn::dot_product_attention_weights(q, k, {.mask = none}), w, 1e-15, 1e-15));
}

TEST(DotProductAttention, DropoutKeepsOrScalesAndBroadcasts) {
  Array q = wave({2, 4, 3, 2}, 0.1, DType::float32);
  Array k = wave({2, 6, 3, 2}, 0.6, DType::float32);
  Array w = nn::dot_product_attention_weights(q, k);
  // deterministic, or rate 0: no dropout (and no key needed).
  EXPECT_TRUE(allclose(
      nn::dot_product_attention_weights(q, k, {.dropout_rate = 0.5, .deterministic = true}), w, 0,
      0));
  for (bool broadcast : {true, false}) {
    Array d = nn::dot_product_attention_weights(
        q, k, {.broadcast_dropout = broadcast, .dropout_rng = rnd::key(7), .dropout_rate = 0.25});
    auto dv = d.to_vector<float>(), wv = w.to_vector<float>();
    int dropped = 0, pattern_differs = 0;
    const std::size_t per = 4 * 6;  // one (q, kv) matrix
    for (std::size_t i = 0; i < dv.size(); ++i) {
      if (dv[i] == 0.f) {
        ++dropped;
      } else {
        EXPECT_NEAR(dv[i], wv[i] / 0.75f, 1e-6f);
      }
      // Broadcast: the same keep pattern for every batch and head.
      pattern_differs += (dv[i] == 0.f) != (dv[i % per] == 0.f);
    }
    EXPECT_GT(dropped, 0);
    EXPECT_LT(dropped, static_cast<int>(dv.size()) / 2);
    if (broadcast) {
      EXPECT_EQ(pattern_differs, 0);
    } else {
      EXPECT_GT(pattern_differs, 0);
    }
  }
  EXPECT_TRUE(throws_error([&] { nn::dot_product_attention_weights(q, k, {.dropout_rate = 0.1}); },
                           {"needs a dropout_rng"}));
  EXPECT_TRUE(throws_error(
      [&] {
        nn::dot_product_attention_weights(q, k, {.dropout_rng = rnd::key(0), .dropout_rate = 1.0});
      },
      {"dropout_rate must be in [0, 1)"}));
}

TEST(DotProductAttention, GradientsMatchFiniteDifferences) {
  const auto& c = loom::testing::golden_cases().at("dpa_bias_mask");
  Array q = c.at("q"), k = c.at("k"), v = c.at("v"), bias = c.at("bias"), mask = c.at("mask");
  Array wt = wave({2, 3, 2, 3}, 0.4);
  auto loss = [&](const Array& qq, const Array& kk, const Array& vv, const Array& bb) {
    Array y = nn::dot_product_attention(qq, kk, vv, {.bias = bb, .mask = mask});
    return jnp::sum(jnp::square(y) * wt);
  };
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return loss(a, k, v, bias); }, q));
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return loss(q, a, v, bias); }, k));
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return loss(q, k, a, bias); }, v));
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return loss(q, k, v, a); }, bias));
}

TEST(DotProductAttention, BadShapesAreErrors) {
  Array q = jnp::ones({2, 3, 2, 4}), k = jnp::ones({2, 5, 2, 4}), v = jnp::ones({2, 5, 2, 3});
  EXPECT_TRUE(throws_error(
      [&] {
        nn::dot_product_attention(q, jnp::ones({5, 2, 4}), v);
      },
      {"same rank", "(2, 3, 2, 4)", "(5, 2, 4)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        nn::dot_product_attention_weights(q, jnp::ones({3, 5, 2, 4}));
      },
      {"batch dims must match", "(3, 5, 2, 4)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        nn::dot_product_attention_weights(q, jnp::ones({2, 5, 3, 4}));
      },
      {"num_heads", "(2, 5, 3, 4)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        nn::dot_product_attention_weights(q, jnp::ones({2, 5, 2, 3}));
      },
      {"depths", "(2, 3, 2, 4)", "(2, 5, 2, 3)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        nn::dot_product_attention(q, k, jnp::ones({2, 4, 2, 3}));
      },
      {"lengths", "(2, 4, 2, 3)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        nn::dot_product_attention_weights(jnp::ones({3, 4}), k);
      },
      {"at least 3"}));
  EXPECT_TRUE(throws_error(
      [&] {
        nn::dot_product_attention(q, k, v, {.mask = jnp::ones({2, 1, 3, 4})});
      },
      {"mask of shape (2, 1, 3, 4) does not broadcast", "(2, 2, 3, 5)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        nn::dot_product_attention(q, k, v, {.bias = jnp::ones({1, 2, 2, 3, 5})});
      },
      {"bias of shape (1, 2, 2, 3, 5)"}));
}

// ---- masks ----------------------------------------------------------------------------------

TEST(Masks, CausalMaskOfFlaxsTest) {
  // Flax: test_causal_mask_1d: ts[:, None] >= ts[None, :], broadcast to (3, 1, 16, 16).
  Array m = nn::make_causal_mask(jnp::ones({3, 16}));
  EXPECT_EQ(m.shape(), (Shape{3, 1, 16, 16}));
  EXPECT_EQ(m.dtype(), DType::float32);
  auto mv = m.to_vector<float>();
  for (int b = 0; b < 3; ++b) {
    for (int i = 0; i < 16; ++i) {
      for (int j = 0; j < 16; ++j) EXPECT_EQ(mv[(b * 16 + i) * 16 + j], i >= j ? 1.f : 0.f);
    }
  }
  EXPECT_EQ(nn::make_causal_mask(jnp::ones({4}), 2, DType::bool_).shape(), (Shape{1, 1, 1, 4, 4}));
}

TEST(Masks, AttentionMaskFromPaddingAndPairwiseFunctions) {
  // Padding: multiply of the 0/1 validity of queries and keys.
  Array tokens = Array(std::vector<int>{5, 7, 0, 3, 0, 0}, Shape{2, 3});
  Array valid = tokens > 0;
  Array m = nn::make_attention_mask(valid, valid);
  EXPECT_EQ(m.shape(), (Shape{2, 1, 3, 3}));
  EXPECT_TRUE(
      allclose(m,
               Array(std::vector<float>{1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
                     Shape{2, 1, 3, 3}),
               0, 0));
  // A custom pairwise function and extra batch dims: query position > key position, for
  // queries 0, 1, 2 and keys 1, 2: only (2, 1) is true.
  Array pos = Array(std::vector<int>{0, 1, 2}, Shape{3});
  Array g = nn::make_attention_mask(
      pos, Array(std::vector<int>{1, 2}, Shape{2}),
      [](const Array& a, const Array& b) { return a > b; }, 1, DType::bool_);
  EXPECT_EQ(g.shape(), (Shape{1, 1, 3, 2}));
  EXPECT_EQ(g.to_vector<bool>(), (std::vector<bool>{false, false, false, false, true, false}));
}

TEST(Masks, CombineMasks) {
  EXPECT_FALSE(nn::combine_masks({std::nullopt, std::nullopt}).has_value());
  Array a = Array({{1.f, 0.f}, {1.f, 1.f}});
  Array b = Array({{true, true}, {false, true}});
  auto c = nn::combine_masks({a, std::nullopt, b});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->dtype(), DType::float32);
  EXPECT_TRUE(allclose(*c, Array({{1.f, 0.f}, {0.f, 1.f}}), 0, 0));
  EXPECT_TRUE(throws_error(
      [&] {
        nn::combine_masks({a, jnp::ones({1, 2, 2})});
      },
      {"masks must have same rank: (2, 3)"}));
}

// ---- MultiHeadDotProductAttention -----------------------------------------------------------

TEST(MultiHeadDotProductAttention, TreeOfFlaxsSelfAttentionTest) {
  // Flax: test_multihead_self_attention: (4, 6, 5) in, (4, 6, 5) float32 out. The tree follows
  // Flax's source: DenseGeneral query/key/value with features (8, 2) and out over (-2, -1).
  Array x = jnp::ones({4, 6, 5});
  auto [y, v] = ones_mha().init_with_output(rnd::key(0), x);
  EXPECT_EQ(y.shape(), x.shape());
  EXPECT_EQ(y.dtype(), DType::float32);
  EXPECT_EQ(v.str(),
            "params/key/bias: float32[8,2]\nparams/key/kernel: float32[5,8,2]\n"
            "params/out/bias: float32[5]\nparams/out/kernel: float32[8,2,5]\n"
            "params/query/bias: float32[8,2]\nparams/query/kernel: float32[5,8,2]\n"
            "params/value/bias: float32[8,2]\nparams/value/kernel: float32[5,8,2]\n");
  EXPECT_EQ(count_params(v), 3 * (5 * 16 + 16) + (16 * 5 + 5));  // 373
  // Flax: test_multihead_encoder_decoder_attention: two batch axes.
  EXPECT_EQ(ones_mha().init_with_output(rnd::key(0), jnp::ones({4, 2, 3, 5})).first.shape(),
            (Shape{4, 2, 3, 5}));
  // Defaults: qkv_features and out_features from inputs_q; use_bias = false drops biases.
  nn::MultiHeadDotProductAttention plain{.num_heads = 2, .out_features = 3, .use_bias = false};
  EXPECT_EQ(plain.init(rnd::key(0), jnp::ones({2, 4})).str(),
            "params/key/kernel: float32[4,2,2]\nparams/out/kernel: float32[2,2,3]\n"
            "params/query/kernel: float32[4,2,2]\nparams/value/kernel: float32[4,2,2]\n");
}

TEST(MultiHeadDotProductAttention, ParamsAreFlaxsDenseDrawsReshaped) {
  // Flax draws each DenseGeneral kernel as a 2-D lecun_normal matrix under its submodule's
  // key, then reshapes (kernel_init_wrap). So MultiHeadDotProductAttention's query kernel is
  // the kernel a Dense(qkv_features) named "query" draws at the same path, reshaped to
  // (in, heads, head_dim); out's is Dense(features) at "out" on (heads * head_dim) inputs.
  // (Dense's bits are checked against Flax's published values in flax_parity_test.)
  struct Flat : nn::Module<Flat> {
    Array call(const Array& x) const {
      Array q = child("query", nn::Dense{.features = 16})(x);
      return child("out", nn::Dense{.features = 5})(q);
    }
  };
  Array x = jnp::ones({4, 6, 5});
  Tree flat = Flat{}.init(rnd::key(0), x).at("params");
  Tree p = nn::MultiHeadDotProductAttention{.num_heads = 8, .qkv_features = 16}
               .init(rnd::key(0), x)
               .at("params");
  EXPECT_TRUE(allclose(p.at("query").at("kernel").leaf(),
                       jnp::reshape(flat.at("query").at("kernel").leaf(), {5, 8, 2}), 0, 0));
  EXPECT_TRUE(allclose(p.at("out").at("kernel").leaf(),
                       jnp::reshape(flat.at("out").at("kernel").leaf(), {8, 2, 5}), 0, 0));
}

TEST(MultiHeadDotProductAttention, OutInitializers) {
  // Flax: test_mha_out_initializers.
  nn::MultiHeadDotProductAttention mha = ones_mha();
  mha.out_kernel_init = init::zeros_init();
  mha.out_bias_init = init::ones_init();
  Tree p = mha.init(rnd::key(0), jnp::ones({4, 2, 3, 5})).at("params");
  for (const char* s : {"query", "key", "value"}) {
    EXPECT_TRUE(allclose(p.at(s).at("kernel").leaf(), jnp::ones({5, 8, 2}), 0, 0)) << s;
    EXPECT_TRUE(allclose(p.at(s).at("bias").leaf(), jnp::zeros({8, 2}), 0, 0)) << s;
  }
  EXPECT_TRUE(allclose(p.at("out").at("kernel").leaf(), jnp::zeros({8, 2, 5}), 0, 0));
  EXPECT_TRUE(allclose(p.at("out").at("bias").leaf(), jnp::ones({5}), 0, 0));
}

TEST(MultiHeadDotProductAttention, MatchesNumPyWithAPaddingMask) {
  // NumPy: projections, masked attention and the out projection in float64.
  const auto& c = loom::testing::golden_cases().at("mha");
  auto dense = [&](const char* n) {
    return Tree{{"kernel", c.at(std::string(n) + "_kernel")},
                {"bias", c.at(std::string(n) + "_bias")}};
  };
  Tree v{{"params", Tree{{"query", dense("query")},
                         {"key", dense("key")},
                         {"value", dense("value")},
                         {"out", dense("out")}}}};
  nn::MultiHeadDotProductAttention mha{
      .num_heads = 2, .param_dtype = DType::float64, .qkv_features = 4, .out_features = 3};
  Array y = mha.apply(v, c.at("inputs_q"), c.at("inputs_kv"), std::nullopt, c.at("mask"));
  EXPECT_TRUE(allclose(y, c.at("out"), 1e-12, 1e-12));
  // inputs_v defaults to inputs_k.
  Array y2 = mha.apply(v, c.at("inputs_q"), c.at("inputs_kv"), c.at("inputs_kv"), c.at("mask"));
  EXPECT_TRUE(allclose(y2, y, 0, 0));
}

TEST(MultiHeadDotProductAttention, NormalizeQkAddsLayerNormsWithoutBias) {
  // Flax's source: LayerNorm(name="query_ln"/"key_ln", use_bias=False) over head_dim; the tree
  // gains query_ln/scale and key_ln/scale of shape (head_dim,).
  nn::MultiHeadDotProductAttention mha{
      .num_heads = 2, .qkv_features = 6, .out_features = 3, .normalize_qk = true};
  Tree v = mha.init(rnd::key(0), jnp::ones({2, 3, 5}), jnp::ones({2, 4, 6}));
  EXPECT_EQ(v.str(),
            "params/key/bias: float32[2,3]\nparams/key/kernel: float32[6,2,3]\n"
            "params/key_ln/scale: float32[3]\n"
            "params/out/bias: float32[3]\nparams/out/kernel: float32[2,3,3]\n"
            "params/query/bias: float32[2,3]\nparams/query/kernel: float32[5,2,3]\n"
            "params/query_ln/scale: float32[3]\n"
            "params/value/bias: float32[2,3]\nparams/value/kernel: float32[6,2,3]\n");
  // NumPy: (x - mean) / sqrt(var + 1e-6) * scale on the projected query and key.
  const auto& c = loom::testing::golden_cases().at("mha_qk_norm");
  auto dense = [&](const char* n) {
    return Tree{{"kernel", c.at(std::string(n) + "_kernel")},
                {"bias", c.at(std::string(n) + "_bias")}};
  };
  Tree gv{{"params", Tree{{"query", dense("query")},
                          {"key", dense("key")},
                          {"value", dense("value")},
                          {"out", dense("out")},
                          {"query_ln", Tree{{"scale", c.at("query_ln_scale")}}},
                          {"key_ln", Tree{{"scale", c.at("key_ln_scale")}}}}}};
  mha.param_dtype = DType::float64;
  EXPECT_TRUE(
      allclose(mha.apply(gv, c.at("inputs_q"), c.at("inputs_kv")), c.at("out"), 1e-10, 1e-12));
}

TEST(MultiHeadDotProductAttention, KeyAndValueDefaults) {
  // Flax: test_multihead_kv_args.
  Array q = rnd::uniform(rnd::key(1), {3, 5});
  Array kv = rnd::uniform(rnd::key(2), {9, 5});
  nn::MultiHeadDotProductAttention mha = ones_mha();
  mha.kernel_init = init::lecun_normal();
  auto [y0, v0] = mha.init_with_output(rnd::key(43279), q, kv, kv);
  auto [y1, v1] = mha.init_with_output(rnd::key(43279), q, kv);
  EXPECT_TRUE(allclose(y0, y1, 0, 0));
  EXPECT_TRUE(allclose(mha.apply(v0, q), mha.apply(v0, q, q, q), 0, 0));
  EXPECT_TRUE(throws_error([&] { mha.init(rnd::key(0), q, std::nullopt, kv); },
                           {"`inputs_k` cannot be None if `inputs_v` is not None."}));
}

TEST(MultiHeadDotProductAttention, DropoutDeterministicAndRngs) {
  // Flax: test_multihead_self_attention_w_dropout_disabled: rate 0 needs no `deterministic`
  // and no rng; rate > 0 with deterministic = true gives the same output for any rng.
  Array x = jnp::ones({4, 2, 3, 5});
  nn::MultiHeadDotProductAttention no_drop = ones_mha();
  Tree v = no_drop.init(rnd::key(0), x);
  Array y = no_drop.apply(v, x);
  nn::MultiHeadDotProductAttention drop = ones_mha();
  drop.dropout_rate = 0.5;
  EXPECT_TRUE(allclose(drop.apply(v, {.rngs = {{"dropout", rnd::key(1)}}}, x, std::nullopt,
                                  std::nullopt, std::nullopt, true),
                       y, 0, 0));
  // Rate > 0: `deterministic` exactly once (merge_param).
  EXPECT_TRUE(throws_error([&] { drop.apply(v, x); },
                           {"Parameter \"deterministic\" must be passed to the constructor or at "
                            "call time."}));
  drop.deterministic = false;
  EXPECT_TRUE(throws_error(
      [&] { drop.apply(v, x, std::nullopt, std::nullopt, std::nullopt, false); },
      {"Parameter \"deterministic\" was passed to the constructor and at call time."}));
  // Flax: test_multihead_self_attention_explicit_dropout: two layers draw different masks from
  // the "dropout" stream; an explicit dropout_rng is used as is, by both.
  struct Foo : nn::Module<Foo> {
    nn::MultiHeadDotProductAttention attn;
    std::pair<Array, Array> call(const Array& x, std::optional<rnd::Key> rng) const {
      Array a = attn(x, x, std::nullopt, std::nullopt, std::nullopt, rng);
      Array b = attn(x, x, std::nullopt, std::nullopt, std::nullopt, rng);
      return {a, b};
    }
  };
  Array xw = wave({4, 2, 3, 5}, 0.2, DType::float32);
  Foo foo{.attn = drop};
  Tree fv = foo.init({{"params", rnd::key(1)}, {"dropout", rnd::key(2)}}, xw, std::nullopt);
  auto [a, b] = foo.apply(fv, {.rngs = {{"dropout", rnd::key(2)}}}, xw, std::nullopt);
  auto [c, d] = foo.apply(fv, {.rngs = {{"dropout", rnd::key(2)}}}, xw, std::nullopt);
  auto [e, f] = foo.apply(fv, {.rngs = {{"dropout", rnd::key(3)}}}, xw, std::nullopt);
  EXPECT_FALSE(allclose(a, b, 1e-4, 1e-4));
  EXPECT_TRUE(allclose(a, c, 0, 0));
  EXPECT_TRUE(allclose(b, d, 0, 0));
  EXPECT_FALSE(allclose(a, e, 1e-4, 1e-4));
  EXPECT_FALSE(allclose(b, f, 1e-4, 1e-4));
  auto [g, h] = foo.apply(fv, xw, std::optional<rnd::Key>(rnd::key(4)));
  EXPECT_TRUE(allclose(g, h, 0, 0));
  EXPECT_TRUE(throws_error([&] { foo.apply(fv, xw, std::nullopt); },
                           {"dropout", "/MultiHeadDotProductAttention_0"}));
}

TEST(MultiHeadDotProductAttention, SowsAttentionWeights) {
  // Flax: test_multihead_sow_attention_weights.
  struct Model : nn::Module<Model> {
    Array call(const Array& x, bool sow_weights) const {
      const nn::MultiHeadDotProductAttention a = ones_mha();
      Array h =
          a(x, std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt, sow_weights);
      h = a(h);
      return a(h, std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
               sow_weights);
    }
  };
  Array x = jnp::ones({4, 6, 5});
  Tree v = Model{}.init(rnd::key(0), x, false);
  auto [y, state] = Model{}.apply_mutable(v, {.mutable_collections = {"intermediates"}}, x, true);
  EXPECT_EQ(state.str(),
            "intermediates/MultiHeadDotProductAttention_0/attention_weights/0: float32[4,8,6,6]\n"
            "intermediates/MultiHeadDotProductAttention_2/attention_weights/0: "
            "float32[4,8,6,6]\n");
  // The weights are a softmax: rows sum to 1.
  Array w = state.at("intermediates")
                .at("MultiHeadDotProductAttention_0")
                .at("attention_weights")
                .at("0")
                .leaf();
  EXPECT_TRUE(allclose(jnp::sum(w, -1), jnp::ones({4, 8, 6}), 1e-6, 1e-6));
  auto [y2, none] = Model{}.apply_mutable(v, {.mutable_collections = {"intermediates"}}, x, false);
  EXPECT_FALSE(none.contains("intermediates"));
}

TEST(MultiHeadDotProductAttention, AliasesNameThemselvesAndComputeTheSame) {
  // Flax: test_attention_alias_equivalence (top level: same key, same params and output) and
  // test_attention_alias_submodule (as a submodule the name, hence the keys, differ).
  Array q = rnd::uniform(rnd::key(1), {3, 5});
  Array kv = rnd::uniform(rnd::key(2), {9, 5});
  nn::MultiHeadDotProductAttention m1{
      .num_heads = 8, .qkv_features = 16, .bias_init = init::uniform()};
  nn::MultiHeadAttention m2{.num_heads = 8, .qkv_features = 16, .bias_init = init::uniform()};
  auto [o1, v1] = m1.init_with_output(rnd::key(43279), q, kv);
  auto [o2, v2] = m2.init_with_output(rnd::key(43279), q, kv, kv);
  EXPECT_TRUE(allclose(o1, o2, 0, 0));
  EXPECT_EQ(v1.str(), v2.str());
  EXPECT_TRUE(allclose(v1.at("params").at("query").at("kernel").leaf(),
                       v2.at("params").at("query").at("kernel").leaf(), 0, 0));
  struct Parent : nn::Module<Parent> {
    Array call(const Array& x) const {
      Array a = nn::SelfAttention{.num_heads = 2}(x);
      Array b = nn::MultiHeadAttention{.num_heads = 2}(x);
      return nn::MultiHeadDotProductAttention{.num_heads = 2}(a + b);
    }
  };
  Tree pv = Parent{}.init(rnd::key(0), jnp::ones({2, 3, 4}));
  std::string names;
  for (const auto& [name, sub] : pv.at("params").dict()) names += name + " ";
  EXPECT_EQ(names, "MultiHeadAttention_0 MultiHeadDotProductAttention_0 SelfAttention_0 ");
  EXPECT_EQ(pv.at("params").at("SelfAttention_0").at("out").at("kernel").leaf().shape(),
            (Shape{2, 2, 4}));
  // SelfAttention with the same params and a mask equals MultiHeadDotProductAttention.
  Array x = wave({2, 3, 4}, 0.5, DType::float32);
  Array mask = nn::make_causal_mask(jnp::ones({2, 3}));
  nn::SelfAttention sa{.num_heads = 2};
  Tree sv = sa.init(rnd::key(6), x);
  EXPECT_TRUE(allclose(sa.apply(sv, x, mask),
                       nn::MultiHeadDotProductAttention{.num_heads = 2}.apply(sv, x, std::nullopt,
                                                                              std::nullopt, mask),
                       0, 0));
}

TEST(MultiHeadDotProductAttention, CausalMaskGivesTheAutoregressiveReceptiveField) {
  // Flax: test_autoregressive_receptive_field_1d: d out[0, pos, :] / d inputs is non-zero
  // exactly at positions <= pos.
  const int length = 10;
  Array inputs = rnd::normal(rnd::key(2), {1, length, 1});
  nn::MultiHeadDotProductAttention mha{.num_heads = 1, .kernel_init = init::ones_init()};
  Tree v = mha.init(rnd::key(1), inputs);
  Array mask = nn::make_causal_mask(jnp::ones({1, length}));
  for (int pos = 0; pos < length; ++pos) {
    auto loss = [&](const Array& x) {
      Array out = mha.apply(v, x, std::nullopt, std::nullopt, mask);
      return jnp::sum(jnp::index(jnp::index(out, 0, 0), pos, 0));
    };
    auto g = loom::grad(loss)(inputs).to_vector<float>();
    for (int i = 0; i < length; ++i) {
      if (i < pos) {
        EXPECT_GT(std::abs(g[i]), 1e-5f) << "pos " << pos << " input " << i;
      } else if (i > pos) {
        EXPECT_EQ(g[i], 0.f) << "pos " << pos << " input " << i;
      }
    }
  }
}

TEST(MultiHeadDotProductAttention, GradientsMatchFiniteDifferences) {
  nn::MultiHeadDotProductAttention mha{
      .num_heads = 2, .param_dtype = DType::float64, .qkv_features = 4, .out_features = 3};
  Array xq = wave({2, 3, 5}, 0.3), xkv = wave({2, 4, 6}, 0.9);
  Tree v = mha.init(rnd::key(0), xq, xkv);
  Array mask = nn::make_attention_mask(jnp::ones({2, 3}),
                                       Array({{1.f, 1.f, 0.f, 1.f}, {1.f, 0.f, 1.f, 1.f}}));
  Array wt = wave({2, 3, 3}, 1.7);
  auto loss = [&](const Tree& vars, const Array& q, const Array& kv) {
    return jnp::sum(jnp::square(mha.apply(vars, q, kv, std::nullopt, mask)) * wt);
  };
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return loss(v, a, xkv); }, xq));
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return loss(v, xq, a); }, xkv));
  // Through the QK LayerNorms too.
  nn::MultiHeadDotProductAttention qkn = mha;
  qkn.normalize_qk = true;
  Tree nv = qkn.init(rnd::key(0), xq, xkv);
  EXPECT_TRUE(grad_matches_fd(
      [&](const Array& a) {
        return jnp::sum(jnp::square(qkn.apply(nv, a, xkv, std::nullopt, mask)) * wt);
      },
      xq));
  for (const char* sub : {"key", "out"}) {
    Array k = v.at("params").at(sub).at("kernel").leaf();
    EXPECT_TRUE(grad_matches_fd(
        [&](const Array& a) {
          Tree p = v.at("params");
          Tree s = p.at(sub);
          s.set("kernel", a);
          p.set(sub, s);
          return loss(Tree{{"params", p}}, xq, xkv);
        },
        k))
        << sub;
  }
}

TEST(MultiHeadDotProductAttention, BadArgumentsAreErrorsWithThePath) {
  struct Net : nn::Module<Net> {
    nn::MultiHeadDotProductAttention attn;
    std::optional<Array> mask;
    Array call(const Array& x) const {
      return child("attn", attn)(x, std::nullopt, std::nullopt, mask);
    }
  };
  Array x = jnp::ones({2, 3, 16});
  EXPECT_TRUE(throws_error(
      [&] { Net{.attn = {.num_heads = 3}}.init(rnd::key(0), x); },
      {"Memory dimension (16) must be divisible by number of heads (3).", "(module \"/attn\")"}));
  EXPECT_TRUE(throws_error([&] { Net{.attn = {.num_heads = 0}}.init(rnd::key(0), x); },
                           {"num_heads must be positive", "/attn"}));
  EXPECT_TRUE(
      throws_error([&] { Net{.attn = {.num_heads = 2, .decode = true}}.init(rnd::key(0), x); },
                   {"decode", "not supported", "/attn"}));
  EXPECT_TRUE(throws_error(
      [&] {
        Net{.attn = {.num_heads = 2}, .mask = jnp::ones({2, 1, 3, 4})}.init(rnd::key(0), x);
      },
      {"mask of shape (2, 1, 3, 4) does not broadcast", "(2, 2, 3, 3)", "/attn"}));
  EXPECT_TRUE(
      throws_error([&] { Net{.attn = {.num_heads = 2}}.init(rnd::key(0), jnp::ones({16})); },
                   {"at least 2", "/attn"}));
  nn::MultiHeadDotProductAttention mha{.num_heads = 2};
  EXPECT_TRUE(throws_error(
      [&] {
        mha.init(rnd::key(0), x, jnp::ones({3, 3, 16}));
      },
      {"batch dims must match", "(3, 3, 16)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        mha.init(rnd::key(0), x, jnp::ones({2, 4, 16}), jnp::ones({2, 5, 16}));
      },
      {"lengths differ", "(2, 5, 16)"}));
  // Params made for 16 features meet inputs with 8.
  Tree v = mha.init(rnd::key(0), x);
  EXPECT_THROW(mha.apply(v, jnp::ones({2, 3, 8})), loom::core::ScopeParamShapeError);
}

TEST(MultiHeadDotProductAttention, DtypesPromote) {
  // float64 inputs with float32 params compute in float64; dtype forces the computation dtype.
  Array x64 = wave({2, 3, 4}, 0.1);
  nn::MultiHeadDotProductAttention mha{.num_heads = 2};
  auto [y, v] = mha.init_with_output(rnd::key(0), x64);
  EXPECT_EQ(y.dtype(), DType::float64);
  EXPECT_EQ(v.at("params").at("query").at("kernel").leaf().dtype(), DType::float32);
  nn::MultiHeadDotProductAttention m32{.num_heads = 2, .dtype = DType::float32};
  EXPECT_EQ(m32.apply(v, x64).dtype(), DType::float32);
  EXPECT_TRUE(allclose(m32.apply(v, x64), y, 1e-5, 1e-6));
}
