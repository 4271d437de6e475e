// loom::nn modules: naming, templates vs instances, setup style, merge_param, Dropout, errors,
// apply options, sow/perturb, Sequential, tabulate. Expected variables trees are written down
// from Flax's naming rules (flax/linen/module.py: `<ClassName>_<k>` per class per parent in
// construction order; explicit and setup names as given; Sequential's `layers_<i>`).
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <string>

#include "loom/loom.hpp"
#include "loom/nn.hpp"
#include "loom/random.hpp"
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

namespace {

// The tree's paths with shapes, one per line (Tree::str()).
std::string layout(const Tree& t) {
  return t.str();
}

// ---- the design note's ResidualModel: a Dropout template passed to ten blocks ----
struct ResidualBlock : nn::Module<ResidualBlock> {
  nn::Dropout dropout;  // a template: the block never hears of train vs eval
  std::int64_t features = 4;
  Array call(const Array& x) const {
    return dropout(jnp::tanh(nn::Dense{.features = features}(x)));
  }
};

struct ResidualModel : nn::Module<ResidualModel> {
  double drop_rate = 0.5;
  Array call(Array x, bool train) const {
    auto dropout = nn::Dropout{.rate = drop_rate, .deterministic = !train};
    for (int i = 0; i < 10; ++i) x = x + ResidualBlock{.dropout = dropout}(x);
    return x;
  }
};

// ---- setup style: named submodules shared by every call ----
struct SomeModule : nn::Module<SomeModule> {
  double drop_rate = 0.5;
  auto dense() const { return child("dense", nn::Dense{.features = 3}); }
  auto dropout() const { return child("dropout", nn::Dropout{.rate = drop_rate}); }
  Array call(const Array& x, bool train) const {
    Array h = dropout()(dense()(x), /*deterministic=*/!train);
    return dense()(h);  // the same "dense": its kernel is shared
  }
};

// ---- compact style: an instance called twice vs a template called twice ----
struct InstanceTwice : nn::Module<InstanceTwice> {
  Array call(const Array& x) const {
    auto d = child(nn::Dense{.features = 3});
    return d(d(x));
  }
};
struct TemplateTwice : nn::Module<TemplateTwice> {
  Array call(const Array& x) const {
    auto d = nn::Dense{.features = 3};
    return d(d(x));
  }
};

Array ones13() {
  return jnp::ones({1, 3});
}
Array ones14() {
  return jnp::ones({1, 4});
}

}  // namespace

TEST(Naming, TypeNamesComeFromTheType) {
  EXPECT_EQ(nn::detail::type_name<nn::Dense>(), "Dense");
  EXPECT_EQ(nn::detail::type_name<ResidualBlock>(), "ResidualBlock");
  EXPECT_EQ(nn::detail::parse_type_name("f() [with T = a::b::Block<float, 2>; X = int]"), "Block");
  EXPECT_EQ(nn::detail::parse_type_name("f() [T = (anonymous namespace)::Net]"), "Net");
  EXPECT_EQ(nn::detail::parse_type_name("f() [with T = Foo_Test::TestBody()::Local]"), "Local");
}

TEST(Naming, TemplatePassedToTenBlocksGivesFlaxTree) {
  // Flax: ResidualBlock_0 .. ResidualBlock_9, each with Dense_0; Dropout has no params.
  ResidualModel model{.drop_rate = 0.5};
  Tree variables = model.init(rnd::key(0), ones14(), false);
  std::string expected;
  for (int i = 0; i < 10; ++i) {
    const std::string p = "params/ResidualBlock_" + std::to_string(i) + "/Dense_0/";
    expected += p + "bias: float32[4]\n" + p + "kernel: float32[4,4]\n";
  }
  // Tree keys sort as strings, as jax.tree_util sorts dict keys.
  EXPECT_EQ(layout(variables), expected);
}

TEST(Naming, SetupStyleAndInstancesShareTemplatesDoNot) {
  EXPECT_EQ(layout(SomeModule{}.init(rnd::key(0), ones13(), false)),
            "params/dense/bias: float32[3]\nparams/dense/kernel: float32[3,3]\n");
  EXPECT_EQ(layout(InstanceTwice{}.init(rnd::key(0), ones13())),
            "params/Dense_0/bias: float32[3]\nparams/Dense_0/kernel: float32[3,3]\n");
  EXPECT_EQ(layout(TemplateTwice{}.init(rnd::key(0), ones13())),
            "params/Dense_0/bias: float32[3]\nparams/Dense_0/kernel: float32[3,3]\n"
            "params/Dense_1/bias: float32[3]\nparams/Dense_1/kernel: float32[3,3]\n");
}

TEST(Naming, CountersArePerTypeAndExplicitNamesWin) {
  struct Mixed : nn::Module<Mixed> {
    Array call(const Array& x) const {
      Array h = nn::Dense{.features = 2}(x);                      // Dense_0
      h = nn::Dropout{.rate = 0.1}(h, true);                      // Dropout_0
      h = child("head", nn::Dense{.features = 2})(h);             // head
      h = nn::Dense{.features = 2}(h);                            // Dense_1
      return nn::Dropout{.rate = 0.1, .deterministic = true}(h);  // Dropout_1
    }
  };
  const std::string table = nn::tabulate(Mixed{}, rnd::key(0), ones13());
  for (const char* p :
       {"\n Dense_0 ", "\n Dropout_0 ", "\n head ", "\n Dense_1 ", "\n Dropout_1 "}) {
    EXPECT_NE(table.find(p), std::string::npos) << p << " missing from\n" << table;
  }
  EXPECT_EQ(layout(Mixed{}.init(rnd::key(0), ones13())),
            "params/Dense_0/bias: float32[2]\nparams/Dense_0/kernel: float32[3,2]\n"
            "params/Dense_1/bias: float32[2]\nparams/Dense_1/kernel: float32[2,2]\n"
            "params/head/bias: float32[2]\nparams/head/kernel: float32[2,2]\n");
}

TEST(Sharing, InstanceCalledTwiceSharesItsVariables) {
  InstanceTwice model;
  Tree v = model.init(rnd::key(0), ones13());
  Array k = v.at("params").at("Dense_0").at("kernel").leaf();
  Array b = v.at("params").at("Dense_0").at("bias").leaf();
  Array once = jnp::matmul(ones13(), k) + b;
  Array expected = jnp::matmul(once, k) + b;
  EXPECT_TRUE(allclose(model.apply(v, ones13()), expected, 1e-6, 1e-6));
  // Setup style: the same "dense" twice.
  SomeModule some;
  Tree sv = some.init(rnd::key(0), ones13(), false);
  Array sk = sv.at("params").at("dense").at("kernel").leaf();
  Array sb = sv.at("params").at("dense").at("bias").leaf();
  Array s1 = jnp::matmul(ones13(), sk) + sb;
  EXPECT_TRUE(allclose(some.apply(sv, ones13(), false), jnp::matmul(s1, sk) + sb, 1e-6, 1e-6));
}

TEST(Dropout, EvalIsDeterministicAndEqualsNoDropout) {
  ResidualModel model{.drop_rate = 0.5};
  Tree v = model.init(rnd::key(0), ones14(), false);
  ResidualModel no_drop{.drop_rate = 0.0};
  Array eval = model.apply(v, ones14(), false);
  EXPECT_TRUE(allclose(eval, model.apply(v, ones14(), false), 0, 0));
  EXPECT_TRUE(allclose(eval, no_drop.apply(v, ones14(), true), 0, 0));  // rate 0: identity
}

TEST(Dropout, TrainNeedsAnRngAndIsReproducible) {
  ResidualModel model{.drop_rate = 0.5};
  Tree v = model.init(rnd::key(0), ones14(), false);
  EXPECT_TRUE(throws_error([&] { model.apply(v, ones14(), true); },
                           {"InvalidRngError", "Dropout_0 needs PRNG for \"dropout\"",
                            "(module \"/ResidualBlock_0/Dropout_0\")"}));
  Array a = model.apply(v, {.rngs = {{"dropout", rnd::key(1)}}}, ones14(), true);
  Array b = model.apply(v, {.rngs = {{"dropout", rnd::key(1)}}}, ones14(), true);
  Array c = model.apply(v, {.rngs = {{"dropout", rnd::key(2)}}}, ones14(), true);
  Array eval = model.apply(v, ones14(), false);
  EXPECT_TRUE(allclose(a, b, 0, 0));
  EXPECT_FALSE(allclose(a, eval, 1e-3, 1e-3));
  EXPECT_FALSE(allclose(a, c, 1e-3, 1e-3));
}

TEST(Dropout, MaskScalingAndBroadcastDims) {
  struct Drop : nn::Module<Drop> {
    nn::Dropout d;
    Array call(const Array& x) const { return d(x); }
  };
  Array x = jnp::ones({4, 64});
  Drop m{.d = {.rate = 0.25, .broadcast_dims = {0}, .deterministic = false}};
  Array y = m.apply(Tree{}, {.rngs = {{"dropout", rnd::key(3)}}}, x);
  auto vals = y.to_vector<float>();
  int kept = 0;
  for (int j = 0; j < 64; ++j) {
    const float v = vals[j];
    EXPECT_TRUE(v == 0.f || std::abs(v - 1.f / 0.75f) < 1e-6f) << v;
    kept += v != 0.f;
    for (int i = 1; i < 4; ++i) EXPECT_EQ(vals[i * 64 + j], v);  // one mask value per column
  }
  EXPECT_GT(kept, 30);
  EXPECT_LT(kept, 64);
  // rate 1: zeros; an explicit rng replaces make_rng (no "dropout" stream needed).
  Drop all{.d = {.rate = 1.0, .deterministic = false}};
  EXPECT_TRUE(allclose(all.apply(Tree{}, x), jnp::zeros({4, 64}), 0, 0));
  struct Explicit : nn::Module<Explicit> {
    Array call(const Array& x, const rnd::Key& k) const {
      return nn::Dropout{.rate = 0.5}(x, false, k);
    }
  };
  Array e1 = Explicit{}.apply(Tree{}, x, rnd::key(5));
  Array e2 = Explicit{}.apply(Tree{}, x, rnd::key(5));
  EXPECT_TRUE(allclose(e1, e2, 0, 0));
  EXPECT_TRUE(throws_error(
      [&] {
        Drop bad{.d = {.rate = 0.5, .broadcast_dims = {2}, .deterministic = false}};
        bad.apply(Tree{}, {.rngs = {{"dropout", rnd::key(0)}}}, x);
      },
      {"broadcast_dims", "(4, 64)", "/Dropout_0"}));
}

TEST(MergeParam, ReturnsWhicheverIsSetAndNamesTheModule) {
  EXPECT_TRUE(nn::merge_param<bool>("deterministic", true, std::nullopt));
  EXPECT_FALSE(nn::merge_param<bool>("deterministic", std::nullopt, false));
  EXPECT_TRUE(
      throws_error([] { nn::merge_param<bool>("deterministic", std::nullopt, std::nullopt); },
                   {"Parameter \"deterministic\" must be passed to the constructor or at "
                    "call time."}));
  EXPECT_TRUE(throws_error([] { nn::merge_param<bool>("deterministic", true, false); },
                           {"Parameter \"deterministic\" was passed to the constructor and at "
                            "call time. Should be passed just once."}));
  // Inside a module, the message ends with its path.
  struct Both : nn::Module<Both> {
    Array call(const Array& x) const {
      return child("drop", nn::Dropout{.rate = 0.1, .deterministic = true})(x, true);
    }
  };
  EXPECT_TRUE(
      throws_error([] { Both{}.init(rnd::key(0), ones13()); },
                   {"was passed to the constructor and at call time", "(module \"/drop\")"}));
  struct Neither : nn::Module<Neither> {
    Array call(const Array& x) const { return nn::Dropout{.rate = 0.0}(x); }
  };
  EXPECT_TRUE(throws_error(
      [] { Neither{}.init(rnd::key(0), ones13()); },
      {"must be passed to the constructor or at call time", "(module \"/Dropout_0\")"}));
}

TEST(Errors, EveryErrorNamesTheModulePath) {
  struct Net : nn::Module<Net> {
    std::int64_t features = 3;
    Array call(const Array& x) const {
      return nn::Dense{.features = 2}(child(
          "block",
          ResidualBlock{.dropout = {.rate = 0.0, .deterministic = true}, .features = features})(x));
    }
  };
  Tree v = Net{}.init(rnd::key(0), ones13());
  // Param shape mismatch: given variables vs what the module creates.
  EXPECT_TRUE(throws_error(
      [&] { Net{.features = 5}.apply(v, ones13()); },
      {"ScopeParamShapeError", "\"kernel\" in \"/block/Dense_0\"", "(3, 5)", "(3, 3)"}));
  // Param not found.
  Tree missing = v;
  missing.at("params").at("block").at("Dense_0").dict().erase("bias");
  EXPECT_TRUE(throws_error([&] { Net{}.apply(missing, ones13()); },
                           {"ScopeParamNotFoundError", "\"bias\"", "\"/block/Dense_0\""}));
  // Invalid structures.
  EXPECT_TRUE(throws_error(
      [&] {
        Net{}.apply(Tree{{"params", v}}, ones13());
      },
      {"ApplyScopeInvalidVariablesStructureError"}));
  EXPECT_TRUE(
      throws_error([&] { Net{}.apply(v.at("params"), ones13()); },
                   {"ScopeCollectionNotFound", "\"kernel\"", "\"params\"", "\"/block/Dense_0\""}));
  EXPECT_TRUE(throws_error([&] { Net{}.apply(v.at("params").at("Dense_0"), ones13()); },
                           {"ApplyScopeInvalidVariablesTypeError"}));
  // Called outside init/apply/bind.
  EXPECT_TRUE(throws_error([] { nn::Dense{.features = 3}(ones13()); },
                           {"CallCompactUnboundModuleError", "unbound modules", "Dense"}));
  // A name used twice.
  struct Clash : nn::Module<Clash> {
    Array call(const Array& x) const {
      Array h = child("x", nn::Dense{.features = 3})(x);
      return child("x", nn::Dropout{.rate = 0.0, .deterministic = true})(h);
    }
  };
  EXPECT_TRUE(throws_error([] { Clash{}.init(rnd::key(0), ones13()); },
                           {"NameInUseError",
                            "Could not create submodule \"x\" in Module Clash: "
                            "Name in use.",
                            "(module \"/\")"}));
  struct ParamClash : nn::Module<ParamClash> {
    Array call(const Array& x) const {
      param("Dense_0", nn::initializers::zeros_init(), {1});
      return nn::Dense{.features = 3}(x);
    }
  };
  EXPECT_TRUE(throws_error([] { ParamClash{}.init(rnd::key(0), ones13()); },
                           {"NameInUseError", "submodule \"Dense_0\"", "ParamClash"}));
}

TEST(Errors, CollectionsAndMutability) {
  // A BatchNorm-like module: running mean in "batch_stats", updated only when mutable.
  struct Stats : nn::Module<Stats> {
    Array call(const Array& x, bool train) const {
      auto mean = variable("batch_stats", "mean", [&] { return Tree(jnp::zeros({x.shape()[1]})); });
      if (train) mean.set_value(mean.value() * 0.9 + jnp::mean(x, 0) * 0.1);
      return x - mean.value();
    }
  };
  struct Net : nn::Module<Net> {
    Array call(const Array& x, bool train) const { return Stats{}(x, train); }
  };
  Net net;
  Tree v = net.init(rnd::key(0), ones13(), false);
  EXPECT_EQ(layout(v), "batch_stats/Stats_0/mean: float32[3]\n");
  // The forgotten mutable=["batch_stats"].
  EXPECT_TRUE(throws_error([&] { net.apply(v, ones13(), true); },
                           {"ModifyScopeVariableError", "\"mean\"", "\"/Stats_0\"",
                            "collection \"batch_stats\" is immutable"}));
  // batch_stats not passed.
  EXPECT_TRUE(throws_error(
      [&] {
        net.apply(Tree{{"params", Tree{}}}, ones13(), false);
      },
      {"ScopeCollectionNotFound", "\"mean\"", "\"batch_stats\"", "\"/Stats_0\""}));
  auto [y, updates] =
      net.apply_mutable(v, {.mutable_collections = {"batch_stats"}}, ones13(), true);
  EXPECT_TRUE(allclose(updates.at("batch_stats").at("Stats_0").at("mean").leaf(),
                       jnp::full({3}, 0.1), 1e-6, 1e-7));
  EXPECT_TRUE(allclose(y, jnp::full({1, 3}, 0.9), 1e-6, 1e-6));
  EXPECT_TRUE(
      throws_error([&] { net.apply(v, {.mutable_collections = {"batch_stats"}}, ones13(), true); },
                   {"apply_mutable"}));
}

TEST(Apply, MethodPointersBindAndIntrospection) {
  struct AutoEncoder : nn::Module<AutoEncoder> {
    auto encoder() const { return child("encoder", nn::Dense{.features = 2}); }
    auto decoder() const { return child("decoder", nn::Dense{.features = 3}); }
    Array encode(const Array& x) const { return encoder()(x); }
    Array decode(const Array& z) const { return decoder()(z); }
    Array call(const Array& x) const { return decode(encode(x)); }
  };
  AutoEncoder ae;
  Tree v = ae.init(rnd::key(0), ones13());
  EXPECT_EQ(layout(v),
            "params/decoder/bias: float32[3]\nparams/decoder/kernel: float32[2,3]\n"
            "params/encoder/bias: float32[2]\nparams/encoder/kernel: float32[3,2]\n");
  Array z = ae.apply(v, &AutoEncoder::encode, ones13());
  EXPECT_EQ(z.shape(), (Shape{1, 2}));
  EXPECT_TRUE(allclose(ae.apply(v, &AutoEncoder::decode, z), ae.apply(v, ones13()), 1e-6, 1e-6));
  // init through one method creates only that method's variables.
  EXPECT_EQ(layout(ae.init(rnd::key(0), &AutoEncoder::encode, ones13())),
            "params/encoder/bias: float32[2]\nparams/encoder/kernel: float32[3,2]\n");
  auto bound = ae.bind(v);
  EXPECT_TRUE(allclose(bound(ones13()), ae.apply(v, ones13()), 0, 0));
  EXPECT_TRUE(allclose(bound(&AutoEncoder::encode, ones13()), z, 0, 0));
  (void)bound(ones13());  // a second call must not add variables
  EXPECT_EQ(layout(bound.variables()), layout(v));
  auto [out, v2] = ae.init_with_output(rnd::key(0), ones13());
  EXPECT_TRUE(allclose(out, ae.apply(v2, ones13()), 0, 0));

  struct Flags : nn::Module<Flags> {
    Array call(const Array& x) const {
      EXPECT_EQ(path(), "/");
      auto r = child("inner", Probe{})(x);
      return r;
    }
    struct Probe : nn::Module<Probe> {
      Array call(const Array& x) const {
        EXPECT_EQ(path(), "/inner");
        return is_initializing() && has_rng("params") && is_mutable_collection("params") &&
                       !has_variable("params", "w")
                   ? x
                   : x * 2.0;
      }
    };
  };
  auto [fy, fv] = Flags{}.init_with_output(rnd::key(0), ones13());
  EXPECT_TRUE(allclose(fy, ones13(), 0, 0));
  EXPECT_TRUE(allclose(Flags{}.apply(fv, ones13()), ones13() * 2.0, 0, 0));
}

TEST(Variables, SowPerturbAndGradients) {
  struct Foo : nn::Module<Foo> {
    Array call(const Array& x) const {
      Array h = nn::Dense{.features = 4}(x);
      sow("intermediates", "h", h);
      h = perturb("dense4", h);
      return nn::Dense{.features = 2}(h);
    }
  };
  Foo foo;
  Array x = jnp::ones({2, 3});
  Tree v = foo.init(rnd::key(0), x);
  // init's default mutable is DenyList("intermediates"): nothing sown; perturbations created.
  EXPECT_FALSE(v.contains("intermediates"));
  EXPECT_EQ(v.at("perturbations").at("dense4").leaf().shape(), (Shape{2, 4}));
  auto [y, state] = foo.apply_mutable(v, {.mutable_collections = {"intermediates"}}, x);
  EXPECT_EQ(layout(state), "intermediates/h/0: float32[2,4]\n");
  // The perturbation's gradient is d loss / d h.
  auto loss = [&](const Tree& vars) { return jnp::sum(foo.apply(vars, x)); };
  Tree g = loom::grad(loss)(v);
  Array w2 = v.at("params").at("Dense_1").at("kernel").leaf();
  Array dh = jnp::matmul(jnp::ones({2, 2}), jnp::transpose(w2));
  EXPECT_TRUE(allclose(g.at("perturbations").at("dense4").leaf(), dh, 1e-5, 1e-6));
  // Gradients reach params through apply: d sum(x @ k + b) / d b = batch size.
  EXPECT_TRUE(
      allclose(g.at("params").at("Dense_1").at("bias").leaf(), jnp::full({2}, 2.0), 1e-6, 1e-6));
  // Without perturbations, perturb is a no-op.
  Tree params_only = {{"params", v.at("params")}};
  EXPECT_TRUE(allclose(foo.apply(params_only, x), foo.apply(v, x), 1e-6, 1e-6));
  // Custom reduce: sum instead of append.
  struct Sum : nn::Module<Sum> {
    Array call(const Array& x) const {
      auto add = [](const Tree& a, const Tree& b) { return Tree(a.leaf() + b.leaf()); };
      auto zero = [] { return Tree(jnp::zeros({1, 1})); };
      sow("intermediates", "h", x, add, zero);
      sow("intermediates", "h", x * 2.0, add, zero);
      return x;
    }
  };
  auto [sy, ss] =
      Sum{}.apply_mutable(Tree{}, {.mutable_collections = {"intermediates"}}, jnp::ones({1, 1}));
  EXPECT_EQ(ss.at("intermediates").at("h").leaf().item<float>(), 3.f);  // Flax docstring: 3.
}

TEST(Sequential, NamesLayersByIndexAndChains) {
  nn::Sequential mlp{.layers = {nn::Dense{.features = 4}, jnp::tanh, nn::Dense{.features = 2}}};
  Tree v = mlp.init(rnd::key(0), ones13());
  EXPECT_EQ(layout(v),
            "params/layers_0/bias: float32[4]\nparams/layers_0/kernel: float32[3,4]\n"
            "params/layers_2/bias: float32[2]\nparams/layers_2/kernel: float32[4,2]\n");
  const Tree& p = v.at("params");
  Array h = jnp::tanh(jnp::matmul(ones13(), p.at("layers_0").at("kernel").leaf()) +
                      p.at("layers_0").at("bias").leaf());
  Array expected =
      jnp::matmul(h, p.at("layers_2").at("kernel").leaf()) + p.at("layers_2").at("bias").leaf();
  EXPECT_TRUE(allclose(mlp.apply(v, ones13()), expected, 1e-6, 1e-6));
  EXPECT_TRUE(throws_error([] { nn::Sequential{}.init(rnd::key(0), ones13()); },
                           {"Empty Sequential module"}));
}

TEST(Summary, TabulateListsCallsShapesAndParams) {
  nn::Sequential mlp{.layers = {nn::Dense{.features = 4}, jnp::tanh, nn::Dense{.features = 2}}};
  const std::string table = nn::tabulate(mlp, rnd::key(0), ones13());
  // Flax's layout (flax/linen/summary.py): own variables with shapes, then count (bytes).
  EXPECT_NE(
      table.find(" layers_0 | Dense      | float32[1,3] | float32[1,4] | bias: float32[4]\n"
                 "          |            |              |              | kernel: float32[3,4]\n"
                 "          |            |              |              |\n"
                 "          |            |              |              | 16 (64 B)\n"),
      std::string::npos)
      << table;
  EXPECT_NE(table.find(" layers_2 | Dense      | float32[1,4] | float32[1,2] | bias: float32[2]"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("Total Parameters: 26 (104 B)"), std::string::npos) << table;
  EXPECT_EQ(nn::count_variables(mlp.init(rnd::key(0), ones13())).count, 26);
}

TEST(InitShapes, ShapesWithoutRunningInitializers) {
  int calls = 0;
  nn::initializers::Initializer counting = [&calls](const rnd::Key& k, const Shape& s, DType d) {
    ++calls;
    return rnd::normal(k, s, d);
  };
  nn::Sequential mlp{.layers = {nn::Dense{.features = 128, .kernel_init = counting},
                                nn::Dense{.features = 10, .kernel_init = counting}}};
  Tree shapes = mlp.init_shapes(rnd::key(0), jnp::ones({1, 784}));
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(layout(shapes),
            "params/layers_0/bias: float32[128]\nparams/layers_0/kernel: float32[784,128]\n"
            "params/layers_1/bias: float32[10]\nparams/layers_1/kernel: float32[128,10]\n");
  Tree real = mlp.init(rnd::key(0), jnp::ones({1, 784}));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(layout(real), layout(shapes));
}

namespace {
// Resident set size of this process, from /proc/self/statm (Linux).
std::int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}
}  // namespace

TEST(InitShapes, ParamsCommitNoMemory) {
  // A 256 MiB kernel: init_shapes must not commit it (JAX's eval_shape allocates nothing).
  nn::Dense big{.features = 8192, .use_bias = false};
  const std::int64_t before = resident_bytes();
  Tree shapes = big.init_shapes(rnd::key(0), jnp::ones({1, 8192}));
  const std::int64_t grown = resident_bytes() - before;
  EXPECT_EQ(layout(shapes), "params/kernel: float32[8192,8192]\n");
  EXPECT_LT(grown, std::int64_t{64} << 20) << "init_shapes committed " << (grown >> 20) << " MiB";
  EXPECT_EQ(jnp::max(jnp::abs(shapes.at("params").at("kernel").leaf())).item<float>(), 0.f);
}

TEST(Dense, DtypesAndBadInput) {
  struct Net : nn::Module<Net> {
    nn::Dense d;
    Array call(const Array& x) const { return d(x); }
  };
  Net f64{.d = {.features = 2, .param_dtype = DType::float64}};
  Tree v = f64.init(rnd::key(0), ones13());
  EXPECT_EQ(v.at("params").at("Dense_0").at("kernel").leaf().dtype(), DType::float64);
  EXPECT_EQ(f64.apply(v, ones13()).dtype(), DType::float64);  // promoted
  Net f32{.d = {.features = 2, .dtype = DType::float32, .param_dtype = DType::float64}};
  EXPECT_EQ(f32.apply(v, ones13()).dtype(), DType::float32);
  Net nobias{.d = {.features = 2, .use_bias = false}};
  EXPECT_EQ(layout(nobias.init(rnd::key(0), ones13())), "params/Dense_0/kernel: float32[3,2]\n");
  EXPECT_TRUE(throws_error([] { Net{}.init(rnd::key(0), ones13()); },
                           {"Dense: features must be positive", "(module \"/Dense_0\")"}));
}

namespace {
// A norm-like layer with a scale_init field, standing in for BatchNorm in Flax's ResNet pattern.
struct Scale : nn::Module<Scale> {
  nn::initializers::Initializer scale_init = nn::initializers::ones_init();
  Array call(const Array& x) const { return x * param("scale", scale_init, {x.shape().back()}); }
};

// Flax's examples/imagenet/models.py BottleneckResNetBlock, with Dense for Conv: the block gets
// `conv` and `norm` templates, calls them with more arguments, overrides a field, and names two.
struct Block : nn::Module<Block> {
  nn::Dense conv;
  Scale norm;
  std::int64_t filters = 2;
  Array call(const Array& x) const {
    auto c = conv;  // self.conv(self.filters, ...)
    c.features = filters;
    Array y = norm(c(x));   // Dense_0, Scale_0
    auto zero_norm = norm;  // self.norm(scale_init=zeros)
    zero_norm.scale_init = nn::initializers::zeros_init();
    y = zero_norm(c(y));  // Dense_1, Scale_1
    Array residual = x;
    if (residual.shape() != y.shape()) {
      residual = child("conv_proj", c)(residual);     // self.conv(..., name='conv_proj')
      residual = child("norm_proj", norm)(residual);  // self.norm(name='norm_proj')
    }
    return y + residual;
  }
};
}  // namespace

TEST(Templates, ResNetStyleConvAndNormTemplates) {
  struct ResNet : nn::Module<ResNet> {
    Array call(const Array& x) const {
      auto conv = nn::Dense{.use_bias = false};
      auto norm = Scale{};
      return Block{.conv = conv, .norm = norm}(x);
    }
  };
  Tree v = ResNet{}.init(rnd::key(0), ones13());
  EXPECT_EQ(layout(v),
            "params/Block_0/Dense_0/kernel: float32[3,2]\n"
            "params/Block_0/Dense_1/kernel: float32[2,2]\n"
            "params/Block_0/Scale_0/scale: float32[2]\n"
            "params/Block_0/Scale_1/scale: float32[2]\n"
            "params/Block_0/conv_proj/kernel: float32[3,2]\n"
            "params/Block_0/norm_proj/scale: float32[2]\n");
  const Tree& b = v.at("params").at("Block_0");
  EXPECT_TRUE(allclose(b.at("Scale_1").at("scale").leaf(), jnp::zeros({2}), 0, 0));
  EXPECT_TRUE(allclose(b.at("Scale_0").at("scale").leaf(), jnp::ones({2}), 0, 0));
  // With the zero-initialized scale the block starts as its projection (Flax's reason for it).
  Array proj = jnp::matmul(ones13(), b.at("conv_proj").at("kernel").leaf());
  EXPECT_TRUE(allclose(ResNet{}.apply(v, ones13()), proj, 1e-6, 1e-7));
}
