// nn::scan and nn::vmap (flax/linen/transforms.py over flax/core/lift.py). Golden sources:
// - variables trees and names: tests/linen/linen_transforms_test.py (test_remat_scan's
//   dense_stack/kernel (100, 8, 8), test_scan_compact_count's (5, 3, 3), test_scan_negative_axes's
//   ScanFoo_0/Dense_0 and output (1, 4, 2), test_scan / test_vmap's comparison with a loop of
//   the unlifted module, test_same_key's split "params" keys);
// - rng derivation written from lift.py's rule (key i of random.split(base, length), the path
//   and count folded in by scope.py's _fold_in_static; the SHA-1 words below are Python
//   hashlib's, computed outside loom) and axes_scan.py's constancy pass (the counts of the real
//   pass start after one pass);
// - values: explicit loops of the unlifted module; the carried counter analytically;
// - gradients: central finite differences in float64.
#include <gtest/gtest.h>

#include <string>
#include <vector>

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
using loom::testing::throws_error;
using loom::testing::wave;

namespace {

// hashlib.sha1 over the path names and the count (int.to_bytes, big-endian), first 4 bytes.
constexpr std::uint32_t kHashCount1 = 3213575472u;            // ()             count 1
constexpr std::uint32_t kHashCount3 = 2554499690u;            // ()             count 3
constexpr std::uint32_t kHashStack3 = 1486480782u;            // ("stack",)     count 3
constexpr std::uint32_t kHashEns1 = 2833736939u;              // ("ens",)       count 1
constexpr std::uint32_t kHashScanDense0Count3 = 1305213634u;  // ("ScanDense_0",) count 3

Array kernel_for(const rnd::Key& k, Shape shape) {
  return nn::initializers::lecun_normal()(k, shape, DType::float32);
}

nn::Scan<nn::Dense> dense_stack(std::int64_t features, std::int64_t length) {
  return nn::scan(
      nn::Dense{.features = features},
      {.variable_axes = {{"params", 0}}, .split_rngs = {{"params", true}}, .length = length});
}

struct StackModel : nn::Module<StackModel> {
  Array call(const Array& x) const { return child("stack", dense_stack(4, 3))(x); }
};

// ---- variables trees ----------------------------------------------------------------------------

// test_remat_scan / test_scan_compact_count: a scanned Dense stack's params are stacked on
// axis 0 under the Dense's own names.
TEST(NnScan, DenseStackTreeAsFlax) {
  Array x = jnp::ones({2, 4});
  Tree v = StackModel{}.init(rnd::key(0), x);
  EXPECT_EQ(v.at("params").size(), 1u);
  EXPECT_EQ(v.at("params").at("stack").at("kernel").leaf().shape(), Shape({3, 4, 4}));
  EXPECT_EQ(v.at("params").at("stack").at("bias").leaf().shape(), Shape({3, 4}));
  EXPECT_EQ(StackModel{}.apply(v, x).shape(), Shape({2, 4}));
}

// Flax names the lifted class "Scan" + the target's name: auto-named "ScanDense_0".
TEST(NnScan, AutoNamedAsFlaxClass) {
  struct M : nn::Module<M> {
    Array call(const Array& x) const { return dense_stack(4, 2)(x); }
  };
  Tree v = M{}.init(rnd::key(0), jnp::ones({1, 4}));
  ASSERT_TRUE(v.at("params").contains("ScanDense_0"));
  EXPECT_EQ(v.at("params").at("ScanDense_0").at("kernel").leaf().shape(), Shape({2, 4, 4}));
}

struct Foo : nn::Module<Foo> {
  std::pair<std::monostate, Array> call(std::monostate, const Array& x) const {
    return {{}, nn::Dense{.features = 4}(x)};
  }
};

// test_scan_negative_axes: in_axes=1, out_axes=-1, broadcast params.
TEST(NnScan, NegativeAxesAsFlax) {
  struct Bar : nn::Module<Bar> {
    Array call(const Array& x) const {
      auto scanned = nn::scan(Foo{}, {.variable_broadcast = "params",
                                      .split_rngs = {{"params", false}},
                                      .in_axes = 1,
                                      .out_axes = -1});
      return scanned(std::monostate{}, x).second;
    }
  };
  Array x = rnd::normal(rnd::key(1), {1, 2, 3});
  auto [y, v] = Bar{}.init_with_output(rnd::key(0), x);
  EXPECT_EQ(y.shape(), Shape({1, 4, 2}));
  EXPECT_EQ(v.at("params").at("ScanFoo_0").at("Dense_0").at("kernel").leaf().shape(),
            Shape({3, 4}));
  EXPECT_EQ(v.at("params").at("ScanFoo_0").at("Dense_0").at("bias").leaf().shape(), Shape({4}));
  // Values: each slice x[:, t] through the shared Dense, stacked on the last axis.
  Tree dense_v = {{"params", v.at("params").at("ScanFoo_0").at("Dense_0")}};
  std::vector<Array> ys;
  for (int t = 0; t < 2; ++t)
    ys.push_back(nn::Dense{.features = 4}.apply(dense_v, jnp::index(x, t, 1)));
  EXPECT_TRUE(allclose(y, jnp::stack(ys, -1), 1e-6, 1e-6));
}

// ---- rng derivation (lift.py) -------------------------------------------------------------------

// Layer i's kernel comes from key i of split(base, 3), with the path and count folded in. The
// count is 3: axes_scan's constancy pass runs the body once (kernel 1, bias 2) before the scan
// itself, and both share the scope's counters.
TEST(NnScan, StackParamsFromFlaxKeys) {
  Array x = jnp::ones({2, 4});
  Tree top = dense_stack(4, 3).init(rnd::key(0), x);  // at the root: path ()
  Tree nested = StackModel{}.init(rnd::key(0), x);    // path ("stack",)
  rnd::Key keys = rnd::split(rnd::key(0), 3);
  for (int i = 0; i < 3; ++i) {
    Array k_top = jnp::index(top.at("params").at("kernel").leaf(), i);
    Array k_nested = jnp::index(nested.at("params").at("stack").at("kernel").leaf(), i);
    EXPECT_TRUE(allclose(k_top, kernel_for(rnd::fold_in(keys[i], kHashCount3), {4, 4}), 0, 0));
    EXPECT_TRUE(allclose(k_nested, kernel_for(rnd::fold_in(keys[i], kHashStack3), {4, 4}), 0, 0));
    EXPECT_TRUE(allclose(jnp::index(top.at("params").at("bias").leaf(), i), jnp::zeros({4}), 0, 0));
  }
  // Auto-named: the count is folded with the path ("ScanDense_0",).
  struct M : nn::Module<M> {
    Array call(const Array& x) const { return dense_stack(4, 3)(x); }
  };
  Tree auto_named = M{}.init(rnd::key(0), x);
  EXPECT_TRUE(allclose(jnp::index(auto_named.at("params").at("ScanDense_0").at("kernel").leaf(), 2),
                       kernel_for(rnd::fold_in(keys[2], kHashScanDense0Count3), {4, 4}), 0, 0));
}

// Without the constancy pass (check_constancy_invariants=False: simple_scan_fn traces once)
// the kernel's count is 1.
TEST(NnScan, NoConstancyPassCountsFromOne) {
  auto stack = dense_stack(4, 2);
  stack.options.check_constancy_invariants = false;
  Tree v = stack.init(rnd::key(5), jnp::ones({1, 4}));
  rnd::Key keys = rnd::split(rnd::key(5), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(allclose(jnp::index(v.at("params").at("kernel").leaf(), i),
                         kernel_for(rnd::fold_in(keys[i], kHashCount1), {4, 4}), 0, 0));
  }
}

// A submodule inside the scanned module keeps its counts across the constancy pass too (they
// live in the shared counters under the child's name): ScanFoo_0/Dense_0's kernel count is 3.
TEST(NnScan, NestedSubmoduleKeysAndStackedTree) {
  struct Top : nn::Module<Top> {
    Array call(const Array& x) const {
      auto scanned =
          nn::scan(Foo{}, {.variable_axes = {{"params", 0}}, .split_rngs = {{"params", true}}});
      return scanned(std::monostate{}, x).second;
    }
  };
  Array xs = wave({3, 2, 5}, 0.5, DType::float32);
  auto [y, v] = Top{}.init_with_output(rnd::key(9), xs);
  EXPECT_EQ(y.shape(), Shape({3, 2, 4}));
  const Tree& dense = v.at("params").at("ScanFoo_0").at("Dense_0");
  EXPECT_EQ(dense.at("kernel").leaf().shape(), Shape({3, 5, 4}));
  EXPECT_EQ(dense.at("bias").leaf().shape(), Shape({3, 4}));
  constexpr std::uint32_t kHash = 3041220643u;  // hashlib: ("ScanFoo_0", "Dense_0") count 3
  rnd::Key keys = rnd::split(rnd::key(9), 3);
  for (int i = 0; i < 3; ++i) {
    Array k = jnp::index(dense.at("kernel").leaf(), i);
    EXPECT_TRUE(allclose(k, kernel_for(rnd::fold_in(keys[i], kHash), {5, 4}), 0, 0));
    Tree layer = {
        {"params", Tree{{"kernel", k}, {"bias", jnp::index(dense.at("bias").leaf(), i)}}}};
    EXPECT_TRUE(allclose(jnp::index(y, i), nn::Dense{.features = 4}.apply(layer, jnp::index(xs, i)),
                         1e-6, 1e-6));
  }
}

struct KeyOut : nn::Module<KeyOut> {
  std::pair<std::monostate, Array> call(std::monostate, const Array&) const {
    return {{}, rnd::key_data(make_rng("dropout"))};
  }
};

// A split stream: iteration i draws from key i of split(base, length); counts as above (the
// constancy pass draws count 1, every iteration of the real pass count 2). Unsplit: one key.
TEST(NnScan, SplitAndBroadcastRngStreams) {
  const rnd::Key kd = rnd::key(7);
  auto split = nn::scan(KeyOut{}, {.split_rngs = {{"dropout", true}}});
  Tree none = Tree::Dict{};
  Array keys =
      split.apply(none, {.rngs = {{"dropout", kd}}}, std::monostate{}, jnp::zeros({4})).second;
  ASSERT_EQ(keys.shape(), Shape({4, 2}));
  constexpr std::uint32_t kHashCount2 = 3303678395u;  // hashlib: () count 2
  rnd::Key ks = rnd::split(kd, 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(
        allclose(jnp::index(keys, i), rnd::key_data(rnd::fold_in(ks[i], kHashCount2)), 0, 0));
  }
  auto same = nn::scan(KeyOut{}, {.split_rngs = {{"dropout", false}}});
  Array k2 =
      same.apply(none, {.rngs = {{"dropout", kd}}}, std::monostate{}, jnp::zeros({3})).second;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(allclose(jnp::index(k2, i), rnd::key_data(rnd::fold_in(kd, kHashCount2)), 0, 0));
  }
  // A stream matched by no split_rngs filter does not reach the body (lift.py drops it).
  auto dropped = nn::scan(KeyOut{}, {.split_rngs = {{"params", true}}});
  EXPECT_TRUE(throws_error(
      [&] {
        dropped.apply(none, {.rngs = {{"dropout", kd}}}, std::monostate{}, jnp::zeros({2}));
      },
      {"dropout"}));
}

// ---- values ------------------------------------------------------------------------------------

TEST(NnScan, StackEqualsLoopOfDense) {
  Array x = wave({2, 4}, 0.3, DType::float32);
  Tree v = StackModel{}.init(rnd::key(3), x);
  Array h = x;
  for (int i = 0; i < 3; ++i) {
    Tree layer = {
        {"params", Tree{{"kernel", jnp::index(v.at("params").at("stack").at("kernel").leaf(), i)},
                        {"bias", jnp::index(v.at("params").at("stack").at("bias").leaf(), i)}}}};
    h = nn::Dense{.features = 4}.apply(layer, h);
  }
  EXPECT_TRUE(allclose(StackModel{}.apply(v, x), h, 1e-6, 1e-6));
  // reverse runs the layers from the last.
  auto rev = dense_stack(4, 3);
  rev.options.reverse = true;
  Tree rv = {{"params", v.at("params").at("stack")}};
  Array hr = x;
  for (int i = 2; i >= 0; --i) {
    Tree layer = {{"params", Tree{{"kernel", jnp::index(rv.at("params").at("kernel").leaf(), i)},
                                  {"bias", jnp::index(rv.at("params").at("bias").leaf(), i)}}}};
    hr = nn::Dense{.features = 4}.apply(layer, hr);
  }
  EXPECT_TRUE(allclose(rev.apply(rv, x), hr, 1e-6, 1e-6));
}

// test_scan: an LSTM scanned over time with broadcast params equals a loop of the cell with
// the params found at the scanned module's path; the params are those of the unlifted cell
// there (the constancy pass initializes them as a first call would).
TEST(NnScan, BroadcastLstmAsFlaxTestScan) {
  struct SimpleScan : nn::Module<SimpleScan> {
    std::pair<nn::LSTMCell::Carry, Array> call(const nn::LSTMCell::Carry& c,
                                               const Array& xs) const {
      auto lstm = nn::scan(nn::LSTMCell{.features = 2},
                           {.variable_broadcast = "params", .split_rngs = {{"params", false}}});
      return child("lstm_cell", lstm)(c, xs);
    }
  };
  struct Once : nn::Module<Once> {
    std::pair<nn::LSTMCell::Carry, Array> call(const nn::LSTMCell::Carry& c, const Array& x) const {
      return child("lstm_cell", nn::LSTMCell{.features = 2})(c, x);
    }
  };
  Array xs = rnd::uniform(rnd::key(11), {5, 3, 2});
  auto init_carry = nn::LSTMCell{.features = 2}.initialize_carry(rnd::key(0), {3, 2});
  Tree v = SimpleScan{}.init(rnd::key(12), init_carry, xs);
  Tree once = Once{}.init(rnd::key(12), init_carry, jnp::index(xs, 0));
  ASSERT_TRUE(loom::same_structure(v, once));
  for (const auto& [path, leaf] : loom::tree_leaves_with_path(once)) {
    EXPECT_TRUE(allclose(v.at_path(path).leaf(), leaf, 0, 0));
  }
  Tree cell_v = {{"params", v.at("params").at("lstm_cell")}};
  auto c = init_carry;
  std::vector<Array> ys;
  for (int t = 0; t < 5; ++t) {
    auto [c2, y] = nn::LSTMCell{.features = 2}.apply(cell_v, c, jnp::index(xs, t));
    c = c2;
    ys.push_back(y);
  }
  auto [c_scan, y_scan] = SimpleScan{}.apply(v, init_carry, xs);
  EXPECT_TRUE(allclose(y_scan, jnp::stack(ys, 0), 1e-6, 1e-6));
  EXPECT_TRUE(allclose(c_scan.first, c.first, 1e-6, 1e-6));
  EXPECT_TRUE(allclose(c_scan.second, c.second, 1e-6, 1e-6));
}

// lift.scan's docstring example: a counter carried through the loop (variable_carry), params
// broadcast; in_axes {nn::broadcast, 0} as test_scan_decorated.
TEST(NnScan, CarriedVariableAndBroadcastArgument) {
  struct Body : nn::Module<Body> {
    std::pair<Array, Array> call(const Array& c, const Array& b, const Array& x) const {
      auto count = variable("counter", "i", [] { return Tree(jnp::zeros({})); });
      if (is_mutable_collection("counter")) count.set_value(count.value() + 1.0);
      EXPECT_EQ(b.shape(), Shape({4}));
      return {c + x, nn::Dense{.features = 1}(x)};
    }
  };
  auto scanned = nn::scan(Body{}, {.variable_broadcast = "params",
                                   .variable_carry = "counter",
                                   .split_rngs = {{"params", false}},
                                   .in_axes = {nn::broadcast, 0}});
  Array xs = wave({6, 2}, 0.1, DType::float32);
  Array b = jnp::ones({4});
  Tree v = scanned.init(rnd::key(0), jnp::zeros({2}), b, xs);
  EXPECT_DOUBLE_EQ(v.at("counter").at("i").leaf().item<double>(), 6.0);  // 6 iterations at init
  EXPECT_EQ(v.at("params").at("Dense_0").at("kernel").leaf().shape(), Shape({2, 1}));
  auto [out, upd] =
      scanned.apply_mutable(v, {.mutable_collections = "counter"}, jnp::zeros({2}), b, xs);
  EXPECT_DOUBLE_EQ(upd.at("counter").at("i").leaf().item<double>(), 12.0);
  EXPECT_TRUE(allclose(out.first, jnp::sum(xs, 0), 1e-6, 1e-6));
  EXPECT_EQ(out.second.shape(), Shape({6, 1}));
}

// test_scan_of_setup_parameter: a body with a setup-style submodule and its own param, scanned
// with no scanned argument (length given), params stacked on axis 0.
TEST(NnScan, SetupParameterWithLengthOnly) {
  struct Body : nn::Module<Body> {
    auto dense() const { return child("dense", nn::Dense{.features = 1}); }
    Array call(const Array& x) const {
      Array p = param("p", nn::initializers::ones_init(), {1});
      return dense()(x) + p;
    }
  };
  auto scanbody = nn::scan(
      Body{}, {.variable_axes = {{"params", 0}}, .split_rngs = {{"params", true}}, .length = 2});
  Array x = jnp::ones({1});
  Tree v = scanbody.init(rnd::key(0), x);
  EXPECT_EQ(v.at("params").at("p").leaf().shape(), Shape({2, 1}));
  EXPECT_EQ(v.at("params").at("dense").at("kernel").leaf().shape(), Shape({2, 1, 1}));
  // Two steps of dense(x) + p with each step's own slice.
  Array h = x;
  for (int i = 0; i < 2; ++i) {
    Tree step = {
        {"params", Tree{{"kernel", jnp::index(v.at("params").at("dense").at("kernel").leaf(), i)},
                        {"bias", jnp::index(v.at("params").at("dense").at("bias").leaf(), i)}}}};
    h = nn::Dense{.features = 1}.apply(step, h) + jnp::index(v.at("params").at("p").leaf(), i);
  }
  EXPECT_TRUE(allclose(scanbody.apply(v, x), h, 1e-6, 1e-6));
}

// ---- vmap ---------------------------------------------------------------------------------------

// The ensemble of transforms.py's vmap docstring: params mapped on axis 0 (one init key per
// member: key i of split(base, 5), count 1 as jax.vmap traces once), the input broadcast.
TEST(NnVmap, EnsembleShapesAndKeys) {
  struct Ens : nn::Module<Ens> {
    Array call(const Array& x) const {
      return child("ens", nn::vmap(nn::Dense{.features = 3}, {.variable_axes = {{"params", 0}},
                                                              .split_rngs = {{"params", true}},
                                                              .in_axes = nn::broadcast,
                                                              .axis_size = 5}))(x);
    }
  };
  Array x = wave({2, 4}, 0.2, DType::float32);
  auto [y, v] = Ens{}.init_with_output(rnd::key(4), x);
  EXPECT_EQ(v.at("params").at("ens").at("kernel").leaf().shape(), Shape({5, 4, 3}));
  EXPECT_EQ(v.at("params").at("ens").at("bias").leaf().shape(), Shape({5, 3}));
  EXPECT_EQ(y.shape(), Shape({5, 2, 3}));
  rnd::Key keys = rnd::split(rnd::key(4), 5);
  for (int i = 0; i < 5; ++i) {
    Array k = jnp::index(v.at("params").at("ens").at("kernel").leaf(), i);
    EXPECT_TRUE(allclose(k, kernel_for(rnd::fold_in(keys[i], kHashEns1), {4, 3}), 0, 0));
    Tree member = {
        {"params",
         Tree{{"kernel", k}, {"bias", jnp::index(v.at("params").at("ens").at("bias").leaf(), i)}}}};
    EXPECT_TRUE(allclose(jnp::index(y, i), nn::Dense{.features = 3}.apply(member, x), 1e-6, 1e-6));
  }
}

// test_vmap: params shared (axis None, rngs unsplit) keep the unlifted tree; the output equals
// a loop over the examples.
TEST(NnVmap, SharedParamsAsFlaxTestVmap) {
  struct MLP : nn::Module<MLP> {
    bool lifted = false;
    Array call(const Array& x) const {
      Array h = x;
      const std::int64_t feats[] = {3, 4, 5};
      for (int i = 0; i < 3; ++i) {
        const std::string name = "layers_" + std::to_string(i);
        nn::Dense d{.features = feats[i]};
        h = lifted ? child(name, nn::vmap(d, {.variable_axes = {{"params", std::nullopt}},
                                              .split_rngs = {{"params", false}},
                                              .in_axes = {0}}))(h)
                   : child(name, d)(h);
        if (i != 2) h = nn::relu(h);
      }
      return h;
    }
  };
  Array x = rnd::uniform(rnd::key(1), {4, 4});
  Array x2 = rnd::uniform(rnd::key(2), {5, 4, 4});
  Tree v = MLP{}.init(rnd::key(3), x);
  Tree v_lifted = MLP{.lifted = true}.init(rnd::key(3), x2);
  ASSERT_TRUE(loom::same_structure(v, v_lifted));
  for (const auto& [path, leaf] : loom::tree_leaves_with_path(v)) {
    EXPECT_TRUE(allclose(v_lifted.at_path(path).leaf(), leaf, 0, 0));  // same keys: count 1
  }
  std::vector<Array> rows;
  for (int i = 0; i < 5; ++i) rows.push_back(MLP{}.apply(v, jnp::index(x2, i)));
  EXPECT_TRUE(allclose(MLP{.lifted = true}.apply(v, x2), jnp::stack(rows, 0), 1e-6, 1e-6));
}

// ---- gradients ---------------------------------------------------------------------------------

TEST(NnScan, GradThroughScanMatchesFiniteDifferences) {
  auto stack =
      nn::scan(nn::Dense{.features = 3, .param_dtype = DType::float64},
               {.variable_axes = {{"params", 0}}, .split_rngs = {{"params", true}}, .length = 2});
  Array x = wave({2, 3}, 0.4);
  Tree v = stack.init(rnd::key(0), x);
  const Array bias = v.at("params").at("bias").leaf();
  auto loss = [&](const Array& kernel) {
    Tree p = {{"params", Tree{{"kernel", kernel}, {"bias", bias}}}};
    return jnp::sum(jnp::tanh(stack.apply(p, x)));
  };
  EXPECT_TRUE(loom::testing::grad_matches_fd(loss, v.at("params").at("kernel").leaf(), 1e-6));
  // Through the scanned input too (an LSTM over time, broadcast params).
  auto lstm = nn::scan(nn::LSTMCell{.features = 2, .param_dtype = DType::float64},
                       {.variable_broadcast = "params", .split_rngs = {{"params", false}}});
  Array xs = wave({3, 1, 2}, 0.7);
  nn::LSTMCell::Carry c0{jnp::zeros({1, 2}, DType::float64), jnp::zeros({1, 2}, DType::float64)};
  Tree lv = lstm.init(rnd::key(1), c0, xs);
  auto loss_x = [&](const Array& xin) { return jnp::sum(lstm.apply(lv, c0, xin).second); };
  EXPECT_TRUE(loom::testing::grad_matches_fd(loss_x, xs, 1e-6));
}

TEST(NnVmap, GradThroughVmapMatchesFiniteDifferences) {
  auto ens =
      nn::vmap(nn::Dense{.features = 2, .param_dtype = DType::float64},
               {.variable_axes = {{"params", 0}}, .split_rngs = {{"params", true}}, .in_axes = 0});
  Array x = wave({3, 2, 4}, 0.9);
  Tree v = ens.init(rnd::key(2), x);
  EXPECT_EQ(v.at("params").at("kernel").leaf().shape(), Shape({3, 4, 2}));
  const Array bias = v.at("params").at("bias").leaf();
  auto loss = [&](const Array& kernel) {
    Tree p = {{"params", Tree{{"kernel", kernel}, {"bias", bias}}}};
    return jnp::sum(jnp::square(ens.apply(p, x)));
  };
  EXPECT_TRUE(loom::testing::grad_matches_fd(loss, v.at("params").at("kernel").leaf(), 1e-6));
}

// ---- errors -------------------------------------------------------------------------------------

TEST(NnScan, Errors) {
  struct Body2 : nn::Module<Body2> {
    std::pair<Array, Array> call(const Array& c, const Array& a, const Array& b) const {
      return {c, a + b};
    }
  };
  Tree none = Tree::Dict{};
  // in_axes with the wrong number of entries.
  auto bad_axes = nn::scan(Body2{}, {.in_axes = {0}});
  EXPECT_TRUE(throws_error(
      [&] {
        bad_axes.apply(none, jnp::zeros({2}), jnp::zeros({3, 2}), jnp::zeros({3, 2}));
      },
      {"nn.scan", "in_axes has 1 entries", "2 scanned"}));
  // No scanned argument and no length: lift.scan's "length should be specified manually".
  auto no_len = nn::scan(Body2{}, {.in_axes = {nn::broadcast, nn::broadcast}});
  EXPECT_TRUE(
      throws_error([&] { no_len.apply(none, jnp::zeros({2}), jnp::zeros({2}), jnp::zeros({2})); },
                   {"length should be specified manually"}));
  // Scanned arguments of different lengths: "Inconsistent scan lengths".
  auto scanned = nn::scan(Body2{}, {});
  EXPECT_TRUE(throws_error(
      [&] {
        scanned.apply(none, jnp::zeros({2}), jnp::zeros({3, 2}), jnp::zeros({4, 2}));
      },
      {"Inconsistent scan lengths", "3", "4"}));
  // length disagreeing with the arguments.
  auto len5 = nn::scan(Body2{}, {.length = 5});
  EXPECT_TRUE(throws_error(
      [&] {
        len5.apply(none, jnp::zeros({2}), jnp::zeros({3, 2}), jnp::zeros({3, 2}));
      },
      {"length 5", "3"}));
  // Stacked variables whose axis size is not the scan length.
  Tree v = dense_stack(4, 3).init(rnd::key(0), jnp::ones({1, 4}));
  EXPECT_TRUE(throws_error(
      [&] {
        dense_stack(4, 2).apply(v, jnp::ones({1, 4}));
      },
      {"nn.scan", "params/bias", "3 entries on axis 0", "scan length is 2"}));
  // An axis out of range.
  auto far = nn::scan(Body2{}, {.in_axes = 3});
  EXPECT_TRUE(throws_error(
      [&] {
        far.apply(none, jnp::zeros({2}), jnp::zeros({3, 2}), jnp::zeros({3, 2}));
      },
      {"axis 3", "rank 2"}));
}

TEST(NnVmap, Errors) {
  auto ens = nn::vmap(nn::Dense{.features = 2},
                      {.variable_axes = {{"params", 0}}, .split_rngs = {{"params", true}}});
  Tree v = ens.init(rnd::key(0), jnp::ones({3, 1, 4}));
  // Inconsistent batch axis sizes: params mapped over 3, the input over 2.
  EXPECT_TRUE(throws_error(
      [&] {
        ens.apply(v, jnp::ones({2, 1, 4}));
      },
      {"Inconsistent batch axis sizes", "2", "3"}));
  auto no_size = nn::vmap(nn::Dense{.features = 2}, {.variable_axes = {{"params", 0}},
                                                     .split_rngs = {{"params", true}},
                                                     .in_axes = nn::broadcast});
  EXPECT_TRUE(throws_error(
      [&] {
        no_size.init(rnd::key(0), jnp::ones({1, 4}));
      },
      {"axis_size should be specified manually"}));
  auto two = nn::vmap(nn::Dense{.features = 2}, {.in_axes = {0, 0}});
  EXPECT_TRUE(throws_error(
      [&] {
        two.init(rnd::key(0), jnp::ones({2, 4}));
      },
      {"in_axes has 2 entries", "1 scanned/mapped"}));
}

}  // namespace
