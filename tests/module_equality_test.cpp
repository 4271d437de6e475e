// Module equality and hashing, as Flax's dataclass modules: modules with equal fields compare
// equal and hash equal (flax tests/linen/linen_module_test.py test_module_is_hashable,
// test_bind_unbind_equality), parent and name (loom: a Child handle's scope) take part, and
// initializers compare by a canonical description of factory and parameters.
#include <gtest/gtest.h>

#include <concepts>
#include <functional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>

#include "loom/loom.hpp"
#include "loom/nn.hpp"
#include "test_util.hpp"

namespace {

namespace nn = loom::nn;
namespace init = loom::nn::initializers;
namespace jnp = loom::numpy;
using loom::Array;
using loom::DType;
using loom::Shape;

template <typename T>
std::size_t h(const T& v) {
  return std::hash<T>{}(v);
}

// Equal, and hash equal (the contract of std::hash and Python's __hash__).
template <typename T>
void expect_same(const T& a, const T& b) {
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a != b);
  EXPECT_EQ(h(a), h(b));
}

TEST(InitializerEquality, ComparesByDescription) {
  expect_same(init::lecun_normal(), init::lecun_normal());
  EXPECT_NE(init::lecun_normal(), init::he_normal());
  EXPECT_NE(init::lecun_normal(), init::lecun_uniform());
  EXPECT_NE(init::lecun_normal(), init::lecun_normal({-2}, {0}));
  // The named initializers are variance_scaling special cases (jax/_src/nn/initializers.py), and
  // the aliases are the same function, so they compare equal.
  expect_same(init::lecun_normal(), init::variance_scaling(1.0, "fan_in", "truncated_normal"));
  expect_same(init::he_uniform(), init::variance_scaling(2.0, "fan_in", "uniform"));
  expect_same(init::xavier_normal(), init::glorot_normal());
  expect_same(init::kaiming_uniform(), init::he_uniform());
  expect_same(init::normal(0.02), init::normal(0.02));
  EXPECT_NE(init::normal(0.02), init::normal(0.03));
  EXPECT_NE(init::normal(0.02), init::uniform(0.02));
  EXPECT_NE(init::zeros_init(), init::ones_init());
  EXPECT_NE(init::zeros_init(), init::constant(0.0));
  expect_same(init::orthogonal(), init::orthogonal(1.0, -1));
  EXPECT_NE(init::orthogonal(), init::orthogonal(2.0));
  EXPECT_NE(init::orthogonal(), init::delta_orthogonal());
  EXPECT_NE(init::truncated_normal(), init::truncated_normal(1e-2, -3.0, 3.0));
}

TEST(InitializerEquality, Descriptions) {
  EXPECT_EQ(init::lecun_normal().description(),
            "variance_scaling(scale=1, mode=fan_in, distribution=truncated_normal, in_axis=-2, "
            "out_axis=-1, batch_axis=())");
  EXPECT_EQ(init::variance_scaling(0.5, "fan_avg", "normal", {-3, -2}, {-1}, {0}).description(),
            "variance_scaling(scale=0.5, mode=fan_avg, distribution=normal, in_axis=(-3, -2), "
            "out_axis=-1, batch_axis=0)");
  EXPECT_EQ(init::zeros_init().description(), "zeros");
  EXPECT_EQ(init::ones_init().description(), "ones");
  EXPECT_EQ(init::constant(0.1).description(), "constant(value=0.1)");
  EXPECT_EQ(init::normal().description(), "normal(stddev=0.01)");
  EXPECT_EQ(init::uniform(0.25).description(), "uniform(scale=0.25)");
  EXPECT_EQ(init::truncated_normal(0.02).description(),
            "truncated_normal(stddev=0.02, lower=-2, upper=2)");
  EXPECT_EQ(init::orthogonal(1.5, 0).description(), "orthogonal(scale=1.5, column_axis=0)");
}

TEST(InitializerEquality, StillCallableWithTheSameValues) {
  const auto k = loom::random::key(0);
  const Array a = init::lecun_normal()(k, {4, 3}, DType::float32);
  const Array b = init::variance_scaling(1.0, "fan_in", "truncated_normal")(k, {4, 3},
                                                                            DType::float32);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  EXPECT_EQ(init::constant(0.5)(k, {2}, DType::float64).to_vector<double>(),
            (std::vector<double>{0.5, 0.5}));
}

TEST(InitializerEquality, UserLambdasCompareByIdentity) {
  auto twos = [](const loom::random::Key&, const Shape& s, DType d) { return jnp::full(s, 2.0, d); };
  const init::Initializer a = twos;
  const init::Initializer copy = a;  // a copy shares the callable
  const init::Initializer b = twos;  // the same lambda type, converted again: a new callable
  expect_same(a, copy);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.description(), "");
  EXPECT_EQ(a(loom::random::key(0), {2}, DType::float32).to_vector<float>(),
            (std::vector<float>{2, 2}));
  // A description makes it compare by value.
  expect_same(init::Initializer("twos", twos), init::Initializer("twos", twos));
  EXPECT_NE(init::Initializer("twos", twos), a);
  // A plain function compares by its address.
  expect_same(init::Initializer(init::zeros), init::Initializer(init::zeros));
  EXPECT_NE(init::Initializer(init::zeros), init::Initializer(init::ones));
  // Empty ones are equal; calling one is a loom::Error, not std::bad_function_call.
  expect_same(init::Initializer(), init::Initializer(nullptr));
  EXPECT_TRUE(init::Initializer() == nullptr);
  EXPECT_FALSE(static_cast<bool>(init::Initializer()));
  EXPECT_TRUE(loom::testing::throws_error(
      [] { init::Initializer()(loom::random::key(0), {1}, DType::float32); }, {"empty function"}));
}

// flax tests/linen/linen_module_test.py test_module_is_hashable: Dense(10) twice hash equal,
// Dense(5) hashes differently.
TEST(ModuleEquality, FlaxModuleIsHashable) {
  const nn::Dense a{.features = 10}, a2{.features = 10}, b{.features = 5};
  expect_same(a, a2);
  EXPECT_FALSE(a == b);
  EXPECT_NE(h(a), h(b));
}

TEST(ModuleEquality, EveryFieldTakesPart) {
  const nn::Dense d{.features = 3};
  expect_same(d, nn::Dense{.features = 3, .kernel_init = init::lecun_normal()});
  EXPECT_FALSE(d == (nn::Dense{.features = 3, .use_bias = false}));
  EXPECT_FALSE(d == (nn::Dense{.features = 3, .dtype = DType::float32}));
  EXPECT_FALSE(d == (nn::Dense{.features = 3, .param_dtype = DType::float64}));
  EXPECT_FALSE(d == (nn::Dense{.features = 3, .kernel_init = init::he_normal()}));
  EXPECT_FALSE(d == (nn::Dense{.features = 3, .bias_init = init::constant(0.1)}));

  expect_same(nn::DenseGeneral{.features = {2, 3}}, nn::DenseGeneral{.features = {2, 3}});
  EXPECT_FALSE((nn::DenseGeneral{.features = {2, 3}}) ==
               (nn::DenseGeneral{.features = {2, 3}, .axis = {-2, -1}}));
  expect_same(nn::Einsum{.shape = {3, 4}, .einsum_str = "ab,bc->ac"},
              nn::Einsum{.shape = {3, 4}, .einsum_str = "ab,bc->ac"});
  EXPECT_FALSE((nn::Einsum{.shape = {3, 4}}) == (nn::Einsum{.shape = {3, 5}}));
  expect_same(nn::Embed{.num_embeddings = 10, .features = 4},
              nn::Embed{.num_embeddings = 10, .features = 4});
  EXPECT_FALSE((nn::Embed{.num_embeddings = 10, .features = 4}) ==
               (nn::Embed{.num_embeddings = 10,
                          .features = 4,
                          .embedding_init = init::variance_scaling(1.0, "fan_in", "normal")}));
  expect_same(nn::PReLU{}, nn::PReLU{});
  EXPECT_FALSE(nn::PReLU{} == nn::PReLU{.negative_slope_init = 0.2});
  expect_same(nn::Dropout{.rate = 0.1}, nn::Dropout{.rate = 0.1});
  EXPECT_FALSE((nn::Dropout{.rate = 0.1}) == (nn::Dropout{.rate = 0.1, .deterministic = true}));
  EXPECT_FALSE((nn::Dropout{.rate = 0.1}) == (nn::Dropout{.rate = 0.1, .broadcast_dims = {0}}));
}

TEST(ModuleEquality, ConvAndPadding) {
  const nn::Conv c{.features = 8, .kernel_size = {3, 3}};
  expect_same(c, nn::Conv{.features = 8, .kernel_size = {3, 3}});
  EXPECT_FALSE(c == (nn::Conv{.features = 8, .kernel_size = {3, 3}, .padding = "VALID"}));
  EXPECT_FALSE(c == (nn::Conv{.features = 8, .kernel_size = {3, 3}, .padding = 1}));
  expect_same(nn::Conv{.features = 8, .kernel_size = {3}, .padding = {{1, 2}}},
              nn::Conv{.features = 8, .kernel_size = {3}, .padding = {{1, 2}}});
  EXPECT_FALSE((nn::Conv{.features = 8, .kernel_size = {3}, .padding = {{1, 2}}}) ==
               (nn::Conv{.features = 8, .kernel_size = {3}, .padding = {{2, 1}}}));
  EXPECT_FALSE(c == (nn::Conv{.features = 8, .kernel_size = {3, 3}, .strides = {2}}));
  // The mask compares by value: a different array with the same elements is equal.
  const Array m1 = jnp::ones({3, 3, 1, 8});
  const Array m2 = jnp::ones({3, 3, 1, 8});
  expect_same(nn::Conv{.features = 8, .kernel_size = {3, 3}, .mask = m1},
              nn::Conv{.features = 8, .kernel_size = {3, 3}, .mask = m2});
  EXPECT_FALSE(c == (nn::Conv{.features = 8, .kernel_size = {3, 3}, .mask = m1}));
  EXPECT_FALSE((nn::Conv{.features = 8, .kernel_size = {3, 3}, .mask = m1}) ==
               (nn::Conv{.features = 8, .kernel_size = {3, 3}, .mask = jnp::zeros({3, 3, 1, 8})}));
  expect_same(nn::ConvTranspose{.features = 4, .kernel_size = {3, 3}},
              nn::ConvTranspose{.features = 4, .kernel_size = {3, 3}});
  EXPECT_FALSE((nn::ConvTranspose{.features = 4, .kernel_size = {3, 3}}) ==
               (nn::ConvTranspose{.features = 4, .kernel_size = {3, 3}, .transpose_kernel = true}));
}

TEST(ModuleEquality, Normalization) {
  expect_same(nn::BatchNorm{.momentum = 0.9}, nn::BatchNorm{.momentum = 0.9});
  EXPECT_FALSE(nn::BatchNorm{} == nn::BatchNorm{.momentum = 0.9});
  EXPECT_FALSE((nn::BatchNorm{} == nn::BatchNorm{.axis = {1, 2}}));
  EXPECT_FALSE(nn::BatchNorm{} == nn::BatchNorm{.use_running_average = true});
  expect_same(nn::LayerNorm{}, nn::LayerNorm{});
  EXPECT_FALSE((nn::LayerNorm{} == nn::LayerNorm{.reduction_axes = {-2, -1}}));
  EXPECT_FALSE(nn::LayerNorm{} == nn::LayerNorm{.scale_init = init::zeros_init()});
  expect_same(nn::RMSNorm{}, nn::RMSNorm{});
  EXPECT_FALSE(nn::RMSNorm{} == nn::RMSNorm{.epsilon = 1e-5});
  expect_same(nn::GroupNorm{}, nn::GroupNorm{});
  EXPECT_FALSE(nn::GroupNorm{} == (nn::GroupNorm{.num_groups = std::nullopt, .group_size = 4}));
  EXPECT_FALSE(nn::GroupNorm{} == nn::GroupNorm{.reduction_axes = loom::numpy::Axes{-1}});
  expect_same(nn::InstanceNorm{}, nn::InstanceNorm{});
  EXPECT_FALSE(nn::InstanceNorm{} == nn::InstanceNorm{.use_bias = false});
  // Axes: None (every axis) is not -1.
  EXPECT_FALSE(nn::LayerNorm{} == nn::LayerNorm{.feature_axes = loom::numpy::Axes{}});
}

TEST(ModuleEquality, Attention) {
  const nn::MultiHeadDotProductAttention a{.num_heads = 8, .qkv_features = 16};
  expect_same(a, nn::MultiHeadDotProductAttention{.num_heads = 8, .qkv_features = 16});
  EXPECT_FALSE(a == (nn::MultiHeadDotProductAttention{.num_heads = 4, .qkv_features = 16}));
  EXPECT_FALSE(a == (nn::MultiHeadDotProductAttention{
                        .num_heads = 8, .qkv_features = 16, .out_kernel_init = init::zeros_init()}));
  EXPECT_FALSE(a == (nn::MultiHeadDotProductAttention{
                        .num_heads = 8, .qkv_features = 16, .normalize_qk = true}));
  expect_same(nn::SelfAttention{.num_heads = 2}, nn::SelfAttention{.num_heads = 2});
  expect_same(nn::MultiHeadAttention{.num_heads = 2}, nn::MultiHeadAttention{.num_heads = 2});
}

TEST(ModuleEquality, RecurrentCellsAndRNN) {
  expect_same(nn::LSTMCell{.features = 4}, nn::LSTMCell{.features = 4});
  EXPECT_FALSE((nn::LSTMCell{.features = 4}) == (nn::LSTMCell{.features = 5}));
  // Activations are plain functions: they compare by address.
  expect_same(nn::LSTMCell{.features = 4, .gate_fn = nn::sigmoid}, nn::LSTMCell{.features = 4});
  EXPECT_FALSE((nn::LSTMCell{.features = 4}) == (nn::LSTMCell{.features = 4, .gate_fn = nn::relu}));
  EXPECT_FALSE((nn::LSTMCell{.features = 4}) ==
               (nn::LSTMCell{.features = 4, .recurrent_kernel_init = init::lecun_normal()}));
  expect_same(nn::OptimizedLSTMCell{.features = 4}, nn::OptimizedLSTMCell{.features = 4});
  expect_same(nn::GRUCell{.features = 4}, nn::GRUCell{.features = 4});
  EXPECT_FALSE((nn::GRUCell{.features = 4}) ==
               (nn::GRUCell{.features = 4, .activation_fn = nn::relu}));
  expect_same(nn::MGUCell{.features = 4}, nn::MGUCell{.features = 4});
  EXPECT_FALSE((nn::MGUCell{.features = 4}) == (nn::MGUCell{.features = 4, .reset_gate = false}));
  expect_same(nn::SimpleCell{.features = 4}, nn::SimpleCell{.features = 4});
  EXPECT_FALSE((nn::SimpleCell{.features = 4}) ==
               (nn::SimpleCell{.features = 4, .residual = true}));

  using Rnn = nn::RNN<nn::LSTMCell>;
  expect_same(Rnn{.cell = {.features = 4}}, Rnn{.cell = {.features = 4}});
  EXPECT_FALSE((Rnn{.cell = {.features = 4}}) == (Rnn{.cell = {.features = 3}}));
  EXPECT_FALSE((Rnn{.cell = {.features = 4}}) == (Rnn{.cell = {.features = 4}, .reverse = true}));
  using Bi = nn::Bidirectional<Rnn, Rnn>;
  const Bi bi{.forward_rnn = {.cell = {.features = 4}}, .backward_rnn = {.cell = {.features = 4}}};
  expect_same(bi, Bi{.forward_rnn = {.cell = {.features = 4}},
                     .backward_rnn = {.cell = {.features = 4}}});
  Bi summed = bi;
  summed.merge_fn = [](const Array& a, const Array& b) { return a + b; };
  EXPECT_FALSE(bi == summed);
  expect_same(summed, Bi(summed));  // a copy shares the lambda
}

TEST(ModuleEquality, SequentialLayers) {
  const nn::Sequential a{.layers = {nn::Dense{.features = 3}, nn::relu, nn::Dense{.features = 2}}};
  expect_same(a, nn::Sequential{.layers = {nn::Dense{.features = 3}, nn::relu,
                                           nn::Dense{.features = 2}}});
  EXPECT_FALSE(a == (nn::Sequential{.layers = {nn::Dense{.features = 3}, nn::tanh,
                                               nn::Dense{.features = 2}}}));
  EXPECT_FALSE(a == (nn::Sequential{.layers = {nn::Dense{.features = 3}, nn::relu,
                                               nn::Dense{.features = 4}}}));
  EXPECT_FALSE(a == (nn::Sequential{.layers = {nn::Dense{.features = 3}, nn::relu}}));
  // A module layer is not a function layer, nor a module of another type with the same fields.
  EXPECT_FALSE((nn::Sequential{.layers = {nn::LayerNorm{}}}) ==
               (nn::Sequential{.layers = {nn::RMSNorm{}}}));
  const nn::Sequential with_lambda{.layers = {[](const Array& x) { return x * 2.0; }}};
  expect_same(with_lambda, nn::Sequential(with_lambda));
  EXPECT_FALSE(with_lambda ==
               (nn::Sequential{.layers = {[](const Array& x) { return x * 2.0; }}}));
}

// A user module gets == by defaulting it (every field must be comparable) and a hash with
// LOOM_NN_HASH_FIELDS; a Dense field compares as a field.
struct Mlp : nn::Module<Mlp> {
  std::int64_t hidden = 8;
  double drop_rate = 0.1;
  nn::Dense head{.features = 2};
  bool operator==(const Mlp&) const = default;
  Array call(const Array& x) const { return head(nn::Dense{.features = hidden}(x)); }
};

struct NoEq : nn::Module<NoEq> {
  int width = 1;
  Array call(const Array& x) const { return x; }
};

struct Foo : nn::Module<Foo> {
  std::int64_t features = 3;
  bool operator==(const Foo&) const = default;
  Array call(const Array& x) const { return nn::Dense{.features = features}(x); }
};
struct Bar : nn::Extends<Bar, Foo> {
  double scale = 2;
  bool operator==(const Bar&) const = default;
  Array call(const Array& x) const { return base_call(x) * scale; }
};
struct BarNoEq : nn::Extends<BarNoEq, Foo> {
  double scale = 2;
  Array call(const Array& x) const { return base_call(x) * scale; }
};

}  // namespace

LOOM_NN_HASH_FIELDS(Mlp, m.hidden, m.drop_rate, m.head)
LOOM_NN_HASH_FIELDS(Bar, m.features, m.scale)

namespace {

TEST(ModuleEquality, UserModules) {
  expect_same(Mlp{}, Mlp{});
  EXPECT_FALSE(Mlp{} == Mlp{.hidden = 16});
  EXPECT_FALSE(Mlp{} == Mlp{.head = {.features = 3}});
  EXPECT_NE(h(Mlp{}), h(Mlp{.hidden = 16}));
  // Without its own ==, a module is not comparable (the base does not say "all equal").
  static_assert(!std::equality_comparable<NoEq>);
  // An Extends module compares the fields of both levels; without its own ==, none (rather
  // than only Foo's fields).
  expect_same(Bar{}, Bar{});
  EXPECT_FALSE(Bar{} == Bar{.scale = 3});
  Bar wider;
  wider.features = 4;
  EXPECT_FALSE(Bar{} == wider);
  static_assert(!std::equality_comparable<BarNoEq>);
  // Flax refuses to hash a module holding variables: a Child handle has no std::hash.
  static_assert(!std::is_default_constructible_v<std::hash<nn::Child<nn::Dense>>>);
}

TEST(ModuleEquality, UsableAsUnorderedKeys) {
  std::unordered_set<nn::Dense> layers{nn::Dense{.features = 3}, nn::Dense{.features = 3},
                                       nn::Dense{.features = 4},
                                       nn::Dense{.features = 3, .kernel_init = init::he_normal()}};
  EXPECT_EQ(layers.size(), 3u);
  EXPECT_TRUE(layers.contains(nn::Dense{.features = 4}));
  EXPECT_FALSE(layers.contains(nn::Dense{.features = 5}));

  std::unordered_map<nn::Conv, std::string> names;
  names[nn::Conv{.features = 8, .kernel_size = {3, 3}}] = "conv3";
  names[nn::Conv{.features = 8, .kernel_size = {1, 1}}] = "conv1";
  names[nn::Conv{.features = 8, .kernel_size = {3, 3}}] = "conv3 again";
  EXPECT_EQ(names.size(), 2u);
  EXPECT_EQ(names.at(nn::Conv{.features = 8, .kernel_size = {3, 3}}), "conv3 again");

  std::unordered_set<init::Initializer> inits{init::lecun_normal(), init::lecun_normal(),
                                              init::glorot_normal(), init::xavier_normal()};
  EXPECT_EQ(inits.size(), 2u);
  std::unordered_set<Mlp> mlps{Mlp{}, Mlp{}, Mlp{.drop_rate = 0.5}};
  EXPECT_EQ(mlps.size(), 2u);
}

// flax tests/linen/linen_module_test.py test_bind_unbind_equality: the module behind a bound
// module equals the one that was bound.
TEST(ModuleEquality, BindUnbindEquality) {
  const Mlp model{.hidden = 4};
  const loom::Tree v = model.init(loom::random::key(0), jnp::ones({1, 3}));
  auto bound = model.bind(v);
  EXPECT_TRUE(bound.module() == model);
  EXPECT_EQ(h(bound.module()), h(model));
}

// Handles compare equal fields and the same place (Flax's parent and name).
struct Handles : nn::Module<Handles> {
  bool operator==(const Handles&) const = default;
  auto d() const { return child("d", nn::Dense{.features = 3}); }
  Array call(const Array& x) const {
    auto first = d();
    auto again = d();  // the same declaration reached again: the same submodule
    auto other = child("other", nn::Dense{.features = 3});
    EXPECT_TRUE(first == again);
    EXPECT_FALSE(first == other);  // equal fields, another name
    EXPECT_TRUE(first.module() == other.module());
    return other(first(x));
  }
};

TEST(ModuleEquality, ChildHandlesCompareTheirPlace) {
  const loom::Tree v = Handles{}.init(loom::random::key(0), jnp::ones({1, 3}));
  EXPECT_EQ(loom::tree_leaves(v).size(), 4u);
}

}  // namespace
