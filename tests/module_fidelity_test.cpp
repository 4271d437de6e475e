// Linen behaviours that ported Flax code relies on (the module-fidelity issue): declarations and
// NameInUseError, subclassing with nn::Extends, shared instances, dead handles,
// capture_intermediates, init(mutable=...), apply(rngs=key), module_paths, compact_name_scope,
// method selection, collection filters, tabulate's options, unbound-module messages. Expected
// outcomes are Flax's, from the tests cited at each case (google/flax tests/linen/
// linen_module_test.py unless said otherwise) or from Flax's naming rules.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "loom/loom.hpp"
#include "loom/nn.hpp"
#include "test_util.hpp"

namespace nn = loom::nn;
namespace core = loom::core;
namespace jnp = loom::numpy;
namespace rnd = loom::random;
using loom::Array;
using loom::Tree;
using loom::testing::allclose;
using loom::testing::throws_error;

namespace {

Array ones(std::int64_t n) {
  return jnp::ones({1, n});
}

// ---- API fix 1: apply() of a module whose call takes no arguments ----
struct Constant : nn::Module<Constant> {
  Array call() const { return param("c", nn::initializers::ones_init(), {2}); }
};

TEST(ApplyNoArguments, CallWithoutArgumentsCompilesAndRuns) {
  Tree v = Constant{}.init(rnd::key(0));
  Array y = Constant{}.apply(v);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1.f, 1.f}));
}

// ---- Duplicate names: one declaration per place in the source ----
TEST(Declarations, TwoPlacesBindingOneNameIsNameInUse) {
  // Flax: two submodules named "foo" in one module raise NameInUseError
  // (test_setup_dict_assignment / naming rules in module.py: _name_taken).
  struct TwoSites : nn::Module<TwoSites> {
    Array call(const Array& x) const {
      Array h = child("foo", nn::Dense{.features = 2})(x);
      return child("foo", nn::Dense{.features = 3})(h);
    }
  };
  EXPECT_TRUE(throws_error([] { TwoSites{}.init(rnd::key(0), ones(3)); },
                           {"NameInUseError", "submodule \"foo\"", "TwoSites"}));
  // The same type and even the same fields from another place are still a second declaration.
  struct SameFieldsTwoSites : nn::Module<SameFieldsTwoSites> {
    Array call(const Array& x) const {
      Array h = child("foo", nn::Dense{.features = 3})(x);
      return child("foo", nn::Dense{.features = 3})(h);
    }
  };
  EXPECT_TRUE(throws_error([] { SameFieldsTwoSites{}.init(rnd::key(0), ones(3)); },
                           {"NameInUseError", "\"foo\""}));
}

TEST(Declarations, SetupAccessorReachesTheSameSubmodule) {
  struct Setup : nn::Module<Setup> {
    auto dense() const { return child("dense", nn::Dense{.features = 3}); }
    Array call(const Array& x) const { return dense()(dense()(x)); }
  };
  Tree v = Setup{}.init(rnd::key(0), ones(3));
  EXPECT_EQ(v.str(), "params/dense/bias: float32[3]\nparams/dense/kernel: float32[3,3]\n");
  // And again in a later call (apply): the same variables.
  EXPECT_EQ(Setup{}.apply(v, ones(3)).shape(), (loom::Shape{1, 3}));
}

// ---- Subclassing: nn::Extends ----
struct Foo : nn::Module<Foo> {
  std::int64_t features = 2;
  Array call(const Array& x) const { return nn::Dense{.features = features}(x); }
};
struct Bar : nn::Extends<Bar, Foo> {
  double scale = 2.0;
  Array call(const Array& x) const { return base_call(x) * scale; }
};
struct Outer : nn::Module<Outer> {
  Array call(const Array& x) const {
    Bar bar{.scale = 3.0};
    bar.features = 4;  // a base field
    return bar(x);
  }
};

TEST(Subclassing, ExtendsHasItsOwnNameCallAndTheBaseFields) {
  // Flax: a subclass has its own class name (Bar_0) and __call__ (test_inheritance_dataclass_
  // attribs; auto-naming by type(self).__name__ in module.py).
  Tree v = Outer{}.init(rnd::key(0), ones(3));
  EXPECT_EQ(v.str(),
            "params/Bar_0/Dense_0/bias: float32[4]\nparams/Bar_0/Dense_0/kernel: float32[3,4]\n");
  const Tree& p = v.at("params").at("Bar_0").at("Dense_0");
  Array expected = (jnp::matmul(ones(3), p.at("kernel").leaf()) + p.at("bias").leaf()) * 3.0;
  EXPECT_TRUE(allclose(Outer{}.apply(v, ones(3)), expected));
  // The top-level Bar: the base's params land at Bar's own path, as super().__call__ does.
  Tree top = Bar{}.init(rnd::key(0), ones(3));
  EXPECT_EQ(top.str(), "params/Dense_0/bias: float32[2]\nparams/Dense_0/kernel: float32[3,2]\n");
  // Type checks see Bar as a module of its own.
  EXPECT_TRUE(nn::detail::is_module_v<Bar>);
  EXPECT_EQ(nn::detail::type_name<Bar>(), "Bar");
}

// ---- Shared instances passed as fields (Flax's Encoder(shared_embedding=...)) ----
struct Encoder : nn::Module<Encoder> {
  nn::Child<nn::Dense> shared;
  Array call(const Array& x) const { return jnp::tanh(shared(x)); }
};
struct Tied : nn::Module<Tied> {
  Array call(const Array& x) const {
    auto shared = child("shared", nn::Dense{.features = 3});
    Array h = Encoder{.shared = shared}(x);  // Encoder_0 uses /shared's variables
    return shared(h);                        // and so does the parent
  }
};

TEST(SharedInstances, ChildFieldUsesTheCreatorsVariables) {
  Tree v = Tied{}.init(rnd::key(0), ones(3));
  // One set of variables at the path where the instance was created; Encoder_0 has none.
  EXPECT_EQ(v.str(), "params/shared/bias: float32[3]\nparams/shared/kernel: float32[3,3]\n");
  const Tree& p = v.at("params").at("shared");
  auto dense = [&](const Array& x) {
    return jnp::matmul(x, p.at("kernel").leaf()) + p.at("bias").leaf();
  };
  EXPECT_TRUE(allclose(Tied{}.apply(v, ones(3)), dense(jnp::tanh(dense(ones(3))))));
}

// ---- API fix 2: a handle used after its init/apply returned ----
TEST(DeadHandles, UseAfterInitIsInvalidScopeError) {
  struct Leaks : nn::Module<Leaks> {
    nn::Child<nn::Dense>* out;
    Array call(const Array& x) const {
      *out = child("d", nn::Dense{.features = 2});
      return (*out)(x);
    }
  };
  nn::Child<nn::Dense> leaked;
  Leaks{.out = &leaked}.init(rnd::key(0), ones(3));
  EXPECT_TRUE(throws_error([&] { leaked(ones(3)); },
                           {"InvalidScopeError", "The scope \"d\" is no longer valid"}));
  nn::Child<nn::Dense> empty;
  EXPECT_TRUE(throws_error([&] { empty(ones(3)); }, {"empty submodule handle"}));
}

// ---- capture_intermediates ----
struct Plus : nn::Module<Plus> {
  Array test(const Array& x) const { return x + 1.0; }
};
struct Capturing : nn::Module<Capturing> {
  Array call(const Array& x) const { return Plus{}(nn::method<&Plus::test>, x) + 1.0; }
};

TEST(CaptureIntermediates, TrueCapturesCallOutputsAndAFilterChooses) {
  // test_capture_intermediates: apply({}, 1, capture_intermediates=True) gives
  // {'intermediates': {'__call__': (3,)}}; a filter on Bar gives {'Bar_0': {'test': (2,)}}.
  Array one = Array::scalar(1.f);
  auto [y, state] = Capturing{}.apply_mutable(Tree{}, {.capture_intermediates = true}, one);
  EXPECT_EQ(y.item<float>(), 3.f);
  EXPECT_EQ(state.str(), "intermediates/__call__/0: float32[]\n");
  EXPECT_EQ(state.at("intermediates").at("__call__").at("0").leaf().item<float>(), 3.f);
  auto only_plus = [](const core::Scope& s, std::string_view) { return s.module_type() == "Plus"; };
  auto [y2, state2] = Capturing{}.apply_mutable(Tree{}, {.capture_intermediates = only_plus}, one);
  EXPECT_EQ(state2.str(), "intermediates/Plus_0/test/0: float32[]\n");
  EXPECT_EQ(state2.at("intermediates").at("Plus_0").at("test").at("0").leaf().item<float>(), 2.f);
  // apply cannot return the captures: it says which call can.
  EXPECT_TRUE(throws_error([&] { Capturing{}.apply(Tree{}, {.capture_intermediates = true}, one); },
                           {"apply_mutable"}));
  // init with capture_intermediates returns them with the variables.
  Tree v = nn::Dense{.features = 2}.init(rnd::key(0), {.capture_intermediates = true}, ones(3));
  EXPECT_EQ(v.str(),
            "intermediates/__call__/0: float32[1,2]\nparams/bias: float32[2]\n"
            "params/kernel: float32[3,2]\n");
}

// ---- init(mutable=...), apply(rngs=key) ----
struct Counter : nn::Module<Counter> {
  Array call(const Array& x) const {
    auto count = variable("counter", "n", [] { return Tree(jnp::zeros({})); });
    if (is_mutable_collection("counter")) count.set_value(count.value() + 1.0);
    sow("intermediates", "x", x);
    return x;
  }
};

TEST(InitOptions, MutableFilterAsFlax) {
  // Default: everything but intermediates (Flax's DenyList('intermediates')).
  EXPECT_EQ(Counter{}.init(rnd::key(0), ones(1)).str(), "counter/n: float32[]\n");
  // mutable=True: the sown intermediates come back too.
  EXPECT_EQ(Counter{}.init(rnd::key(0), {.mutable_collections = true}, ones(1)).str(),
            "counter/n: float32[]\nintermediates/x/0: float32[1,1]\n");
  // mutable=["counter"]
  EXPECT_EQ(Counter{}.init(rnd::key(0), {.mutable_collections = "counter"}, ones(1)).str(),
            "counter/n: float32[]\n");
}

TEST(ApplyRngs, BareKeyMeansParamsStream) {
  // test_default_params_rng_equivalence: apply(v, x, rngs=key) == apply(v, x,
  // rngs={'params': key}); Dropout falls back to the params stream.
  struct Model : nn::Module<Model> {
    Array call(const Array& x) const {
      return nn::Dropout{.rate = 0.5}(nn::Dense{.features = 16}(x), /*deterministic=*/false);
    }
  };
  Array x = rnd::normal(rnd::key(3), {10, 8});
  Tree v = Model{}.init(rnd::key(1), x);
  Array a = Model{}.apply(v, {.rngs = rnd::key(2)}, x);
  Array b = Model{}.apply(v, {.rngs = {{"params", rnd::key(2)}}}, x);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
}

// ---- module_paths ----
struct Inner : nn::Module<Inner> {
  Array call(const Array& x) const { return nn::Dense{.features = 4}(nn::Dense{.features = 3}(x)); }
};
struct Top : nn::Module<Top> {
  Array call(const Array& x) const { return nn::Dense{.features = 5}(Inner{}(x)); }
};

TEST(ModulePaths, EveryPathWithItsType) {
  // test_module_paths: '', 'Dense_0', 'Bar_0', 'Bar_0/Dense_0', 'Bar_0/Dense_1'.
  auto paths = nn::module_paths(Top{}, rnd::key(0), ones(2));
  std::vector<std::pair<std::string, std::string>> expected = {{"", "Top"},
                                                               {"Inner_0", "Inner"},
                                                               {"Inner_0/Dense_0", "Dense"},
                                                               {"Inner_0/Dense_1", "Dense"},
                                                               {"Dense_0", "Dense"}};
  EXPECT_EQ(paths, expected);
}

// ---- compact_name_scope ----
struct UpDown : nn::Module<UpDown> {
  Array up(const Array& x) const {
    return compact_name_scope("up", [&] { return nn::Dense{.features = 3}(x); });
  }
  Array down(const Array& x) const {
    return compact_name_scope("down", [&] { return nn::Dense{.features = 3}(x); });
  }
  Array call(const Array& x) const { return up(x) + down(x) + nn::Dense{.features = 3}(x); }
};

TEST(CompactNameScope, MethodsGetTheirOwnScopes) {
  // test_compact_name_scope: params has Dense_0, up/Dense_0 and down/Dense_0.
  Tree v = UpDown{}.init(rnd::key(0), ones(2));
  EXPECT_EQ(v.str(),
            "params/Dense_0/bias: float32[3]\nparams/Dense_0/kernel: float32[2,3]\n"
            "params/down/Dense_0/bias: float32[3]\nparams/down/Dense_0/kernel: float32[2,3]\n"
            "params/up/Dense_0/bias: float32[3]\nparams/up/Dense_0/kernel: float32[2,3]\n");
  EXPECT_EQ(UpDown{}.apply(v, ones(2)).shape(), (loom::Shape{1, 3}));
  // apply(method='up') reads the same variables.
  const Tree& up = v.at("params").at("up").at("Dense_0");
  Array expected = jnp::matmul(ones(2), up.at("kernel").leaf()) + up.at("bias").leaf();
  EXPECT_TRUE(allclose(UpDown{}.apply(v, nn::method<&UpDown::up>, ones(2)), expected));
  EXPECT_TRUE(allclose(UpDown{}.apply(v, &UpDown::up, ones(2)), expected));
}

// ---- apply(method=callable) ----
TEST(ApplyMethod, CallableReceivesTheModule) {
  // test_module_apply_method: method=lambda m, x: m.encode(x) style.
  Tree v = UpDown{}.init(rnd::key(0), ones(2));
  Array via_lambda = UpDown{}.apply(
      v, [](const UpDown& m, const Array& x) { return m.down(x); }, ones(2));
  EXPECT_TRUE(allclose(via_lambda, UpDown{}.apply(v, &UpDown::down, ones(2))));
}

// ---- collection filters (flax.core.filters) ----
TEST(Filters, UnionIntersectionDifferenceGroup) {
  using F = core::CollectionFilter;
  auto u = F::union_of("a", F::deny({"a", "b"}));  // everything but b
  EXPECT_TRUE(u.contains("a"));
  EXPECT_FALSE(u.contains("b"));
  EXPECT_TRUE(u.contains("z"));
  auto i = F::intersection({"a", "b"}, F::deny({"b"}));  // just a
  EXPECT_TRUE(i.contains("a"));
  EXPECT_FALSE(i.contains("b"));
  EXPECT_FALSE(i.contains("z"));
  auto d = F::difference(true, "params");
  EXPECT_FALSE(d.contains("params"));
  EXPECT_TRUE(d.contains("batch_stats"));
  EXPECT_TRUE(F::difference("a", true).empty());
  EXPECT_TRUE(F::intersection(false, true).empty());
  EXPECT_TRUE(F::union_of(false, "x").contains("x"));
  // group_collections: first matching filter wins, the rest is returned last.
  Tree vars = {{"params", Tree{{"w", jnp::ones({1})}}},
               {"batch_stats", Tree{{"m", jnp::zeros({1})}}},
               {"cache", Tree{{"c", jnp::zeros({1})}}}};
  auto [groups, rest] = core::group_collections(vars, {"params", F::deny({"cache"})});
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].str(), "params/w: float32[1]\n");
  EXPECT_EQ(groups[1].str(), "batch_stats/m: float32[1]\n");
  EXPECT_EQ(rest.str(), "cache/c: float32[1]\n");
}

// ---- API fix 6: folding apply_mutable's updates back ----
TEST(Copy, UpdatesReplaceTheirCollections) {
  Tree v = Counter{}.init(rnd::key(0), ones(1));
  auto [y, updates] = Counter{}.apply_mutable(v, {.mutable_collections = "counter"}, ones(1));
  Tree v2 = core::copy(v, updates);  // Flax's {**variables, **updates}
  // init counted once (counter is mutable under init), apply once more.
  EXPECT_EQ(v.at("counter").at("n").leaf().item<float>(), 1.f);  // unchanged
  EXPECT_EQ(v2.at("counter").at("n").leaf().item<float>(), 2.f);
}

// ---- tabulate: repeated calls, methods, depth ----
TEST(Tabulate, RepeatedHiddenMethodsShownDepthFolds) {
  struct Twice : nn::Module<Twice> {
    Array call(const Array& x) const {
      auto d = child(nn::Dense{.features = 1});
      return d(d(x)) + Plus{}(nn::method<&Plus::test>, x);
    }
  };
  const std::string t = nn::tabulate(Twice{}, rnd::key(0), ones(1));
  // Dense_0 is called twice and listed once (show_repeated=False).
  EXPECT_EQ(t.find("\n Dense_0 "), t.rfind("\n Dense_0 ")) << t;
  EXPECT_NE(t.find("Plus (test)"), std::string::npos) << t;
  EXPECT_EQ(t.find("/Dense_0"), std::string::npos) << t;  // no leading '/'
  const std::string shown = nn::tabulate(Twice{}, rnd::key(0), {.show_repeated = true}, ones(1));
  EXPECT_NE(shown.find("\n Dense_0 "), shown.rfind("\n Dense_0 ")) << shown;
  // depth=0: only the top row, which counts every parameter: (2*3+3) + (3*4+4) + (4*5+5).
  const std::string top = nn::tabulate(Top{}, rnd::key(0), {.depth = 0}, ones(2));
  EXPECT_EQ(top.find("Inner_0"), std::string::npos) << top;
  EXPECT_NE(top.find("Total Parameters: 50 (200 B)"), std::string::npos) << top;
  // depth=1: Inner_0's row counts its two Dense layers (9 + 16 parameters).
  const std::string one = nn::tabulate(Top{}, rnd::key(0), {.depth = 1}, ones(2));
  EXPECT_NE(one.find("25 (100 B)"), std::string::npos) << one;
  EXPECT_EQ(one.find("Inner_0/Dense_0"), std::string::npos) << one;
}

// ---- Flax's texts for helpers used on unbound modules ----
struct Unbound : nn::Module<Unbound> {
  bool has() const { return has_variable("bar", "baz"); }
  rnd::Key rng() const { return make_rng("bar"); }
  bool query() const { return has_rng("bar"); }
  Array call(const Array& x) const { return x; }
};

TEST(Unbound, MessagesMatchFlax) {
  // test_call_unbound_has_variable / _make_rng / _variables.
  EXPECT_TRUE(throws_error([] { Unbound{}.has(); }, {"Can't access variables on unbound modules"}));
  EXPECT_TRUE(throws_error([] { Unbound{}.rng(); }, {"Can't use RNGs on unbound modules"}));
  EXPECT_TRUE(throws_error([] { Unbound{}.query(); }, {"Can't query for RNGs on unbound modules"}));
  EXPECT_TRUE(throws_error(
      [] { Unbound{}(ones(1)); },
      {"CallCompactUnboundModuleError", "Can't call compact methods on unbound modules"}));
}

}  // namespace
