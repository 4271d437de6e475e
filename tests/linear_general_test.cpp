// nn::DenseGeneral, nn::Einsum and nn::Embed (flax/linen/linear.py). Cases marked "Flax:" follow
// tests/linen/linen_linear_test.py (test names cited) or the Flax docstrings; values marked
// "NumPy" come from tests/data/attention_golden.txt (tests/data/attention_golden.py); the rest
// are analytic. Nothing expected here is loom's own output.
#include <gtest/gtest.h>

#include <memory>
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

Tree params(Tree p) {
  return Tree{{"params", std::move(p)}};
}
const Array& leaf(const Tree& v, const std::string& name) {
  return v.at("params").at(name).leaf();
}
// The same initializer, ignoring the key (Flax's `lambda rng, shape, dtype: value`).
init::Initializer fixed(Array value) {
  return [value](const rnd::Key&, const Shape&, DType) { return value; };
}

}  // namespace

// ---- DenseGeneral ---------------------------------------------------------------------------

TEST(DenseGeneral, TreesOfFlaxDocstring) {
  // Flax's DenseGeneral docstring: features (4, 5) -> bias (4, 5), kernel (3, 4, 5);
  // axis (1, -1) on (1, 3, 6, 7) -> kernel (3, 7, 4, 5).
  nn::DenseGeneral a{.features = {4, 5}};
  auto [ya, va] = a.init_with_output(rnd::key(0), jnp::ones({1, 3}));
  EXPECT_EQ(va.str(), "params/bias: float32[4,5]\nparams/kernel: float32[3,4,5]\n");
  EXPECT_EQ(ya.shape(), (Shape{1, 4, 5}));
  nn::DenseGeneral b{.features = {4, 5}, .axis = {1, -1}};
  auto [yb, vb] = b.init_with_output(rnd::key(0), jnp::ones({1, 3, 6, 7}));
  EXPECT_EQ(vb.str(), "params/bias: float32[4,5]\nparams/kernel: float32[3,7,4,5]\n");
  EXPECT_EQ(yb.shape(), (Shape{1, 6, 4, 5}));
  nn::DenseGeneral c{.features = {7}, .use_bias = false};
  EXPECT_EQ(c.init(rnd::key(0), jnp::ones({2, 3})).str(), "params/kernel: float32[3,7]\n");
}

TEST(DenseGeneral, OnesKernelsGiveTheContractedSize) {
  // Flax: test_dense_general_two_out and test_dense_general_two_in (ones kernel and bias).
  nn::DenseGeneral two_out{
      .features = {2, 2}, .kernel_init = init::ones_init(), .bias_init = init::ones_init()};
  EXPECT_TRUE(allclose(two_out.init_with_output(rnd::key(0), jnp::ones({1, 3})).first,
                       jnp::full({1, 2, 2}, 4.0), 0, 0));
  nn::DenseGeneral two_in{.features = {3},
                          .axis = {-2, 2},
                          .kernel_init = init::ones_init(),
                          .bias_init = init::ones_init()};
  EXPECT_TRUE(allclose(two_in.init_with_output(rnd::key(0), jnp::ones({1, 2, 2})).first,
                       jnp::full({1, 3}, 5.0), 0, 0));
}

TEST(DenseGeneral, BatchDimsKeepTheirAxisAndCallTheInitializerOnce) {
  // Flax: test_dense_general_batch_dim: a counting kernel_init is called once (value 1), so
  // each output is 3 * 5 ones + bias 1 = 16.
  auto counter = std::make_shared<double>(0.0);
  init::Initializer counting = [counter](const rnd::Key&, const Shape& shape, DType dt) {
    *counter += 1.0;
    return jnp::full(shape, *counter, dt);
  };
  nn::DenseGeneral layer{.features = {7},
                         .axis = {3, -2},
                         .batch_dims = {0},
                         .kernel_init = counting,
                         .bias_init = init::ones_init()};
  auto [y, v] = layer.init_with_output(rnd::key(0), jnp::ones({2, 1, 3, 5}));
  EXPECT_TRUE(allclose(y, jnp::full({2, 1, 7}, 16.0), 0, 0));
  EXPECT_EQ(*counter, 1.0);
  EXPECT_EQ(v.str(), "params/bias: float32[2,7]\nparams/kernel: float32[2,3,5,7]\n");
}

TEST(DenseGeneral, InitializersSeeTheKernelFlattenedTo2D) {
  // Flax's kernel_init_wrap draws (prod(batch) * prod(in), prod(features)) and reshapes, so
  // for the same key the kernel is Dense's kernel of that 2-D shape, reshaped (the fans of
  // lecun_normal are those of the 2-D matrix). Both layers are top-level: same param key.
  Array dense20 = leaf(nn::Dense{.features = 20}.init(rnd::key(3), jnp::ones({1, 3})), "kernel");
  Array dg45 =
      leaf(nn::DenseGeneral{.features = {4, 5}}.init(rnd::key(3), jnp::ones({1, 3})), "kernel");
  EXPECT_TRUE(allclose(dg45, jnp::reshape(dense20, {3, 4, 5}), 0, 0));
  // The output projection of attention: axis (-2, -1), kernel (heads, head_dim, features).
  Array dense5 = leaf(nn::Dense{.features = 5}.init(rnd::key(4), jnp::ones({1, 16})), "kernel");
  Array out = leaf(nn::DenseGeneral{.features = {5}, .axis = {-2, -1}}.init(
                       rnd::key(4), jnp::ones({2, 3, 8, 2})),
                   "kernel");
  EXPECT_TRUE(allclose(out, jnp::reshape(dense5, {8, 2, 5}), 0, 0));
  // batch_dims join the fan-in side: kernel (2, 5, 3) is a (10, 3) matrix.
  Array dense3 = leaf(nn::Dense{.features = 3}.init(rnd::key(5), jnp::ones({1, 10})), "kernel");
  Array batched = leaf(
      nn::DenseGeneral{.features = {3}, .batch_dims = {0}}.init(rnd::key(5), jnp::ones({2, 4, 5})),
      "kernel");
  EXPECT_TRUE(allclose(batched, jnp::reshape(dense3, {2, 5, 3}), 0, 0));
}

TEST(DenseGeneral, EqualsDenseOverTheLastAxis) {
  // Flax: test_dense_is_dense_general (same key, normal bias_init).
  Array x = rnd::normal(rnd::key(0), {5, 3});
  auto [y1, v1] =
      nn::Dense{.features = 4, .bias_init = init::normal()}.init_with_output(rnd::key(1), x);
  auto [y2, v2] = nn::DenseGeneral{.features = {4}, .bias_init = init::normal()}.init_with_output(
      rnd::key(1), x);
  EXPECT_TRUE(allclose(leaf(v1, "bias"), leaf(v2, "bias"), 0, 0));
  EXPECT_TRUE(allclose(y1, y2, 1e-6, 1e-6));
}

TEST(DenseGeneral, MatchesNumPyWithAndWithoutBatchDims) {
  // NumPy: tensordot over axes (1, 3), per batch element for batch_dims (0,).
  for (const char* name : {"dense_general", "dense_general_batch"}) {
    const bool batched = std::string(name) == "dense_general_batch";
    nn::DenseGeneral layer{.features = {2, 3},
                           .axis = {1, -1},
                           .batch_dims = batched ? std::vector<int>{0} : std::vector<int>{},
                           .param_dtype = DType::float64};
    Tree v = params(Tree{{"kernel", golden(name, "kernel")}, {"bias", golden(name, "bias")}});
    Array y = layer.apply(v, golden(name, "x"));
    EXPECT_TRUE(allclose(y, golden(name, "out"), 1e-12, 1e-12)) << name;
    // float32 params and inputs: float32 result, to float32 rounding.
    nn::DenseGeneral l32 = layer;
    l32.param_dtype = DType::float32;
    Tree v32 = params(Tree{{"kernel", golden(name, "kernel").astype(DType::float32)},
                           {"bias", golden(name, "bias").astype(DType::float32)}});
    Array y32 = l32.apply(v32, golden(name, "x").astype(DType::float32));
    EXPECT_EQ(y32.dtype(), DType::float32);
    EXPECT_TRUE(allclose(y32, golden(name, "out"), 1e-5, 1e-5)) << name;
  }
}

TEST(DenseGeneral, DtypesFollowPromoteDtype) {
  nn::DenseGeneral layer{.features = {2}};
  Array ints = Array(std::vector<int>{1, 2, 3}, Shape{1, 3});
  auto [y, v] = layer.init_with_output(rnd::key(0), ints);
  EXPECT_EQ(y.dtype(), DType::float32);  // integer inputs compute in float32
  nn::DenseGeneral f64{.features = {2}, .dtype = DType::float64};
  EXPECT_EQ(f64.init_with_output(rnd::key(0), jnp::ones({1, 3})).first.dtype(), DType::float64);
  EXPECT_EQ(leaf(f64.init(rnd::key(0), jnp::ones({1, 3})), "kernel").dtype(), DType::float32);
}

TEST(DenseGeneral, GradientsMatchFiniteDifferences) {
  nn::DenseGeneral layer{
      .features = {2, 3}, .axis = {1, -1}, .batch_dims = {0}, .param_dtype = DType::float64};
  Array x = wave({2, 3, 2, 2}, 0.3);
  Array k = wave({2, 3, 2, 2, 3}, 1.1);
  Array b = wave({2, 2, 3}, 2.1);
  auto loss = [&](const Array& xx, const Array& kk, const Array& bb) {
    Array y = layer.apply(params(Tree{{"kernel", kk}, {"bias", bb}}), xx);
    return jnp::sum(jnp::square(y) * wave(y.shape(), 0.7));
  };
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return loss(a, k, b); }, x));
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return loss(x, a, b); }, k));
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return loss(x, k, a); }, b));
}

TEST(DenseGeneral, BadArgumentsAreErrorsWithThePath) {
  struct Net : nn::Module<Net> {
    nn::DenseGeneral layer;
    Array call(const Array& x) const { return child("proj", layer)(x); }
  };
  Array x = jnp::ones({1, 3, 2, 5});
  // Flax: test_dense_general_batch_dim_raises.
  EXPECT_TRUE(throws_error(
      [&] {
        Net{.layer = {.features = {4}, .batch_dims = {0, 2}}}.init(rnd::key(0), x);
      },
      {"batch_dims (0, 2) must be consecutive leading dimensions starting from 0",
       "(module \"/proj\")"}));
  EXPECT_TRUE(
      throws_error([&] { Net{.layer = {.features = {4}, .axis = {4}}}.init(rnd::key(0), x); },
                   {"DenseGeneral", "axis 4 is out of range", "(1, 3, 2, 5)", "/proj"}));
  EXPECT_TRUE(throws_error(
      [&] {
        Net{.layer = {.features = {4}, .axis = {-1, 3}}}.init(rnd::key(0), x);
      },
      {"repeats an axis", "/proj"}));
  EXPECT_TRUE(throws_error(
      [&] { Net{.layer = {.features = {4}, .axis = {0}, .batch_dims = {0}}}.init(rnd::key(0), x); },
      {"share an axis", "/proj"}));
  EXPECT_TRUE(throws_error([&] { Net{.layer = {.features = {}}}.init(rnd::key(0), x); },
                           {"features must name at least one output size", "/proj"}));
  EXPECT_TRUE(throws_error(
      [&] {
        Net{.layer = {.features = {3, 0}}}.init(rnd::key(0), x);
      },
      {"features must be positive, got (3, 0)", "/proj"}));
  EXPECT_TRUE(throws_error(
      [&] { Net{.layer = {.features = {2}, .dtype = DType::int32}}.init(rnd::key(0), x); },
      {"dtype must be inexact", "int32", "/proj"}));
  // Params made for 5 input features meet inputs with 4.
  Net net{.layer = {.features = {2}}};
  Tree v = net.init(rnd::key(0), x);
  EXPECT_THROW(net.apply(v, jnp::ones({1, 3, 2, 4})), loom::core::ScopeParamShapeError);
}

// ---- Einsum ---------------------------------------------------------------------------------

TEST(Einsum, ShapesOfFlaxsInitApplyCases) {
  // Flax: test_einsum_init_apply: (einsum_str, lhs, rhs, result, bias) shapes.
  struct Case {
    const char* eq;
    Shape lhs, rhs, result, bias;
  };
  const std::vector<Case> cases = {
      {"abc,cde->abde", {3, 4, 5}, {5, 6, 7}, {3, 4, 6, 7}, {6, 7}},
      {"abcd,abcd->abcd", {3, 4, 5, 6}, {3, 4, 5, 6}, {3, 4, 5, 6}, {3, 4, 5, 6}},
      {"abcd,abcd->abd", {3, 4, 5, 6}, {3, 4, 5, 6}, {3, 4, 6}, {3, 4, 6}},
      {"abcd,cdef->abef", {3, 4, 5, 6}, {5, 6, 7, 8}, {3, 4, 7, 8}, {7, 8}},
      {"abcd,eafc->bfed", {3, 4, 5, 6}, {7, 3, 8, 5}, {4, 8, 7, 6}, {8, 7}},
      {"abcd,cbedf->abfe", {3, 4, 5, 6}, {5, 4, 7, 6, 8}, {3, 4, 8, 7}, {4, 8, 7}},
      {"ab...,bc...->ac...", {3, 4, 6}, {4, 5, 6}, {3, 5, 6}, {5, 6}},
      {"d...ab,bc...->ad...c", {8, 6, 7, 3, 4}, {4, 5, 6, 7}, {3, 8, 6, 7, 5}, {6, 7, 5}},
      {"d...ab,bc...->adc", {8, 6, 7, 3, 4}, {4, 5, 6, 7}, {3, 8, 5}, {5}},
      {"abd...,bc...->ac...", {3, 4, 6}, {4, 5, 6}, {3, 5, 6}, {5, 6}},
      {"a...d,ej...f->adef", {3, 4, 5, 6}, {7, 4, 5, 8}, {3, 6, 7, 8}, {7, 8}},
      {"ab...d,ej...f->ad...f", {3, 4, 5, 6}, {7, 4, 5, 8}, {3, 6, 5, 8}, {5, 8}},
  };
  for (const Case& c : cases) {
    nn::Einsum layer{.shape = c.rhs, .einsum_str = c.eq, .bias_init = init::normal()};
    auto [y, v] = layer.init_with_output(rnd::key(1), jnp::ones(c.lhs));
    EXPECT_EQ(leaf(v, "kernel").shape(), c.rhs) << c.eq;
    EXPECT_EQ(leaf(v, "bias").shape(), c.bias) << c.eq;
    EXPECT_EQ(y.shape(), c.result) << c.eq;
  }
}

TEST(Einsum, MatchesNumPyIncludingEllipsis) {
  // NumPy: np.einsum(eq, x, kernel) + bias broadcast as Flax's _get_bias_shape.
  const std::vector<std::pair<const char*, const char*>> cases = {
      {"einsum", "abc,cde->abde"}, {"einsum_ellipsis", "d...ab,bc...->ad...c"}};
  for (const auto& [name, eq] : cases) {
    nn::Einsum layer{
        .shape = golden(name, "kernel").shape(), .einsum_str = eq, .param_dtype = DType::float64};
    Tree v = params(Tree{{"kernel", golden(name, "kernel")}, {"bias", golden(name, "bias")}});
    EXPECT_TRUE(allclose(layer.apply(v, golden(name, "x")), golden(name, "out"), 1e-12, 1e-12))
        << name;
  }
}

TEST(Einsum, EllipsisSpellingsAndSpacesAreEquivalent) {
  // Flax: test_einsum_ellipsis_equivalence and test_einsum_space_str.
  Array x = rnd::uniform(rnd::key(0), {3, 4, 6});
  const std::vector<std::string> eqs = {"abd,bce->ace", "abd,bc...->ac...", "abd...,bc...->ac...",
                                        "  ab d , b c e   -  >a c e  "};
  nn::Einsum first{.shape = {4, 5, 6}, .einsum_str = eqs[0], .bias_init = init::normal()};
  auto [y0, v0] = first.init_with_output(rnd::key(1), x);
  for (const std::string& eq : eqs) {
    nn::Einsum layer{.shape = {4, 5, 6}, .einsum_str = eq, .bias_init = init::normal()};
    auto [y, v] = layer.init_with_output(rnd::key(1), x);
    EXPECT_TRUE(allclose(leaf(v, "kernel"), leaf(v0, "kernel"), 0, 0)) << eq;
    EXPECT_TRUE(allclose(leaf(v, "bias"), leaf(v0, "bias"), 0, 0)) << eq;
    EXPECT_TRUE(allclose(y, y0, 1e-6, 1e-6)) << eq;
  }
}

TEST(Einsum, EinsumStrOnTheModuleOrAtCallTimeExactlyOnce) {
  // Flax: test_einsum_str_arg (the same messages).
  Array x = rnd::normal(rnd::key(0), {3, 4, 5});
  nn::Einsum constructed{.shape = {5, 6, 7}, .einsum_str = "abc,cde->abde"};
  nn::Einsum called{.shape = {5, 6, 7}};
  Tree v1 = constructed.init(rnd::key(1), x);
  Tree v2 = called.init(rnd::key(1), x, std::string("abc,cde->abde"));
  EXPECT_TRUE(allclose(leaf(v1, "kernel"), leaf(v2, "kernel"), 0, 0));
  EXPECT_TRUE(
      allclose(constructed.apply(v1, x), called.apply(v2, x, std::string("abc,cde->abde")), 0, 0));
  EXPECT_TRUE(throws_error(
      [&] { constructed.init(rnd::key(1), x, std::string("abc,cde->abde")); },
      {"Parameter \"einsum_str\" was passed to the constructor and at call time. Should be "
       "passed just once."}));
  EXPECT_TRUE(throws_error(
      [&] { called.init(rnd::key(1), x); },
      {"Parameter \"einsum_str\" must be passed to the constructor or at call time."}));
}

TEST(Einsum, BadEquationsAreErrors) {
  // Flax: test_einsum_error (the same messages), plus shape mismatches.
  Array x = jnp::ones({3, 4, 5});
  auto run = [&](const char* eq, Shape shape = {5, 6, 7}) {
    return [=] { nn::Einsum{.shape = shape, .einsum_str = eq}.init(rnd::key(0), x); };
  };
  EXPECT_TRUE(
      throws_error(run("abc,cde"), {"`einsum_str` equation must be explicit and include \"->\"."}));
  EXPECT_TRUE(throws_error(run("abc->"), {"`einsum_str` equation must have exactly two operands "
                                          "and therefore, exactly one comma character, instead "
                                          "of 0"}));
  EXPECT_TRUE(throws_error(run("abc,cde,efg->abdfg"), {"instead of 2"}));
  EXPECT_TRUE(throws_error(run("abc,cd->abd"), {"kernel subscripts", "(5, 6, 7)"}));
  EXPECT_TRUE(throws_error(run("ab,cde->abde"), {"input subscripts", "(3, 4, 5)"}));
  EXPECT_TRUE(throws_error(run("abc,cde->abde", {4, 6, 7}), {"Einsum", "differs", "(4, 6, 7)"}));
}

TEST(Einsum, GradientsMatchFiniteDifferences) {
  nn::Einsum layer{
      .shape = {4, 2, 3}, .einsum_str = "a...b,bcd->a...cd", .param_dtype = DType::float64};
  Array x = wave({2, 3, 4}, 0.2);
  Array k = wave({4, 2, 3}, 1.2);
  Array b = wave({2, 3}, 2.2);
  auto loss = [&](const Array& xx, const Array& kk, const Array& bb) {
    Array y = layer.apply(params(Tree{{"kernel", kk}, {"bias", bb}}), xx);
    return jnp::sum(jnp::square(y) * wave(y.shape(), 0.5));
  };
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return loss(a, k, b); }, x));
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return loss(x, a, b); }, k));
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return loss(x, k, a); }, b));
}

// ---- Embed ----------------------------------------------------------------------------------

TEST(Embed, DocstringValuesForKeyZero) {
  // Flax's Embed docstring: Embed(5, 3).init(jax.random.key(0), [[0, 1, 2], [-1, -2, -3]])
  // prints this table (the default variance_scaling(1, fan_in, normal, out_axis=0)), and the
  // lookup returns rows 0, 1, 2 and 4, 3, 2.
  const Array expected(
      std::vector<float>{0.04396089f, -0.9328513f, -0.97328115f, 0.41147125f, 0.66334754f,
                         0.49469155f, 0.09719624f, 0.49861377f, 0.49519277f, -0.13316602f,
                         0.6697022f, 0.3710195f, -0.5039532f, 0.287319f, 1.4369922f},
      Shape{5, 3});
  nn::Embed layer{.num_embeddings = 5, .features = 3};
  Array indices = Array(std::vector<int>{0, 1, 2, -1, -2, -3}, Shape{2, 3});
  auto [y, v] = layer.init_with_output(rnd::key(0), indices);
  EXPECT_EQ(v.str(), "params/embedding: float32[5,3]\n");
  EXPECT_TRUE(allclose(leaf(v, "embedding"), expected, 2e-7, 2e-8));
  Array rows = jnp::take(expected, Array(std::vector<int>{0, 1, 2, 4, 3, 2}, Shape{2, 3}), 0);
  EXPECT_TRUE(allclose(layer.apply(v, indices), rows, 2e-7, 2e-8));
}

TEST(Embed, LookupAndAttendOfAFixedTable) {
  // Flax: test_embed: table row i = (i, i, i); attend(ones(3)) = 3 * arange(4).
  Array table =
      jnp::broadcast_to(jnp::reshape(jnp::arange(0, 4, 1, DType::float32), {4, 1}), Shape{4, 3});
  nn::Embed layer{.num_embeddings = 4, .features = 3, .embedding_init = fixed(table)};
  Array x = jnp::reshape(jnp::arange(4), {1, 4});
  auto [y, v] = layer.init_with_output(rnd::key(0), x);
  EXPECT_TRUE(allclose(y, jnp::reshape(table, {1, 4, 3}), 0, 0));
  Array z = layer.apply(v, &nn::Embed::attend, jnp::ones({3}));
  EXPECT_TRUE(allclose(z, Array({0.f, 3.f, 6.f, 9.f}), 0, 0));
  // uint32 indices, a float64 output dtype, and a batch of queries.
  Array xu = Array(std::vector<std::uint32_t>{3, 0}, Shape{2});
  nn::Embed f64 = layer;
  f64.dtype = DType::float64;
  Array e = f64.apply(v, xu);
  EXPECT_EQ(e.dtype(), DType::float64);
  EXPECT_TRUE(allclose(e, Array({{3.0, 3.0, 3.0}, {0.0, 0.0, 0.0}}), 0, 0));
  EXPECT_EQ(layer.apply(v, &nn::Embed::attend, jnp::ones({2, 5, 3})).shape(), (Shape{2, 5, 4}));
}

TEST(Embed, OneEmbeddingBroadcasts) {
  // Flax: num_embeddings == 1 broadcasts the table to inputs.shape + (features,).
  nn::Embed layer{.num_embeddings = 1, .features = 2, .embedding_init = fixed(Array({{1.f, 2.f}}))};
  Array y = layer.init_with_output(rnd::key(0), Array(std::vector<int>{0, 0, 0}, Shape{3})).first;
  EXPECT_TRUE(allclose(y, Array({{1.f, 2.f}, {1.f, 2.f}, {1.f, 2.f}}), 0, 0));
}

TEST(Embed, GradientsMatchFiniteDifferences) {
  nn::Embed layer{.num_embeddings = 5, .features = 3, .param_dtype = DType::float64};
  Array ids = Array(std::vector<int>{4, 0, 4, 2, -1, 1}, Shape{2, 3});  // repeats accumulate
  Array q = wave({2, 3}, 0.4);
  Array table = wave({5, 3}, 1.4);
  auto lookup = [&](const Array& t) {
    Array y = layer.apply(params(Tree{{"embedding", t}}), ids);
    return jnp::sum(jnp::square(y) * wave(y.shape(), 0.9));
  };
  auto attend = [&](const Array& t, const Array& qq) {
    Array y = layer.apply(params(Tree{{"embedding", t}}), &nn::Embed::attend, qq);
    return jnp::sum(jnp::square(y) * wave(y.shape(), 0.1));
  };
  EXPECT_TRUE(grad_matches_fd(lookup, table));
  EXPECT_TRUE(grad_matches_fd([&](const Array& t) { return attend(t, q); }, table));
  EXPECT_TRUE(grad_matches_fd([&](const Array& a) { return attend(table, a); }, q));
}

TEST(Embed, BadInputsAreErrorsWithThePath) {
  struct Net : nn::Module<Net> {
    Array call(const Array& x) const {
      return child("tok", nn::Embed{.num_embeddings = 4, .features = 2})(x);
    }
  };
  EXPECT_TRUE(throws_error(
      [] { Net{}.init(rnd::key(0), jnp::ones({2})); },
      {"Input type must be an integer or unsigned integer", "float32", "(module \"/tok\")"}));
  EXPECT_TRUE(throws_error(
      [] {
        Net{}.init(rnd::key(0), Array({1, 4}));
      },
      {"Embed", "4", "num_embeddings 4", "/tok"}));
  nn::Embed layer{.num_embeddings = 4, .features = 2};
  Tree v = layer.init(rnd::key(0), Array({1}));
  EXPECT_TRUE(throws_error([&] { layer.apply(v, &nn::Embed::attend, jnp::ones({3})); },
                           {"Embed.attend", "features = 2", "(3,)"}));
  EXPECT_TRUE(throws_error(
      [] { nn::Embed{.num_embeddings = 0, .features = 2}.init(rnd::key(0), Array({0})); },
      {"num_embeddings and features must be positive"}));
}

namespace {
TEST(DenseDtype, IntegerDtypeIsRefusedAsFlax) {
  // Flax's canonicalize_dtype(inexact=True): "Dtype must be inexact" for an integer dtype;
  // integer inputs with float32 params compute in float32.
  nn::Dense dense{.features = 2, .dtype = loom::DType::int32};
  EXPECT_TRUE(loom::testing::throws_error(
      [&] {
        dense.init(loom::random::key(0), jnp::ones({1, 3}));
      },
      {"Dense", "dtype must be inexact", "int32"}));
  nn::Dense plain{.features = 2};
  loom::Array x = {{1, 2, 3}};  // int32, shape (1, 3)
  loom::Tree v = plain.init(loom::random::key(0), x);
  EXPECT_EQ(plain.apply(v, x).dtype(), loom::DType::float32);
}
}  // namespace
