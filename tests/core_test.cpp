// loom::core: SHA-1, Flax's key derivation, and the functional core (Scope, init, apply, bind).
#include "loom/core.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/sha1.hpp"
#include "loom/loom.hpp"
#include "loom/nn/initializers.hpp"
#include "loom/random.hpp"
#include "test_util.hpp"

namespace core = loom::core;
namespace jnp = loom::numpy;
namespace rnd = loom::random;
namespace init = loom::nn::initializers;
using loom::Array;
using loom::DType;
using loom::Shape;
using loom::Tree;
using loom::testing::throws_error;

namespace {

std::string hex(const std::array<std::uint8_t, 20>& d) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (auto b : d) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

std::string sha1_hex(const std::string& text) {
  core::detail::Sha1 h;
  h.update(text);
  return hex(h.digest());
}

// Flax's documented words of a key, as the rng guide prints them.
std::pair<std::uint32_t, std::uint32_t> words(const rnd::Key& k) {
  return k.words();
}

// A functional Dense, as flax/core's `nn.dense` (tests/core/design): kernel then bias.
Array dense(core::Scope& scope, const Array& x, std::int64_t features) {
  Array kernel = scope.param("kernel", init::lecun_normal(), {x.shape().back(), features});
  Array bias = scope.param("bias", init::zeros_init(), {features});
  return jnp::matmul(x, kernel) + bias;
}

}  // namespace

// FIPS 180-2 appendix A (and the NIST example vectors) for SHA-1.
TEST(Sha1, FipsVectors) {
  EXPECT_EQ(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(sha1_hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  core::detail::Sha1 h;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) h.update(chunk);  // one million 'a'
  EXPECT_EQ(hex(h.digest()), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST(Sha1, SplitUpdatesEqualOneUpdate) {
  core::detail::Sha1 a, b;
  const std::string text = "The quick brown fox jumps over the lazy dog";
  a.update(text);
  for (char c : text) b.update(&c, 1);
  EXPECT_EQ(hex(a.digest()), hex(b.digest()));
  EXPECT_EQ(sha1_hex(text), "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");  // RFC 3174 test
}

// The hash Flax folds in: names then the count in minimal big-endian bytes. Expected values:
// Python's hashlib, int.from_bytes(sha1(b"...").digest()[:4], "big").
TEST(Sha1, FlaxRngHash) {
  // sha1(b"\x01") = bf8b4530d8d246dd74ac53a13471bba17941dff7
  EXPECT_EQ(core::detail::flax_rng_hash({}, 1), 0xbf8b4530u);
  EXPECT_EQ(core::detail::flax_rng_hash({"Dense_0"}, 1), 0xb2b71315u);  // sha1(b"Dense_0\x01")
  // Path items are concatenated without separators (flax_fix_rng_separator=False).
  EXPECT_EQ(core::detail::flax_rng_hash({"Dense", "_0"}, 1), 0xb2b71315u);
  // 256 takes two bytes: sha1(b"\x01\x00") = 0e356ba5...
  EXPECT_EQ(core::detail::flax_rng_hash({}, 256), 0x0e356ba5u);
}

// Flax docs, guides/flax_fundamentals/rng_guide.ipynb, "RNGModule" cells: three make_rng calls
// at the top-level module with {'rng_stream': key(0)} print these keys.
TEST(CoreRng, MakeRngMatchesFlaxRngGuide) {
  auto f = [](core::Scope& scope) {
    return std::vector<rnd::Key>{scope.make_rng("rng_stream"), scope.make_rng("rng_stream"),
                                 scope.make_rng("rng_stream")};
  };
  auto [keys, variables] = core::init(f)(core::Rngs{{"rng_stream", rnd::key(0)}});
  EXPECT_EQ(words(keys[0]), std::make_pair(1428664606u, 3351135085u));
  EXPECT_EQ(words(keys[1]), std::make_pair(3456700291u, 3873160899u));
  EXPECT_EQ(words(keys[2]), std::make_pair(2411773124u, 4124888837u));
  EXPECT_TRUE(variables.empty());
}

// rng_guide.ipynb, RNGSubModule cells: counters are per scope and per stream; a child's keys
// fold in its path.
TEST(CoreRng, ChildScopesFoldInTheirPath) {
  auto f = [](core::Scope& scope) {
    std::vector<rnd::Key> keys{scope.make_rng("rng_stream"), scope.make_rng("rng_stream")};
    core::Scope& sub = scope.push("RNGSubModule_0");
    keys.push_back(sub.make_rng("rng_stream"));
    keys.push_back(sub.make_rng("rng_stream"));
    core::Scope& subsub = sub.push("RNGSubSubModule_0");
    keys.push_back(subsub.make_rng("rng_stream"));
    keys.push_back(subsub.make_rng("rng_stream"));
    return keys;
  };
  auto keys = core::init(f)(core::Rngs{{"rng_stream", rnd::key(0)}}).first;
  EXPECT_EQ(words(keys[2]), std::make_pair(3858825717u, 2323087578u));
  EXPECT_EQ(words(keys[3]), std::make_pair(601859108u, 3782857444u));
  EXPECT_EQ(words(keys[4]), std::make_pair(234240654u, 1028548813u));
  EXPECT_EQ(words(keys[5]), std::make_pair(3650462303u, 2124609379u));
}

TEST(CoreRng, StreamsAreIndependentAndFallBackToParams) {
  auto two = [](core::Scope& scope) {
    auto a = scope.make_rng("s1");
    auto b = scope.make_rng("s2");
    auto c = scope.make_rng("s1");
    return std::vector<rnd::Key>{a, b, c};
  };
  // rng_guide.ipynb RNGModuleTwoStreams: stream 2 seeded with key(1).
  auto keys = core::init(two)(core::Rngs{{"s1", rnd::key(0)}, {"s2", rnd::key(1)}}).first;
  EXPECT_EQ(words(keys[0]), std::make_pair(1428664606u, 3351135085u));
  EXPECT_EQ(words(keys[1]), std::make_pair(3077990774u, 2166202870u));
  EXPECT_EQ(words(keys[2]), std::make_pair(3456700291u, 3873160899u));
  // A missing stream uses "params" (flax Module.make_rng docstring: same key as params).
  auto other = [](core::Scope& scope) { return scope.make_rng("other"); };
  auto k = core::init(other)(rnd::key(0)).first;
  EXPECT_EQ(words(k), std::make_pair(1428664606u, 3351135085u));
  // ...and with no "params" either it is Flax's InvalidRngError with the path.
  auto nested = [](core::Scope& scope) { return scope.push("Dropout_0").make_rng("dropout"); };
  EXPECT_TRUE(throws_error(
      [&] {
        core::init(nested)(core::Rngs{{"x", rnd::key(0)}});
      },
      {"InvalidRngError", "Dropout_0 needs PRNG for \"dropout\"", "\"/Dropout_0\""}));
}

TEST(CoreScope, InitAndApplyAFunctionalMlp) {
  auto mlp = [](core::Scope& scope, const Array& x) {
    Array h = jnp::tanh(scope.child("hidden", dense)(x, 3));
    return scope.child("out", dense)(h, 1);
  };
  Array x = jnp::ones({2, 4});
  auto [y, variables] = core::init(mlp)(rnd::key(0), x);
  EXPECT_EQ(y.shape(), (Shape{2, 1}));
  EXPECT_EQ(variables.str(),
            "params/hidden/bias: float32[3]\n"
            "params/hidden/kernel: float32[4,3]\n"
            "params/out/bias: float32[1]\n"
            "params/out/kernel: float32[3,1]\n");
  Array y2 = core::apply(mlp)(variables, x);
  EXPECT_TRUE(loom::testing::allclose(y2, y, 0, 0));
  // Hyperparameters fixed in advance: a lambda or std::bind_front (the note's partial).
  auto dense3 = [](core::Scope& s, const Array& in) { return dense(s, in, 3); };
  auto [y3, v3] = core::init(dense3)(rnd::key(0), x);
  EXPECT_EQ(v3.at("params").at("kernel").leaf().shape(), (Shape{4, 3}));
  // std::bind_front fixes leading arguments, so there the hyperparameter comes first.
  auto dense_hp = [](std::int64_t features, core::Scope& s, const Array& in) {
    return dense(s, in, features);
  };
  auto [y4, v4] = core::init(std::bind_front(dense_hp, 5))(rnd::key(0), x);
  EXPECT_EQ(v4.at("params").at("kernel").leaf().shape(), (Shape{4, 5}));
}

TEST(CoreScope, ChildScopesAreReusedWhenReentered) {
  // The same child called twice shares its variables (and continues its rng counters).
  auto f = [](core::Scope& scope, const Array& x) {
    auto layer = scope.child("shared", dense);
    return layer(layer(x, 4), 4);
  };
  auto [y, variables] = core::init(f)(rnd::key(0), jnp::ones({1, 4}));
  EXPECT_EQ(variables.at("params").size(), 1u);
  EXPECT_EQ(variables.at("params").at("shared").at("kernel").leaf().shape(), (Shape{4, 4}));
}

TEST(CoreScope, ParamErrorsCarryTheScopePath) {
  auto f = [](core::Scope& scope, const Array& x) { return scope.child("Dense_0", dense)(x, 3); };
  auto variables = core::init(f)(rnd::key(0), jnp::ones({1, 4})).second;
  // Shape mismatch between the given kernel and what the module creates.
  EXPECT_TRUE(throws_error(
      [&] {
        core::apply(f)(variables, jnp::ones({1, 5}));
      },
      {"ScopeParamShapeError", "For parameter \"kernel\" in \"/Dense_0\"",
       "expected to generate shape (5, 3)", "existing parameter it received has shape (4, 3)"}));
  // A missing param in a non-empty collection.
  Tree no_bias = {
      {"params", {{"Dense_0", {{"kernel", variables.at("params").at("Dense_0").at("kernel")}}}}}};
  EXPECT_TRUE(throws_error(
      [&] {
        core::apply(f)(no_bias, jnp::ones({1, 4}));
      },
      {"ScopeParamNotFoundError",
       "Could not find parameter named \"bias\" in scope \"/Dense_0\"."}));
  // No params at all.
  EXPECT_TRUE(throws_error(
      [&] {
        core::apply(f)(Tree{}, jnp::ones({1, 4}));
      },
      {"ScopeCollectionNotFound",
       "Tried to access \"kernel\" from collection \"params\" in "
       "\"/Dense_0\" but the collection is empty."}));
  // Name used twice in one scope.
  auto twice = [](core::Scope& scope) {
    scope.param("w", init::zeros_init(), {1});
    scope.param("w", init::zeros_init(), {1});
  };
  EXPECT_TRUE(throws_error([&] { core::init(twice)(rnd::key(0)); },
                           {"NameInUseError", "Could not create param \"w\"", "Name in use."}));
}

TEST(CoreScope, InvalidVariablesStructures) {
  auto f = [](core::Scope& scope, const Array& x) { return dense(scope, x, 2); };
  auto variables = core::init(f)(rnd::key(0), jnp::ones({1, 2})).second;
  // {"params": {"params": ...}}
  Tree doubled = {{"params", variables}};
  EXPECT_TRUE(throws_error(
      [&] {
        core::apply(f)(doubled, jnp::ones({1, 2}));
      },
      {"ApplyScopeInvalidVariablesStructureError", "with an extra params layer",
       // flax/errors.py ApplyScopeInvalidVariablesStructureError renders "... } }. You".
       "i.e.  {\"params\": {\"params\": ... } }. You should instead"}));
  // A bare params tree: its collections are arrays.
  EXPECT_TRUE(throws_error(
      [&] {
        core::apply(f)(variables.at("params"), jnp::ones({1, 2}));
      },
      {"ApplyScopeInvalidVariablesTypeError", "should be a dictionary of collections"}));
  EXPECT_TRUE(throws_error(
      [&] {
        core::apply(f)(Tree(jnp::ones({2})), jnp::ones({1, 2}));
      },
      {"ApplyScopeInvalidVariablesTypeError"}));
}

TEST(CoreScope, MutableCollections) {
  // A counter in "counter": immutable in a plain apply, updated with apply_mutable.
  auto f = [](core::Scope& scope) {
    auto count =
        scope.variable("counter", "count", [] { return Tree(jnp::zeros({}, DType::int32)); });
    if (count.is_mutable()) count.set_value(count.value() + 1);
    return count.value();
  };
  auto variables = core::init(f)(rnd::key(0)).second;
  EXPECT_EQ(variables.at("counter").at("count").leaf().item<int>(), 1);
  EXPECT_EQ(core::apply(f)(variables).item<int>(), 1);
  auto [out, updates] = core::apply_mutable(f, "counter")(variables);
  EXPECT_EQ(out.item<int>(), 2);
  EXPECT_EQ(updates.at("counter").at("count").leaf().item<int>(), 2);
  EXPECT_FALSE(updates.contains("params"));
  // Writing an immutable collection: the forgotten mutable=["counter"].
  auto write = [](core::Scope& scope) {
    scope.variable("counter", "count").set_value(jnp::zeros({}));
  };
  EXPECT_TRUE(throws_error([&] { core::apply(write)(variables); },
                           {"ModifyScopeVariableError",
                            "Cannot update variable \"count\" in \"/\" because collection "
                            "\"counter\" is immutable."}));
  // Reading a collection that was not passed.
  auto read_bs = [](core::Scope& scope) {
    return scope.push("BatchNorm_0").variable("batch_stats", "mean").value();
  };
  EXPECT_TRUE(
      throws_error([&] { core::apply(read_bs)(variables); },
                   {"ScopeCollectionNotFound", "\"mean\"", "\"batch_stats\"", "\"/BatchNorm_0\""}));
  Tree other = {{"batch_stats", {{"BatchNorm_0", {{"var", jnp::ones({2})}}}}}};
  EXPECT_TRUE(throws_error([&] { core::apply(read_bs)(other); },
                           {"ScopeVariableNotFoundError",
                            "No Variable named \"mean\" for collection \"batch_stats\" exists in "
                            "\"/BatchNorm_0\"."}));
}

TEST(CoreScope, CollectionFilters) {
  core::CollectionFilter none;
  core::CollectionFilter all = true;
  core::CollectionFilter one = "batch_stats";
  core::CollectionFilter two = {"a", "b"};
  auto deny = core::CollectionFilter::deny({"intermediates"});
  EXPECT_FALSE(none.contains("params"));
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(all.contains("anything"));
  EXPECT_TRUE(one.contains("batch_stats"));
  EXPECT_FALSE(one.contains("params"));
  EXPECT_TRUE(two.contains("b"));
  EXPECT_TRUE(deny.contains("params"));
  EXPECT_FALSE(deny.contains("intermediates"));
  EXPECT_FALSE(deny.empty());
}

TEST(CoreScope, BindForInteractiveUse) {
  auto f = [](core::Scope& scope, const Array& x) { return dense(scope, x, 2); };
  auto variables = core::init(f)(rnd::key(0), jnp::ones({1, 3})).second;
  auto scope = core::bind(variables);
  Array y = dense(*scope, jnp::ones({1, 3}), 2);
  EXPECT_EQ(y.shape(), (Shape{1, 2}));
  EXPECT_FALSE(scope->is_initializing());
  EXPECT_EQ(scope->path_text(), "/");
  EXPECT_TRUE(scope->has_variable("params", "kernel"));
}

TEST(CoreScope, RngsMustBeSingleKeys) {
  auto f = [](core::Scope& scope) { return scope.make_rng("params"); };
  EXPECT_TRUE(throws_error([&] { core::init(f)(rnd::split(rnd::key(0), 2)); },
                           {"InvalidRngError", "(2,)"}));
}
