// loom::core: Flax's functional core (flax/core/scope.py). A module is a plain function
// f(Scope&, inputs..., hyperparameters...); the Scope holds its path, its variables and its rngs.
//
//   namespace core = loom::core;
//   loom::Array dense(core::Scope& scope, const loom::Array& x, std::int64_t features) {
//     auto kernel = scope.param("kernel", loom::nn::initializers::lecun_normal(),
//                               {x.shape().back(), features});
//     auto bias = scope.param("bias", loom::nn::initializers::zeros_init(), {features});
//     return jnp::matmul(x, kernel) + bias;
//   }
//   loom::Array mlp(core::Scope& scope, const loom::Array& x) {
//     auto h = scope.child("hidden", dense)(x, 3);          // variables under "hidden"
//     return scope.child("out", dense)(h, 1);
//   }
//   auto [y, variables] = core::init(mlp)(loom::random::key(0), x);
//   loom::Array y2 = core::apply(mlp)(variables, x);
//   // hyperparameters fixed in advance (the note's `partial`): a lambda or std::bind_front
//   auto dense3 = [](core::Scope& s, const loom::Array& x) { return dense(s, x, 3); };
//
// Semantics follow Flax exactly: per-collection variables (`params`, `batch_stats`, ...),
// a mutable-collection filter, per-scope per-stream rng counters, keys derived from the module
// path through SHA-1 (so init gives Flax's parameters), child scopes that keep their counters
// and variables when re-entered, and Flax's errors (loom/core/errors.hpp) with the scope path.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "loom/array.hpp"
#include "loom/core/errors.hpp"
#include "loom/core/filters.hpp"
#include "loom/random.hpp"
#include "loom/tree.hpp"

namespace loom::core {

/// An initializer: init(key, shape, dtype) -> Array. The same std::function type as
/// loom::nn::initializers::Initializer (which lives in the layer above and makes them).
using Initializer = std::function<Array(const random::Key& key, const Shape& shape, DType dtype)>;

/// Named rng streams: {"params": key, "dropout": key2}.
using Rngs = std::map<std::string, random::Key>;

class Scope;

/// flax.core.copy(variables, add_or_replace): `variables` with the collections of
/// `add_or_replace` added or replaced (Python's `{**variables, **updates}`); what folds the
/// mutable collections returned by apply_mutable back into the variables.
///   auto [y, updates] = model.apply_mutable(variables, {.mutable_collections = "batch_stats"}, x);
///   variables = core::copy(variables, updates);
Tree copy(const Tree& variables, const Tree& add_or_replace);

/// Where a named submodule was declared (the source location of child(name, m)): binding the
/// same name again from the same place reaches the same submodule (setup-style accessors),
/// from another place it is a NameInUseError. A default (null) site matches only itself.
struct DeclarationSite {
  const char* file = nullptr;
  std::uint_least32_t line = 0;
  std::uint_least32_t column = 0;
  friend bool operator==(const DeclarationSite& a, const DeclarationSite& b);
};

/// A handle on one variable (flax.core.scope.Variable): read it, and write it when its
/// collection is mutable.
///   auto count = scope.variable("counter", "count", [] { return jnp::zeros({}); });
///   count.set_value(count.value() + 1);
class Variable {
 public:
  Variable(Scope* scope, std::string collection, std::string name)
      : scope_(scope), collection_(std::move(collection)), name_(std::move(name)) {}
  /// The value as an Array (the variable must hold one leaf).
  Array value() const;
  /// The value as a tree (any structure).
  Tree tree() const;
  /// Writes the value; a ModifyScopeVariableError when the collection is immutable.
  void set_value(Tree value) const;
  bool is_mutable() const;
  const std::string& collection() const { return collection_; }
  const std::string& name() const { return name_; }

 private:
  Scope* scope_;
  std::string collection_, name_;
};

namespace detail {
struct RootState;
}

/// A cursor into a variables tree plus rng streams: the `self.scope` of a Flax module.
/// Scopes are created by core::init / core::apply / core::bind (and by nn modules); they are not
/// copyable and live as long as the call that created them.
class Scope {
 public:
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  ~Scope();

  /// This scope's name ("" for the root), its path from the root, and "/a/b" (Flax path_text).
  const std::string& name() const { return name_; }
  const std::vector<std::string>& path() const { return path_; }
  std::string path_text() const;
  Scope* parent() const { return parent_; }

  // ---- children ----
  /// The child scope `name` (Flax's Scope.push). A second push of a name reserved in this call
  /// is a NameInUseError unless `reuse`; the child object, its variables and its rng counters
  /// persist across calls and re-entries.
  Scope& push(const std::string& name, bool reuse = false);
  /// `prefix` + the first integer that makes an unreserved name (Flax's default_name).
  std::string default_name(const std::string& prefix) const;
  /// fn with a child scope bound as its first argument (Flax's Scope.child); calling the
  /// returned function twice reuses the child's variables.
  ///   auto y = scope.child("dense", dense)(x, 3);
  template <typename F>
  auto child(const std::string& name, F fn) {
    Scope* child = &push(name, /*reuse=*/true);
    return [child, fn = std::move(fn)](auto&&... args) -> decltype(auto) {
      child->rewind();
      return fn(*child, std::forward<decltype(args)>(args)...);
    };
  }
  /// Clears this scope's name reservations (not its variables or rng counters): the scope can
  /// run its function again (Flax's Scope.rewound()).
  void rewind();
  bool name_reserved(const std::string& name, const std::optional<std::string>& collection) const;
  /// Reserves `name`; `kind` ("submodule", "param", "variable") words the NameInUseError.
  void reserve(const std::string& name, const std::optional<std::string>& collection,
               const char* kind);
  /// The child scope `name` if it was ever pushed, else nullptr.
  Scope* find_child(const std::string& name) const;
  /// True when `name` is reserved, in this call, for a child scope (not a variable).
  bool reserved_for_submodule(const std::string& name) const;
  /// Which module type runs in this scope ("Dense"), for messages and nn::tabulate.
  const std::string& module_type() const { return module_type_; }
  void set_module_type(std::string type) { module_type_ = std::move(type); }
  /// Per-type counters for auto-naming submodules ("Dense_0", "Dense_1"); reset by rewind().
  int next_autoname_index(const std::string& type_name);
  /// Where this scope's submodule was declared (see DeclarationSite).
  const DeclarationSite& declaration() const { return declaration_; }
  void set_declaration(DeclarationSite site) { declaration_ = site; }
  /// Expires when the init/apply/bind that created this scope's root returns: a handle that
  /// keeps a Scope* checks it before use (Flax's InvalidScopeError for a dead scope).
  std::weak_ptr<const void> liveness() const;

  // ---- variables ----
  bool is_mutable_collection(const std::string& collection) const;
  /// True when the root holds no such collection, or an empty one.
  bool is_collection_empty(const std::string& collection) const;
  bool has_variable(const std::string& collection, const std::string& name) const;
  /// True when the root's variables hold `collection` (Flax: `col in root._variables`).
  bool has_collection(const std::string& collection) const;
  /// The value, or nullptr when absent.
  const Tree* find_variable(const std::string& collection, const std::string& name) const;
  /// The value; ScopeCollectionNotFound / ScopeVariableNotFoundError when absent.
  const Tree& get_variable(const std::string& collection, const std::string& name) const;
  /// Writes a variable; ModifyScopeVariableError when the collection is immutable.
  void put_variable(const std::string& collection, const std::string& name, Tree value);
  /// Declares a variable: created with init() when absent and the collection is mutable,
  /// else it must exist. init == nullptr means "must exist".
  Variable variable(const std::string& collection, const std::string& name,
                    const std::function<Tree()>& init = nullptr);
  /// Declares a parameter of the given shape and dtype (Flax's `self.param(name, init, shape,
  /// dtype)`): created with init(make_rng("params"), shape, dtype) when initializing, else read
  /// and checked against `shape` (ScopeParamShapeError).
  Array param(const std::string& name, const Initializer& init, const Shape& shape,
              DType dtype = DType::float32);
  /// A parameter of any structure: init(make_rng("params")) when absent. No shape check.
  Tree param(const std::string& name, const std::function<Tree(const random::Key&)>& init);
  /// This scope's variables, {collection: subtree} (Flax's Scope.variables()).
  Tree variables() const;

  // ---- rngs and flags ----
  bool has_rng(const std::string& stream) const;
  /// The next key of `stream` for this scope: fold_in(root key, sha1(path..., count)[:4]).
  /// A missing stream falls back to "params" (InvalidRngError when that is missing too).
  random::Key make_rng(const std::string& stream = "params");
  /// True under init (Flax's is_initializing()).
  bool is_initializing() const;
  /// True under an eval_shape-style init: params are zeros, initializers are not run.
  bool is_abstract() const;

  // ---- the root (created by init/apply/bind) ----
  /// A root scope over `variables` (which must outlive it unless `own_variables`).
  static std::unique_ptr<Scope> make_root(const Tree* variables, Rngs rngs,
                                          CollectionFilter mutable_collections, bool initializing,
                                          bool abstract = false);
  /// The root's mutable collections after the run (what apply returns with mutable=...).
  Tree mutable_variables() const;
  /// Takes a copy of the variables into the root, so the caller's tree may go (bind).
  void own_variables();

  // ---- for lifted transformations (nn::scan, nn::vmap): Flax's scope.rngs, rng_counters ----
  /// The base key of every rng stream (what make_rng folds this scope's path and count into).
  const Rngs& rngs() const;
  /// This scope's per-stream rng counters; a lifted transformation carries them into its body
  /// and back, as Flax's lifted scopes share the outer scope's counters.
  std::map<std::string, std::uint64_t>& rng_counters() { return rng_counters_; }
  /// The names of the child scopes pushed so far (children persist across calls).
  std::vector<std::string> child_names() const;
  /// The root's mutable-collection filter.
  const CollectionFilter& mutable_filter() const;

 private:
  Scope(detail::RootState* root, Scope* parent, std::string name);
  const Tree* collection_subtree(const std::string& collection) const;
  Tree& mutable_collection_subtree(const std::string& collection);
  std::string where() const;

  detail::RootState* root_;
  std::unique_ptr<detail::RootState> owned_root_;
  Scope* parent_;
  std::string name_;
  std::vector<std::string> path_;
  std::string module_type_;
  DeclarationSite declaration_;
  std::map<std::string, std::unique_ptr<Scope>> children_;
  std::map<std::string, std::vector<std::optional<std::string>>> reservations_;
  std::map<std::string, int> autoname_;
  std::map<std::string, std::uint64_t> rng_counters_;
};

/// Validates a variables tree the way Flax's apply does (ApplyScopeInvalidVariablesTypeError,
/// ApplyScopeInvalidVariablesStructureError).
void check_variables(const Tree& variables);

namespace detail {
inline Rngs to_rngs(const Rngs& rngs) {
  return rngs;
}
inline Rngs to_rngs(const random::Key& key) {
  return Rngs{{"params", key}};
}

template <typename F>
struct Init {
  F f;
  CollectionFilter mutable_collections;
  template <typename... Args>
  auto operator()(const Rngs& rngs, Args&&... args) const {
    auto root = Scope::make_root(nullptr, rngs, mutable_collections, /*initializing=*/true);
    using Out = std::decay_t<std::invoke_result_t<const F&, Scope&, Args&&...>>;
    if constexpr (std::is_void_v<Out>) {
      f(*root, std::forward<Args>(args)...);
      return root->mutable_variables();
    } else {
      Out out = f(*root, std::forward<Args>(args)...);
      return std::make_pair(std::move(out), root->mutable_variables());
    }
  }
  template <typename... Args>
  auto operator()(const random::Key& key, Args&&... args) const {
    return (*this)(to_rngs(key), std::forward<Args>(args)...);
  }
};

template <typename F>
struct Apply {
  F f;
  CollectionFilter mutable_collections;
  Rngs rngs;
  template <typename... Args>
  auto operator()(const Tree& variables, Args&&... args) const {
    check_variables(variables);
    auto root = Scope::make_root(&variables, rngs, mutable_collections, /*initializing=*/false);
    if constexpr (std::is_void_v<std::invoke_result_t<const F&, Scope&, Args&&...>>) {
      f(*root, std::forward<Args>(args)...);
      return root->mutable_variables();
    } else {
      auto out = f(*root, std::forward<Args>(args)...);
      return std::make_pair(std::move(out), root->mutable_variables());
    }
  }
};
}  // namespace detail

/// Flax's core.init: init(f)(key or rngs, args...) -> (f's output, variables) (just the
/// variables when f returns void). A bare key means {"params": key}.
///   auto [y, variables] = core::init(f)(loom::random::key(0), x);
///   auto [y2, v2] = core::init(f)({{"params", k1}, {"dropout", k2}}, x);
template <typename F>
detail::Init<F> init(F f, CollectionFilter mutable_collections = true) {
  return {std::move(f), std::move(mutable_collections)};
}

/// Flax's core.apply: apply(f)(variables, args...) -> f's output.
///   loom::Array y = core::apply(f)(variables, x);
///   loom::Array y2 = core::apply(f, {{"dropout", key}})(variables, x, /*train=*/true);
template <typename F>
auto apply(F f, Rngs rngs = {}) {
  return [inner = detail::Apply<F>{std::move(f), false, std::move(rngs)}](const Tree& variables,
                                                                          auto&&... args) {
    if constexpr (std::is_void_v<std::invoke_result_t<const F&, Scope&, decltype(args)...>>) {
      inner(variables, std::forward<decltype(args)>(args)...);
    } else {
      return inner(variables, std::forward<decltype(args)>(args)...).first;
    }
  };
}

/// core::apply with mutable collections: (output, the mutable collections after the run).
///   auto [y, updates] = core::apply_mutable(f, {"batch_stats"})(variables, x);
template <typename F>
detail::Apply<F> apply_mutable(F f, CollectionFilter mutable_collections, Rngs rngs = {}) {
  return {std::move(f), std::move(mutable_collections), std::move(rngs)};
}

/// A root scope bound to variables and rngs for interactive use (Flax's core.bind).
///   auto scope = core::bind(variables);   loom::Array y = dense(*scope, x, 3);
std::unique_ptr<Scope> bind(const Tree& variables, Rngs rngs = {},
                            CollectionFilter mutable_collections = false);

}  // namespace loom::core
