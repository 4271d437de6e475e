// loom::Tree maps: the one- and two-tree tree_map, the n-ary tree_map and tree_map_with_path
// (jax.tree_util semantics: leaves matched by key path, structure mismatches are errors).
#include <gtest/gtest.h>

#include "loom/loom.hpp"
#include "test_util.hpp"

using loom::Array;
using loom::DType;
using loom::KeyPath;
using loom::Tree;
using loom::testing::f64;
using loom::testing::throws_error;
namespace jnp = loom::numpy;

namespace {
Tree make(double a, double b, double c) {
  return Tree{{"Dense_0", {{"bias", f64({a}, {1})}, {"kernel", f64({b, b + 1}, {2})}}},
              {"scale", f64({c}, {1})}};
}
}  // namespace

TEST(Tree, OneAndTwoTreeFormsUnchanged) {
  Tree t = make(1, 2, 3);
  Tree d = loom::tree_map([](const Array& x) { return x * 2.0; }, t);
  EXPECT_EQ(d.at_path({"Dense_0", "kernel"}).leaf().to_vector<double>(),
            (std::vector<double>{4, 6}));
  Tree s = loom::tree_map([](const Array& x, const Array& y) { return x - y; }, d, t);
  EXPECT_EQ(s.at("scale").leaf().to_vector<double>(), std::vector<double>{3});
}

TEST(Tree, NaryTreeMapMatchesLeavesByPath) {
  Tree a = make(1, 2, 3), b = make(10, 20, 30), c = make(100, 200, 300), d = make(1, 1, 1);
  // p + m * v - w, leaf by leaf (w = make(1, 1, 1) has kernel [1, 2]): bias 1+10*100-1,
  // kernel [2+20*200-1, 3+21*201-2], scale 3+30*300-1
  Tree r = loom::tree_map(
      [](const Array& p, const Array& m, const Array& v, const Array& w) { return p + m * v - w; },
      a, b, c, d);
  EXPECT_TRUE(loom::same_structure(r, a));
  EXPECT_EQ(r.at_path({"Dense_0", "bias"}).leaf().to_vector<double>(), std::vector<double>{1000});
  EXPECT_EQ(r.at_path({"Dense_0", "kernel"}).leaf().to_vector<double>(),
            (std::vector<double>{4001, 4222}));
  EXPECT_EQ(r.at("scale").leaf().to_vector<double>(), std::vector<double>{9002});
  // Three trees.
  Tree r3 = loom::tree_map([](const Array& x, const Array& y, const Array& z) { return x + y + z; },
                           a, b, c);
  EXPECT_EQ(r3.at("scale").leaf().to_vector<double>(), std::vector<double>{333});
  // A leaf tree (the root itself a leaf).
  Tree l = loom::tree_map([](const Array& x, const Array& y, const Array& z) { return x * y * z; },
                          Tree(f64({2}, {1})), Tree(f64({3}, {1})), Tree(f64({4}, {1})));
  EXPECT_EQ(l.leaf().to_vector<double>(), std::vector<double>{24});
}

TEST(Tree, TreeMapWithPathSeesKeyPaths) {
  Tree a = make(1, 2, 3);
  std::vector<std::string> seen;
  Tree r = loom::tree_map_with_path(
      [&](const KeyPath& path, const Array& x) {
        std::string p;
        for (const auto& k : path) p += (p.empty() ? "" : "/") + k;
        seen.push_back(p);
        return path.back() == "kernel" ? x * 0.0 : x;
      },
      a);
  // Depth first, keys sorted (jax.tree_util flattening order).
  EXPECT_EQ(seen, (std::vector<std::string>{"Dense_0/bias", "Dense_0/kernel", "scale"}));
  EXPECT_EQ(r.at_path({"Dense_0", "kernel"}).leaf().to_vector<double>(),
            (std::vector<double>{0, 0}));
  EXPECT_EQ(r.at("scale").leaf().to_vector<double>(), std::vector<double>{3});
  // With two and three trees.
  Tree b = make(10, 20, 30);
  Tree r2 =
      loom::tree_map_with_path([](const KeyPath& path, const Array& x,
                                  const Array& y) { return path.size() == 1 ? x + y : x - y; },
                               a, b);
  EXPECT_EQ(r2.at("scale").leaf().to_vector<double>(), std::vector<double>{33});
  EXPECT_EQ(r2.at_path({"Dense_0", "bias"}).leaf().to_vector<double>(), std::vector<double>{-9});
  Tree r3 = loom::tree_map_with_path(
      [](const KeyPath&, const Array& x, const Array& y, const Array& z) { return x * y + z; }, a,
      b, b);
  EXPECT_EQ(r3.at("scale").leaf().to_vector<double>(), std::vector<double>{120});
  // The root leaf has the empty path.
  Tree leaf = loom::tree_map_with_path(
      [](const KeyPath& path, const Array& x) { return path.empty() ? x + 1.0 : x; },
      Tree(f64({1}, {1})));
  EXPECT_EQ(leaf.leaf().to_vector<double>(), std::vector<double>{2});
}

TEST(Tree, NaryStructureMismatchNamesThePath) {
  Tree a = make(1, 2, 3), b = make(1, 2, 3);
  Tree missing = Tree{{"Dense_0", {{"bias", f64({1}, {1})}}}, {"scale", f64({1}, {1})}};
  Tree extra = make(1, 2, 3);
  extra.at("Dense_0").set("zz", f64({1}, {1}));
  Tree leaf_for_dict = Tree{{"Dense_0", f64({1}, {1})}, {"scale", f64({1}, {1})}};
  auto add3 = [](const Array& x, const Array& y, const Array& z) { return x + y + z; };
  EXPECT_TRUE(throws_error([&] { loom::tree_map(add3, a, b, missing); },
                           {"tree_map", "tree 2", "\"Dense_0\"", "missing key \"kernel\""}));
  EXPECT_TRUE(throws_error([&] { loom::tree_map(add3, a, extra, b); },
                           {"tree_map", "tree 1", "\"Dense_0\"", "extra keys", "zz"}));
  EXPECT_TRUE(
      throws_error([&] { loom::tree_map(add3, a, b, leaf_for_dict); },
                   {"tree_map", "tree 2", "\"Dense_0\"", "a leaf where tree 0 has a dict"}));
  EXPECT_TRUE(throws_error(
      [&] {
        loom::tree_map_with_path([](const KeyPath&, const Array& x, const Array&) { return x; }, a,
                                 missing);
      },
      {"tree_map_with_path", "tree 1", "missing key \"kernel\""}));
}

TEST(Tree, NaryMapComputesAnAdamLikeUpdate) {
  // One adam step with bias correction at count 1: m = 0.1 g, v = 0.001 g^2, so
  // update = m/(1-0.9) / (sqrt(v/(1-0.999)) + eps) = g / (|g| + eps), ~ sign(g).
  Tree p = Tree{{"w", f64({1.0, -2.0}, {2})}};
  Tree g = Tree{{"w", f64({0.5, -4.0}, {2})}};
  Tree m = loom::tree_map([](const Array& x) { return 0.1 * x; }, g);
  Tree v = loom::tree_map([](const Array& x) { return 0.001 * x * x; }, g);
  Tree next = loom::tree_map(
      [](const Array& w, const Array& mu, const Array& nu) {
        return w - 0.1 * (mu / 0.1) / (jnp::sqrt(nu / 0.001) + 1e-8);
      },
      p, m, v);
  auto w = next.at("w").leaf().to_vector<double>();
  EXPECT_NEAR(w[0], 0.9, 1e-7);
  EXPECT_NEAR(w[1], -1.9, 1e-7);
}
