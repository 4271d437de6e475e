// Forward mode (loom::jvp, loom::linearize) for every differentiable primitive of
// tests/op_list.hpp and tests/op_list_lax_nn.hpp: against central finite differences in float64
// (the independent reference) and against reverse mode through the transpose identity
// <ct, J t> == <J^T ct, t>. Plus jvp's argument checks and linearize's reuse.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <map>
#include <set>

#include "loom/loom.hpp"
#include "op_list.hpp"
#include "test_util.hpp"
#if __has_include("op_list_lax_nn.hpp")
#include "op_list_lax_nn.hpp"
#define LOOM_HAVE_LAX_NN_OP_CASES 1
#endif

using loom::Array;
using loom::DType;
using loom::Tree;
using loom::testing::f64;
using loom::testing::OpCase;
using loom::testing::throws_error;
using loom::testing::wave;
namespace jnp = loom::numpy;

namespace {

// Forward-rule cases the shared op lists do not reach (nn activations, zero padding, matrix
// products, reshapes by another name): each is also checked against FD and reverse mode below.
std::vector<OpCase> forward_rule_cases() {
  using In = const std::vector<Array>&;
  const Array a = wave({3, 4}, 0.2), b = wave({4, 2}, 0.9), v = wave({4}, 1.3);
  std::vector<OpCase> c;
  auto unary = [&](const char* name, Array (*fn)(const Array&)) {
    c.push_back({name, [fn](In in) { return fn(in[0]); }, {a}, true});
  };
  unary("relu", [](const Array& x) { return loom::nn::relu(x); });
  unary("sigmoid", [](const Array& x) { return loom::nn::sigmoid(x); });
  unary("silu", [](const Array& x) { return loom::nn::silu(x); });
  unary("gelu", [](const Array& x) { return loom::nn::gelu(x); });
  unary("gelu", [](const Array& x) { return loom::nn::gelu(x, /*approximate=*/false); });
  unary("softplus", [](const Array& x) { return loom::nn::softplus(x); });
  unary("square", [](const Array& x) { return jnp::square(x); });
  c.push_back({"leaky_relu", [](In in) { return loom::nn::leaky_relu(in[0], 0.2); }, {a}, true});
  c.push_back({"softmax", [](In in) { return loom::nn::softmax(in[0], 1); }, {a}, true});
  c.push_back({"softmax", [](In in) { return loom::nn::softmax(in[0], 0); }, {a}, true});
  c.push_back({"log_softmax", [](In in) { return loom::nn::log_softmax(in[0], 1); }, {a}, true});
  c.push_back({"standardize", [](In in) { return loom::nn::standardize(in[0], 1); }, {a}, true});
  c.push_back({"pad", [](In in) { return jnp::pad(in[0], {{1, 0}, {2, 1}}, 0.0); }, {a}, true});
  c.push_back({"matmul", [](In in) { return jnp::matmul(in[0], in[1]); }, {a, b}, true});
  c.push_back({"matmul", [](In in) { return jnp::matmul(in[0], in[1]); }, {a, v}, true});
  c.push_back({"einsum",
               [](In in) {
                 return jnp::einsum("ij,jk->ki", {in[0], in[1]});
               },
               {a, b},
               true});
  c.push_back({"expand_dims", [](In in) { return jnp::expand_dims(in[0], 1); }, {a}, true});
  c.push_back({"squeeze",
               [](In in) {
                 return jnp::squeeze(jnp::reshape(in[0], {3, 1, 4}), 1);
               },
               {a},
               true});
  // An integer operand of a linear/elementwise op: its tangent is zero, not its value.
  const Array ints = jnp::reshape(jnp::arange(12), {3, 4}).astype(DType::int32);
  c.push_back({"add", [](In in) { return in[0] + in[1]; }, {a, ints}, true});
  c.push_back(
      {"where", [](In in) { return jnp::where(in[0] > 0.0, in[1], in[0]); }, {a, ints}, true});
  c.push_back({"concatenate",
               [](In in) {
                 return jnp::concatenate({in[0], in[1]}, 0);
               },
               {a, ints},
               true});
  return c;
}

std::vector<OpCase> differentiable_cases() {
  std::vector<OpCase> all = loom::testing::numpy_op_cases();
#ifdef LOOM_HAVE_LAX_NN_OP_CASES
  for (OpCase& c : loom::testing::lax_nn_op_cases()) all.push_back(std::move(c));
#endif
  for (OpCase& c : forward_rule_cases()) all.push_back(std::move(c));
  std::vector<OpCase> out;
  for (OpCase& c : all)
    if (c.differentiable) out.push_back(std::move(c));
  return out;
}

// The case as a function of its floating inputs only (the others stay fixed), over a Tree
// whose keys sort in input order.
struct FloatView {
  OpCase c;
  std::vector<std::size_t> floating;  // indices of c.inputs that are differentiated

  explicit FloatView(OpCase oc) : c(std::move(oc)) {
    for (std::size_t i = 0; i < c.inputs.size(); ++i)
      if (loom::is_floating(c.inputs[i].dtype())) floating.push_back(i);
  }
  static std::string key(std::size_t i) { return std::string(1, char('a' + i)); }
  Tree primals() const {
    Tree t = Tree(Tree::Dict{});
    for (std::size_t k = 0; k < floating.size(); ++k) t.set(key(k), c.inputs[floating[k]]);
    return t;
  }
  // Deterministic tangents, a different wave per input (inputs only, never expected values).
  Tree tangents(double phase) const {
    Tree t = Tree(Tree::Dict{});
    for (std::size_t k = 0; k < floating.size(); ++k) {
      const Array& p = c.inputs[floating[k]];
      t.set(key(k), wave(p.shape(), phase + 0.7 * double(k), p.dtype()));
    }
    return t;
  }
  Array operator()(const Tree& x) const {
    std::vector<Array> in = c.inputs;
    for (std::size_t k = 0; k < floating.size(); ++k) in[floating[k]] = x.at(key(k)).leaf();
    return c.fn(in);
  }
};

double vdot(const Array& a, const Array& b) {
  auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double s = 0;
  for (std::size_t i = 0; i < va.size(); ++i) s += va[i] * vb[i];
  return s;
}

double vdot(const Tree& a, const Tree& b) {
  auto la = loom::tree_leaves(a), lb = loom::tree_leaves(b);
  double s = 0;
  for (std::size_t i = 0; i < la.size(); ++i) s += vdot(la[i], lb[i]);
  return s;
}

class JvpOp : public ::testing::TestWithParam<OpCase> {};

TEST_P(JvpOp, MatchesFiniteDifferences) {
  FloatView f(GetParam());
  ASSERT_FALSE(f.floating.empty()) << "a differentiable case without floating inputs";
  Tree x = f.primals();
  Tree t = f.tangents(0.3);
  auto [y, y_dot] = loom::jvp(f, x, t);
  Array y_ref = f(x);
  ASSERT_TRUE(loom::testing::allclose(y, y_ref, 0, 0)) << "jvp's primal output differs from f(x)";
  ASSERT_EQ(y_dot.shape(), y.shape());
  ASSERT_EQ(y_dot.dtype(), y.dtype());
  const double h = 1e-6;
  auto shifted = [&](double s) {
    return loom::tree_map([s](const Array& a, const Array& d) { return a + d * s; }, x, t);
  };
  Array fd = (f(shifted(h)) - f(shifted(-h))) / (2 * h);
  EXPECT_TRUE(loom::testing::allclose(y_dot, fd, 1e-5, 1e-6));
}

TEST_P(JvpOp, TransposeIdentityWithVjp) {
  FloatView f(GetParam());
  Tree x = f.primals();
  Tree t = f.tangents(1.1);
  auto [y, y_dot] = loom::jvp(f, x, t);
  Array ct = wave(y.shape(), 2.3, y.dtype());
  auto [y2, pullback] = loom::vjp(f, x);
  Tree x_ct = pullback(ct);
  const double lhs = vdot(ct, y_dot), rhs = vdot(x_ct, t);
  EXPECT_NEAR(lhs, rhs, 1e-10 * (1 + std::abs(rhs)));
}

TEST_P(JvpOp, LinearizeAgreesWithJvp) {
  FloatView f(GetParam());
  Tree x = f.primals();
  auto [y, f_jvp] = loom::linearize(f, x);
  for (double phase : {0.3, 1.9}) {
    Tree t = f.tangents(phase);
    EXPECT_TRUE(loom::testing::allclose(f_jvp(t), loom::jvp(f, x, t).second, 1e-12, 1e-12));
  }
}

// jvp of grad (a Hessian-vector product) against central differences of the gradient: pushes
// tangents through every primitive the VJPs bind (scatters, pad/window transposes, ...).
TEST_P(JvpOp, JvpOfGradMatchesFiniteDifferences) {
  FloatView f(GetParam());
  Tree x = f.primals();
  const Array ct = wave(f(x).shape(), 2.3, f(x).dtype());
  auto g = loom::grad([&](const Tree& p) { return jnp::sum(f(p) * ct); });
  Tree t = f.tangents(0.6);
  Tree hvp = loom::jvp(g, x, t).second;
  const double h = 1e-6;
  auto shifted = [&](double s) {
    return loom::tree_map([s](const Array& a, const Array& d) { return a + d * s; }, x, t);
  };
  Tree fd = loom::tree_map([h](const Array& a, const Array& b) { return (a - b) / (2 * h); },
                           g(shifted(h)), g(shifted(-h)));
  auto l = loom::tree_leaves(hvp), r = loom::tree_leaves(fd);
  ASSERT_EQ(l.size(), r.size());
  for (std::size_t i = 0; i < l.size(); ++i)
    EXPECT_TRUE(loom::testing::allclose(l[i], r[i], 1e-5, 1e-6)) << "leaf " << i;
}

std::string case_name(const ::testing::TestParamInfo<OpCase>& info) {
  std::string n = info.param.name + "_" + std::to_string(info.index);
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(EveryDifferentiablePrimitive, JvpOp,
                         ::testing::ValuesIn(differentiable_cases()), case_name);

const char* kind_name(loom::detail::ForwardRuleKind k) {
  using K = loom::detail::ForwardRuleKind;
  switch (k) {
    case K::linear:
      return "linear";
    case K::bilinear:
      return "bilinear";
    case K::symmetric:
      return "symmetric";
    case K::explicit_rule:
      return "explicit";
    case K::derived:
      break;
  }
  return "derived";
}

// Which forward rule each primitive reached by the op cases uses. The common ones must not
// fall back to the derived rule (about 3x a VJP per op): a lost declaration fails here.
TEST(JvpRules, CommonPrimitivesHaveTheirOwnRule) {
  using K = loom::detail::ForwardRuleKind;
  loom::detail::clear_forward_rules_used();
  for (const OpCase& c : differentiable_cases()) {
    FloatView f(c);
    loom::jvp(f, f.primals(), f.tangents(0.3));
  }
  {  // astype between floats (outside the FD suite: float32 cannot take a 1e-6 step)
    const Array x = wave({5}, 0.1), t = wave({5}, 0.8);
    auto [y, y_dot] = loom::jvp(
        [](const Array& v) { return v.astype(DType::float32).astype(DType::float64); }, x, t);
    EXPECT_TRUE(
        loom::testing::allclose(y_dot, t.astype(DType::float32).astype(DType::float64), 0, 0));
  }
  std::map<std::string, std::set<K>> used;
  for (const auto& [name, kind] : loom::detail::forward_rules_used()) used[name].insert(kind);
  std::map<std::string, int> per_kind;
  std::string derived;
  for (const auto& [name, kinds] : used) {
    for (K k : kinds) ++per_kind[kind_name(k)];
    if (kinds.count(K::derived)) derived += " " + name;
  }
  std::string summary;
  for (const auto& [k, n] : per_kind) summary += " " + k + "=" + std::to_string(n);
  std::printf("forward rules of %zu primitives:%s\nderived:%s\n", used.size(), summary.c_str(),
              derived.c_str());
  const std::map<std::string, K> expected = {
      {"negative", K::linear},
      {"add", K::linear},
      {"subtract", K::linear},
      {"reshape", K::linear},
      {"transpose", K::linear},
      {"broadcast_to", K::linear},
      {"slice", K::linear},
      {"concatenate", K::linear},
      {"pad", K::linear},
      {"lax_pad", K::linear},
      {"take", K::linear},
      {"take_along_axis", K::linear},
      {"sum", K::linear},
      {"mean", K::linear},
      {"astype", K::linear},
      {"permute", K::linear},
      {"reduce_window", K::linear},
      {"reduce_window_mean", K::linear},
      {"multiply", K::bilinear},
      {"contract", K::bilinear},
      {"conv_general_dilated", K::bilinear},
      {"exp", K::explicit_rule},
      {"log", K::explicit_rule},
      {"log1p", K::explicit_rule},
      {"expm1", K::explicit_rule},
      {"tanh", K::explicit_rule},
      {"sqrt", K::explicit_rule},
      {"rsqrt", K::explicit_rule},
      {"sin", K::explicit_rule},
      {"cos", K::explicit_rule},
      {"abs", K::explicit_rule},
      {"divide", K::explicit_rule},
      {"power", K::explicit_rule},
      {"maximum", K::explicit_rule},
      {"minimum", K::explicit_rule},
      {"where", K::explicit_rule},
      {"relu", K::symmetric},
      {"sigmoid", K::symmetric},
      {"silu", K::symmetric},
      {"gelu", K::symmetric},
      {"softplus", K::symmetric},
      {"leaky_relu", K::symmetric},
      {"softmax", K::symmetric},
      {"standardize", K::symmetric},
  };
  for (const auto& [name, kind] : expected) {
    ASSERT_TRUE(used.count(name)) << name << " was not reached by the op cases";
    EXPECT_TRUE(used[name].count(kind))
        << name << " does not use its " << kind_name(kind) << " rule";
  }
  // Affine or mixed-dtype variants keep the derived rule on purpose; nothing else listed does.
  for (const char* name :
       {"negative", "add", "subtract", "reshape", "transpose", "slice", "sum", "mean", "multiply",
        "contract", "exp", "tanh", "relu", "sigmoid", "softmax", "where", "divide", "maximum"}) {
    EXPECT_FALSE(used[name].count(K::derived)) << name << " took the derived rule";
  }
}

TEST(Jvp, SinTimesX) {
  // d/dx (sin(x) x) = cos(x) x + sin(x), analytically.
  Array x = f64({0.3, -1.2, 2.0}, {3});
  Array t = f64({1.0, 0.5, -2.0}, {3});
  auto [y, y_dot] = loom::jvp([](const Array& v) { return jnp::sin(v) * v; }, x, t);
  auto xv = x.to_vector<double>(), tv = t.to_vector<double>(), yd = y_dot.to_vector<double>();
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(yd[i], (std::cos(xv[i]) * xv[i] + std::sin(xv[i])) * tv[i], 1e-14);
  }
  EXPECT_EQ(y.node(), nullptr);  // top-level outputs are detached
  EXPECT_EQ(y_dot.node(), nullptr);
}

TEST(Jvp, TreeInAndOut) {
  Tree x = {{"a", f64({1.0, 2.0}, {2})}, {"b", Array::scalar(3.0, DType::float64)}};
  Tree t = {{"a", f64({0.1, 0.2}, {2})}, {"b", Array::scalar(-1.0, DType::float64)}};
  auto f = [](const Tree& p) -> Tree {
    const Array& a = p.at("a").leaf();
    const Array& b = p.at("b").leaf();
    return Tree{{"prod", a * b}, {"sq", jnp::sum(a * a)}};
  };
  auto [y, y_dot] = loom::jvp(f, x, t);
  // d(a b) = da b + a db = {0.3 - 1, 0.6 - 2};  d(sum a^2) = 2 a . da = 0.2 + 0.8
  EXPECT_TRUE(loom::testing::allclose(y_dot.at("prod").leaf(), f64({-0.7, -1.4}, {2}), 1e-14));
  EXPECT_NEAR(y_dot.at("sq").leaf().item<double>(), 1.0, 1e-14);
}

TEST(Jvp, TangentMismatchIsAnError) {
  auto f = [](const Array& v) { return jnp::exp(v); };
  Array x = f64({1, 2, 3}, {3});
  EXPECT_TRUE(throws_error(
      [&] {
        loom::jvp(f, x, f64({1, 2}, {2}));
      },
      {"jvp", "primal and tangent", "float64(3,)", "float64(2,)"}));
  EXPECT_TRUE(throws_error([&] { loom::jvp(f, x, x.astype(DType::float32)); },
                           {"jvp", "float64(3,)", "float32(3,)", "dtype"}));
  Tree tx = {{"a", x}};
  Tree tt = {{"b", x}};
  EXPECT_TRUE(throws_error([&] { loom::jvp([](const Tree& p) { return p; }, tx, tt); },
                           {"jvp", "tree structure"}));
  auto [y, f_jvp] = loom::linearize(f, x);
  EXPECT_TRUE(throws_error([&] { f_jvp(f64({1}, {1})); }, {"linearize", "float64(1,)"}));
}

TEST(Jvp, InsideGradIsDifferentiable) {
  // g(x) = jvp(sin, x, 1) = cos(x); grad of g = -sin(x).
  auto g = [](const Array& x) {
    return loom::jvp([](const Array& v) { return jnp::sin(v); }, x, jnp::ones_like(x)).second;
  };
  Array x = Array::scalar(0.8, DType::float64);
  EXPECT_NEAR(loom::grad(g)(x).item<double>(), -std::sin(0.8), 1e-14);
}

}  // namespace
