// nn recurrent layers (flax/linen/recurrent.py): cell trees as Flax's (submodule names and
// shapes from recurrent.py's cells; RNN nests the cell under "cell" as in
// tests/linen/linen_recurrent_test.py's `variables['params']['cell']`), one step of each cell
// against NumPy (tests/data/recurrent_reference.py), RNN against a manual loop of its cell
// (as linen_recurrent_test.py's test_numerical_equivalence*, test_reverse*), flip_sequences
// (test_flip_sequence*), Bidirectional (BidirectionalTest), FD gradients, errors.
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

Tree dense_params(const Array& kernel, std::optional<Array> bias = std::nullopt) {
  Tree t = Tree::Dict{};
  t.set("kernel", kernel);
  if (bias) t.set("bias", *bias);
  return t;
}

std::vector<double> values(const Array& a) {
  return a.to_vector<double>();
}

constexpr std::int64_t B = 2, I = 3, H = 2;

}  // namespace

// ---- trees ---------------------------------------------------------------------------------

TEST(RecurrentTree, LSTMCellAsFlax) {
  nn::LSTMCell cell{.features = 4};
  Array x = jnp::ones({2, 3});
  auto carry = cell.initialize_carry(rnd::key(1), x.shape());
  EXPECT_EQ(carry.first.shape(), Shape({2, 4}));
  EXPECT_EQ(carry.second.dtype(), DType::float32);
  Tree v = cell.init(rnd::key(2), carry, x);
  std::string expected;
  for (const char* g : {"f", "g", "i", "o"}) {
    expected +=
        std::string("params/h") + g + "/bias: float32[4]\nparams/h" + g + "/kernel: float32[4,4]\n";
  }
  for (const char* g : {"f", "g", "i", "o"}) {
    expected += std::string("params/i") + g + "/kernel: float32[3,4]\n";
  }
  EXPECT_EQ(v.str(), expected);
  auto [new_carry, y] = cell.apply(v, carry, x);
  EXPECT_EQ(y.shape(), Shape({2, 4}));
  EXPECT_TRUE(allclose(y, new_carry.second, 0, 0));
}

TEST(RecurrentTree, OptimizedLSTMCellHasLSTMCellsParamsAndNumbers) {
  Array x = wave({2, 3}, 0.5, DType::float32);
  nn::LSTMCell a{.features = 4};
  nn::OptimizedLSTMCell b{.features = 4};
  auto carry = a.initialize_carry(rnd::key(1), x.shape());
  Tree va = a.init(rnd::key(2), carry, x), vb = b.init(rnd::key(2), carry, x);
  EXPECT_EQ(va.str(), vb.str());
  for (const auto& [path, leaf] : loom::tree_leaves_with_path(va)) {
    (void)leaf;
    EXPECT_TRUE(allclose(va.at_path(path).leaf(), vb.at_path(path).leaf(), 0, 0));
  }
  carry = {wave({2, 4}, 0.1, DType::float32), wave({2, 4}, 0.7, DType::float32)};
  auto [ca, ya] = a.apply(va, carry, x);
  auto [cb, yb] = b.apply(va, carry, x);
  EXPECT_TRUE(allclose(yb, ya, 1e-5, 1e-6));
  EXPECT_TRUE(allclose(cb.first, ca.first, 1e-5, 1e-6));
}

TEST(RecurrentTree, GRUMGUSimpleAsFlax) {
  Array x = jnp::ones({2, 3});
  Array h = jnp::zeros({2, 4});
  EXPECT_EQ(nn::GRUCell{.features = 4}.init(rnd::key(0), h, x).str(),
            "params/hn/bias: float32[4]\nparams/hn/kernel: float32[4,4]\n"
            "params/hr/kernel: float32[4,4]\nparams/hz/kernel: float32[4,4]\n"
            "params/in/bias: float32[4]\nparams/in/kernel: float32[3,4]\n"
            "params/ir/bias: float32[4]\nparams/ir/kernel: float32[3,4]\n"
            "params/iz/bias: float32[4]\nparams/iz/kernel: float32[3,4]\n");
  Tree mgu = nn::MGUCell{.features = 4}.init(rnd::key(0), h, x);
  EXPECT_EQ(mgu.str(),
            "params/hf/kernel: float32[4,4]\n"
            "params/hn/bias: float32[4]\nparams/hn/kernel: float32[4,4]\n"
            "params/if/bias: float32[4]\nparams/if/kernel: float32[3,4]\n"
            "params/in/bias: float32[4]\nparams/in/kernel: float32[3,4]\n");
  // forget_bias_init is ones, activation_bias_init zeros (MGUCell's defaults).
  EXPECT_EQ(values(mgu.at_path({"params", "if", "bias"}).leaf()), std::vector<double>(4, 1.0));
  EXPECT_EQ(values(mgu.at_path({"params", "in", "bias"}).leaf()), std::vector<double>(4, 0.0));
  EXPECT_EQ((nn::MGUCell{.features = 4, .reset_gate = false}.init(rnd::key(0), h, x).str()),
            "params/hf/kernel: float32[4,4]\nparams/hn/kernel: float32[4,4]\n"
            "params/if/bias: float32[4]\nparams/if/kernel: float32[3,4]\n"
            "params/in/bias: float32[4]\nparams/in/kernel: float32[3,4]\n");
  EXPECT_EQ(nn::SimpleCell{.features = 4}.init(rnd::key(0), h, x).str(),
            "params/h/kernel: float32[4,4]\n"
            "params/i/bias: float32[4]\nparams/i/kernel: float32[3,4]\n");
  EXPECT_EQ(nn::GRUCell{.features = 4}.initialize_carry(rnd::key(0), Shape{5, 2, 3}).shape(),
            Shape({5, 2, 4}));
}

TEST(RecurrentTree, RNNNestsTheCellUnderCell) {
  nn::RNN<nn::LSTMCell> rnn{.cell = {.features = 6}};
  Array xs = jnp::ones({3, 4, 5});  // linen_recurrent_test.py's test_rnn_basic_forward sizes
  auto [ys, v] = rnn.init_with_output(rnd::key(0), xs);
  EXPECT_EQ(ys.outputs.shape(), Shape({3, 4, 6}));
  EXPECT_FALSE(ys.carry.has_value());
  const Tree& cell = v.at_path({"params", "cell"});
  EXPECT_EQ(cell.size(), 8u);
  for (const auto& [name, p] : cell.dict()) {
    const bool recurrent = name[0] == 'h';
    EXPECT_EQ(p.contains("bias"), recurrent) << name;
    EXPECT_EQ(p.at("kernel").leaf().shape(), (Shape{recurrent ? 6 : 5, 6})) << name;
  }
}

TEST(RecurrentTree, BidirectionalNamesAsFlax) {
  using R = nn::RNN<nn::GRUCell>;
  nn::Bidirectional<R, R> bi{.forward_rnn = {.cell = {.features = 6}},
                             .backward_rnn = {.cell = {.features = 6}}};
  Array xs = jnp::ones({3, 4, 5});
  auto [ys, v] = bi.init_with_output(rnd::key(0), xs);
  EXPECT_EQ(ys.outputs.shape(), Shape({3, 4, 12}));
  EXPECT_EQ(v.at("params").size(), 2u);
  EXPECT_EQ(v.at_path({"params", "forward_rnn", "cell", "ir", "kernel"}).leaf().shape(),
            Shape({5, 6}));
  EXPECT_EQ(v.at_path({"params", "backward_rnn", "cell", "hn", "bias"}).leaf().shape(), Shape({6}));
}

// ---- one step against NumPy (tests/data/recurrent_reference.py) ----------------------------

TEST(RecurrentStep, LSTMCellMatchesNumPy) {
  Tree p = Tree::Dict{};
  const char* in[] = {"ii", "if", "ig", "io"};
  const char* hh[] = {"hi", "hf", "hg", "ho"};
  for (int k = 0; k < 4; ++k) {
    p.set(in[k], dense_params(wave({I, H}, 1.0 + k)));
    p.set(hh[k], dense_params(wave({H, H}, 2.0 + k), wave({H}, 3.0 + k)));
  }
  Tree v{{"params", p}};
  nn::LSTMCell::Carry carry{wave({B, H}, 0.2), wave({B, H}, 0.3)};
  Array x = wave({B, I}, 0.1);
  const std::vector<double> c2 = {-0.7793186966629797, -0.594039855381469, -0.6220494759464755,
                                  -0.7912645023492675};
  const std::vector<double> h2 = {-0.08140076755906482, -0.13523182516275262, -0.010009838326637805,
                                  -0.03249875658811039};
  for (bool optimized : {false, true}) {
    auto [nc, y] =
        optimized
            ? nn::OptimizedLSTMCell{.features = H, .param_dtype = DType::float64}.apply(v, carry, x)
            : nn::LSTMCell{.features = H, .param_dtype = DType::float64}.apply(v, carry, x);
    EXPECT_EQ(y.dtype(), DType::float64);
    EXPECT_TRUE(allclose(nc.first, loom::testing::f64(c2, {B, H}), 1e-12, 1e-14));
    EXPECT_TRUE(allclose(nc.second, loom::testing::f64(h2, {B, H}), 1e-12, 1e-14));
    EXPECT_TRUE(allclose(y, nc.second, 0, 0));
  }
}

TEST(RecurrentStep, GRUMGUSimpleMatchNumPy) {
  Array x = wave({B, I}, 0.1), h = wave({B, H}, 0.3);
  auto gru_params = [&] {
    Tree p = Tree::Dict{};
    const char* in[] = {"ir", "iz", "in"};
    const char* hh[] = {"hr", "hz", "hn"};
    for (int k = 0; k < 3; ++k) {
      p.set(in[k], dense_params(wave({I, H}, 1.0 + k), wave({H}, 3.0 + k)));
      p.set(hh[k], dense_params(wave({H, H}, 2.0 + k)));
    }
    p.at("hn").set("bias", wave({H}, 4.5));
    return p;
  };
  Tree gp = gru_params();
  auto [g, gy] = nn::GRUCell{.features = H}.apply(Tree{{"params", gp}}, h, x);
  EXPECT_TRUE(allclose(g,
                       loom::testing::f64({-0.661266896315354, -0.7897630540530883,
                                           -0.1881636654622476, -0.7348241806206623},
                                          {B, H}),
                       1e-12, 1e-14));
  EXPECT_TRUE(allclose(gy, g, 0, 0));
  // MGU: if = GRU's ir, hf = hr, in and hn as the GRU's.
  Tree mp = Tree::Dict{};
  mp.set("if", gp.at("ir"));
  mp.set("hf", gp.at("hr"));
  mp.set("in", gp.at("in"));
  mp.set("hn", gp.at("hn"));
  auto [m, my] = nn::MGUCell{.features = H}.apply(Tree{{"params", mp}}, h, x);
  (void)my;
  EXPECT_TRUE(allclose(m,
                       loom::testing::f64({0.08545548734153177, 0.08425070242135535,
                                           0.8154498719902344, 0.8289676410522093},
                                          {B, H}),
                       1e-12, 1e-14));
  Tree sp = Tree::Dict{};
  sp.set("i", gp.at("ir"));
  sp.set("h", gp.at("hr"));
  auto [s, sy] = nn::SimpleCell{.features = H, .residual = true}.apply(Tree{{"params", sp}}, h, x);
  (void)sy;
  EXPECT_TRUE(allclose(
      s,
      loom::testing::f64(
          {0.9592160176657157, 0.8669728920028343, 0.9997615782454475, 0.9979257949044643}, {B, H}),
      1e-12, 1e-14));
}

// ---- RNN over time against a manual loop of the cell ---------------------------------------

namespace {

struct Manual {
  std::vector<nn::LSTMCell::Carry> carries;
  std::vector<Array> ys;
};
// Runs the cell over xs[:, t] for t in `order` from the zero carry of key(0).
Manual manual_loop(const nn::LSTMCell& cell, const Tree& cell_params, const Array& xs,
                   const std::vector<std::int64_t>& order) {
  Manual m;
  auto carry = cell.initialize_carry(rnd::key(0), Shape{xs.shape()[0], xs.shape()[2]});
  for (std::int64_t t : order) {
    auto [c, y] = cell.apply(Tree{{"params", cell_params}}, carry, jnp::index(xs, t, 1));
    carry = c;
    m.carries.push_back(c);
    m.ys.push_back(y);
  }
  return m;
}

}  // namespace

TEST(RNN, MatchesAManualLoopAndTimeMajor) {
  nn::RNN<nn::LSTMCell> rnn{.cell = {.features = 3}, .return_carry = true};
  Array xs = wave({2, 5, 4}, 0.3, DType::float32);
  Tree v = rnn.init(rnd::key(0), xs);
  auto [carry, ys] = rnn.apply(v, xs);
  Manual m = manual_loop(rnn.cell, v.at_path({"params", "cell"}), xs, {0, 1, 2, 3, 4});
  EXPECT_TRUE(allclose(ys, jnp::stack(m.ys, 1), 1e-6, 1e-7));
  ASSERT_TRUE(carry.has_value());
  EXPECT_TRUE(allclose(carry->first, m.carries.back().first, 1e-6, 1e-7));
  EXPECT_TRUE(allclose(carry->second, m.carries.back().second, 1e-6, 1e-7));
  // time_major: (time, batch, features) in and out.
  Array tm = rnn.apply(v, jnp::swapaxes(xs, 0, 1), nn::RNNOptions{.time_major = true});
  EXPECT_TRUE(allclose(tm, jnp::swapaxes(ys, 0, 1), 1e-6, 1e-7));
  // Unbatched (time, features) inputs.
  Array one = rnn.apply(v, jnp::index(xs, 0, 0));
  EXPECT_TRUE(allclose(one, jnp::index(ys, 0, 0), 1e-6, 1e-7));
}

TEST(RNN, ReverseAndKeepOrder) {
  nn::RNN<nn::LSTMCell> rnn{.cell = {.features = 3}, .reverse = true};
  Array xs = wave({2, 5, 4}, 0.9, DType::float32);
  Tree v = rnn.init(rnd::key(0), xs);
  Manual m = manual_loop(rnn.cell, v.at_path({"params", "cell"}), xs, {4, 3, 2, 1, 0});
  Array rev = rnn.apply(v, xs);  // processed right to left, returned in that order
  EXPECT_TRUE(allclose(rev, jnp::stack(m.ys, 1), 1e-6, 1e-7));
  Array kept = rnn.apply(v, xs, nn::RNNOptions{.keep_order = true});
  std::vector<Array> back(m.ys.rbegin(), m.ys.rend());
  EXPECT_TRUE(allclose(kept, jnp::stack(back, 1), 1e-6, 1e-7));
}

TEST(RNN, SeqLengthsFreezeTheCarryAndKeepPaddingAtTheEnd) {
  nn::RNN<nn::LSTMCell> rnn{.cell = {.features = 3}, .return_carry = true};
  Array xs = wave({2, 5, 4}, 0.4, DType::float32);
  Array lengths = Array(std::vector<double>{3, 5}, Shape{2}, DType::int32);
  Tree v = rnn.init(rnd::key(0), xs, nn::RNNOptions{.seq_lengths = lengths});
  const Tree& cp = v.at_path({"params", "cell"});
  auto [carry, ys] = rnn.apply(v, xs, nn::RNNOptions{.seq_lengths = lengths});
  Manual m = manual_loop(rnn.cell, cp, xs, {0, 1, 2, 3, 4});
  // Outputs are not masked (Flax: "The output elements corresponding to padding elements are
  // NOT zeroed out"); the carry is each sequence's after its last valid step.
  EXPECT_TRUE(allclose(ys, jnp::stack(m.ys, 1), 1e-6, 1e-7));
  EXPECT_TRUE(
      allclose(jnp::index(carry->second, 0, 0), jnp::index(m.carries[2].second, 0, 0), 1e-6, 1e-7));
  EXPECT_TRUE(
      allclose(jnp::index(carry->first, 1, 0), jnp::index(m.carries[4].first, 1, 0), 1e-6, 1e-7));
  // Reversed: sequence 0 runs over steps 2, 1, 0 first, its padding stays at the end.
  auto [rc, rys] = rnn.apply(v, xs, nn::RNNOptions{.seq_lengths = lengths, .reverse = true});
  Manual r0 = manual_loop(rnn.cell, cp, xs, {2, 1, 0});
  for (int t = 0; t < 3; ++t) {
    EXPECT_TRUE(
        allclose(jnp::index(jnp::index(rys, 0, 0), t, 0), jnp::index(r0.ys[t], 0, 0), 1e-6, 1e-7));
  }
  EXPECT_TRUE(
      allclose(jnp::index(rc->second, 0, 0), jnp::index(r0.carries[2].second, 0, 0), 1e-6, 1e-7));
}

TEST(RNN, InitialCarryAndInitKey) {
  nn::RNN<nn::GRUCell> rnn{.cell = {.features = 3}};
  Array xs = wave({2, 4, 3}, 0.2, DType::float32);
  Tree v = rnn.init(rnd::key(0), xs);
  Array h0 = wave({2, 3}, 1.3, DType::float32);
  Array ys = rnn.apply(v, xs, h0);
  Array h = h0;
  std::vector<Array> manual;
  for (int t = 0; t < 4; ++t) {
    auto [nh, y] = nn::GRUCell{.features = 3}.apply(Tree{{"params", v.at_path({"params", "cell"})}},
                                                    h, jnp::index(xs, t, 1));
    h = nh;
    manual.push_back(y);
  }
  EXPECT_TRUE(allclose(ys, jnp::stack(manual, 1), 1e-6, 1e-7));
  // A random carry_init makes init_key matter; the default key is key(0).
  nn::RNN<nn::GRUCell> noisy{.cell = {.features = 3, .carry_init = nn::initializers::normal(1.0)}};
  Array a = noisy.apply(v, xs), b = noisy.apply(v, xs, nn::RNNOptions{.init_key = rnd::key(0)});
  Array c = noisy.apply(v, xs, nn::RNNOptions{.init_key = rnd::key(7)});
  EXPECT_TRUE(allclose(a, b, 0, 0));
  EXPECT_FALSE(allclose(a, c, 1e-3, 1e-3));
}

TEST(RNN, FlipSequencesAsFlaxTests) {
  // linen_recurrent_test.py test_flip_sequence / _time_major: x = arange(10), lengths [4, 2].
  Array lengths = Array(std::vector<double>{4, 2}, Shape{2}, DType::int32);
  Array x = jnp::reshape(jnp::arange(10.0), {2, 5});
  EXPECT_EQ(values(nn::flip_sequences(x, lengths, 1, false)),
            std::vector<double>({3, 2, 1, 0, 4, 6, 5, 9, 8, 7}));
  Array xt = jnp::reshape(jnp::arange(10.0), {5, 2});  // column b is sequence b
  Array ft = nn::flip_sequences(xt, lengths, 1, true);
  EXPECT_EQ(values(jnp::index(ft, 0, 1)), std::vector<double>({6, 4, 2, 0, 8}));
  EXPECT_EQ(values(jnp::index(ft, 1, 1)), std::vector<double>({3, 1, 9, 7, 5}));
  // More feature dims: rows of x[0, :4] reversed.
  Array x3 = jnp::reshape(jnp::arange(30.0), {2, 5, 3});
  Array f3 = nn::flip_sequences(x3, lengths, 1, false);
  EXPECT_EQ(values(jnp::index(jnp::index(f3, 0, 0), 0, 0)), std::vector<double>({9, 10, 11}));
  EXPECT_EQ(values(nn::flip_sequences(x, std::nullopt, 1, false)),
            std::vector<double>({4, 3, 2, 1, 0, 9, 8, 7, 6, 5}));
}

TEST(Bidirectional, ConcatenatesForwardAndReorderedBackward) {
  using R = nn::RNN<nn::LSTMCell>;
  nn::Bidirectional<R, R> bi{.forward_rnn = {.cell = {.features = 3}},
                             .backward_rnn = {.cell = {.features = 3}},
                             .return_carry = true};
  Array xs = wave({2, 4, 5}, 0.6, DType::float32);
  Tree v = bi.init(rnd::key(0), xs);
  auto [carry, ys] = bi.apply(v, xs);
  EXPECT_EQ(ys.shape(), Shape({2, 4, 6}));
  Manual f = manual_loop(nn::LSTMCell{.features = 3}, v.at_path({"params", "forward_rnn", "cell"}),
                         xs, {0, 1, 2, 3});
  Manual b = manual_loop(nn::LSTMCell{.features = 3}, v.at_path({"params", "backward_rnn", "cell"}),
                         xs, {3, 2, 1, 0});
  std::vector<Array> bys(b.ys.rbegin(), b.ys.rend());
  EXPECT_TRUE(
      allclose(ys, jnp::concatenate({jnp::stack(f.ys, 1), jnp::stack(bys, 1)}, -1), 1e-6, 1e-7));
  ASSERT_TRUE(carry.has_value());
  EXPECT_TRUE(allclose(carry->first.second, f.carries.back().second, 1e-6, 1e-7));
  EXPECT_TRUE(allclose(carry->second.second, b.carries.back().second, 1e-6, 1e-7));
  // linen_recurrent_test.py test_custom_merge_fn: x + y keeps the features.
  auto sum = bi;
  sum.merge_fn = [](const Array& a, const Array& c) { return a + c; };
  sum.return_carry = false;
  Array s = sum.apply(v, xs);
  EXPECT_EQ(s.shape(), Shape({2, 4, 3}));
}

// ---- gradients (float64, finite differences) -----------------------------------------------

TEST(RecurrentGrad, ThroughRNNInputsAndParams) {
  nn::RNN<nn::LSTMCell> lstm{.cell = {.features = 2, .param_dtype = DType::float64},
                             .return_carry = true,
                             .reverse = true};
  Array xs = wave({2, 3, 2}, 0.5);
  Array lengths = Array(std::vector<double>{2, 3}, Shape{2}, DType::int32);
  Tree v = lstm.init(rnd::key(0), xs);
  auto f = [&](const Array& x) {
    auto [c, ys] = lstm.apply(v, x, nn::RNNOptions{.seq_lengths = lengths});
    return jnp::sum(ys * ys) + jnp::sum(c->first * 1.5);
  };
  EXPECT_TRUE(loom::testing::grad_matches_fd(f, xs));

  nn::RNN<nn::GRUCell> gru{.cell = {.features = 2, .param_dtype = DType::float64}};
  Tree g = gru.init(rnd::key(1), xs);
  auto by_kernel = [&](const Array& k) {
    Tree w = g;
    w.at("params").at("cell").at("hn").set("kernel", k);
    return jnp::sum(jnp::tanh(gru.apply(w, xs).outputs));
  };
  EXPECT_TRUE(loom::testing::grad_matches_fd(by_kernel,
                                             g.at_path({"params", "cell", "hn", "kernel"}).leaf()));

  nn::RNN<nn::OptimizedLSTMCell> opt{.cell = {.features = 2, .param_dtype = DType::float64}};
  Tree o = opt.init(rnd::key(2), xs);
  EXPECT_TRUE(loom::testing::grad_matches_fd(
      [&](const Array& x) { return jnp::sum(opt.apply(o, x).outputs); }, xs));
}

// ---- errors ------------------------------------------------------------------------------------

TEST(RecurrentErrors, ShapesAndRanks) {
  nn::RNN<nn::LSTMCell> rnn{.cell = {.features = 3}};
  Array xs = jnp::ones({2, 4, 5});
  Tree v = rnn.init(rnd::key(0), xs);
  // Input feature size against the stored params.
  EXPECT_TRUE(throws_error(
      [&] {
        rnn.apply(v, jnp::ones({2, 4, 6}));
      },
      {"ScopeParamShapeError", "/cell/ii", "(5, 3)", "(6, 3)"}));
  EXPECT_TRUE(throws_error([&] { rnn.apply(v, jnp::ones({5})); }, {"RNN", "time axis", "(5,)"}));
  EXPECT_TRUE(throws_error([&] { rnn.apply(v, jnp::ones({2, 0, 5})); }, {"RNN", "empty"}));
  EXPECT_TRUE(throws_error(
      [&] {
        rnn.apply(v, xs,
                  nn::RNNOptions{.seq_lengths =
                                     Array(std::vector<double>{1, 2, 3}, Shape{3}, DType::int32)});
      },
      {"seq_lengths", "batch shape (2,)", "int32 of shape (3,)"}));
  EXPECT_TRUE(throws_error([&] { rnn.apply(v, xs, nn::RNNOptions{.seq_lengths = jnp::ones({2})}); },
                           {"seq_lengths", "integer", "float32"}));
  nn::LSTMCell cell{.features = 3};
  Tree cv = v.at("params").at("cell");
  Tree cvars{{"params", cv}};
  EXPECT_TRUE(throws_error(
      [&] {
        cell.apply(cvars, nn::LSTMCell::Carry{jnp::zeros({2, 3}), jnp::zeros({2, 4})},
                   jnp::ones({2, 5}));
      },
      {"LSTMCell", "c", "(2, 3)", "(2, 4)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        cell.apply(cvars, nn::LSTMCell::Carry{jnp::zeros({3, 3}), jnp::zeros({3, 3})},
                   jnp::ones({2, 5}));
      },
      {"LSTMCell", "batch", "(2, 5)", "(3, 3)"}));
  EXPECT_TRUE(throws_error(
      [&] {
        nn::GRUCell{}.initialize_carry(rnd::key(0), Shape{2, 3});
      },
      {"GRUCell", "features must be positive"}));
  EXPECT_TRUE(
      throws_error([&] { nn::SimpleCell{.features = 2}.initialize_carry(rnd::key(0), Shape{}); },
                   {"SimpleCell", "input_shape"}));
}

// ---- RNN inside a model, class template argument deduction ---------------------------------

namespace {
struct Encoder : nn::Module<Encoder> {
  Array call(const Array& x) const {
    Array h = nn::RNN{.cell = nn::GRUCell{.features = 3}}(x);  // "RNN_0", Flax's class name
    auto bi = nn::Bidirectional{.forward_rnn = nn::RNN{.cell = nn::SimpleCell{.features = 2}},
                                .backward_rnn = nn::RNN{.cell = nn::SimpleCell{.features = 2}}};
    return bi(h);  // "Bidirectional_0"
  }
};
}  // namespace

TEST(RecurrentTree, AutoNamesInsideAModel) {
  Tree v = Encoder{}.init(rnd::key(0), jnp::ones({2, 4, 5}));
  EXPECT_EQ(v.str(),
            "params/Bidirectional_0/backward_rnn/cell/h/kernel: float32[2,2]\n"
            "params/Bidirectional_0/backward_rnn/cell/i/bias: float32[2]\n"
            "params/Bidirectional_0/backward_rnn/cell/i/kernel: float32[3,2]\n"
            "params/Bidirectional_0/forward_rnn/cell/h/kernel: float32[2,2]\n"
            "params/Bidirectional_0/forward_rnn/cell/i/bias: float32[2]\n"
            "params/Bidirectional_0/forward_rnn/cell/i/kernel: float32[3,2]\n"
            "params/RNN_0/cell/hn/bias: float32[3]\nparams/RNN_0/cell/hn/kernel: float32[3,3]\n"
            "params/RNN_0/cell/hr/kernel: float32[3,3]\nparams/RNN_0/cell/hz/kernel: float32[3,3]\n"
            "params/RNN_0/cell/in/bias: float32[3]\nparams/RNN_0/cell/in/kernel: float32[5,3]\n"
            "params/RNN_0/cell/ir/bias: float32[3]\nparams/RNN_0/cell/ir/kernel: float32[5,3]\n"
            "params/RNN_0/cell/iz/bias: float32[3]\nparams/RNN_0/cell/iz/kernel: float32[5,3]\n");
  EXPECT_EQ(Encoder{}.apply(v, jnp::ones({2, 4, 5})).shape(), Shape({2, 4, 4}));
}

TEST(RecurrentGrad, CellsAndBidirectional) {
  Array x = wave({2, 3}, 0.2), h = wave({2, 2}, 0.8);
  nn::MGUCell mgu{.features = 2, .param_dtype = DType::float64};
  Tree vm = mgu.init(rnd::key(3), h, x);
  EXPECT_TRUE(loom::testing::grad_matches_fd(
      [&](const Array& hh) { return jnp::sum(mgu.apply(vm, hh, x).second); }, h));
  nn::SimpleCell simple{.features = 2, .param_dtype = DType::float64, .residual = true};
  Tree vs = simple.init(rnd::key(4), h, x);
  EXPECT_TRUE(loom::testing::grad_matches_fd(
      [&](const Array& xx) { return jnp::sum(simple.apply(vs, h, xx).first); }, x));
  using R = nn::RNN<nn::GRUCell>;
  nn::Bidirectional<R, R> bi{
      .forward_rnn = {.cell = {.features = 2, .param_dtype = DType::float64}},
      .backward_rnn = {.cell = {.features = 2, .param_dtype = DType::float64}}};
  Array xs = wave({1, 3, 2}, 0.1);
  Tree vb = bi.init(rnd::key(5), xs);
  Array lengths = Array(std::vector<double>{2}, Shape{1}, DType::int32);
  EXPECT_TRUE(loom::testing::grad_matches_fd(
      [&](const Array& xx) {
        Array y = bi.apply(vb, xx, nn::RNNOptions{.seq_lengths = lengths});
        return jnp::sum(y * y);
      },
      xs));
}

TEST(RecurrentErrors, CellRank) {
  nn::GRUCell cell{.features = 2};
  EXPECT_TRUE(throws_error([&] { cell.init(rnd::key(0), jnp::zeros({2}), Array::scalar(1.0f)); },
                           {"GRUCell", "rank >= 1", "inputs ()"}));
}
