// loom::nn::Module: Flax Linen's module system. A module is an aggregate with defaulted public
// fields (its hyperparameters) that derives from nn::Module<Itself> and defines call(...):
//
//   struct MLP : nn::Module<MLP> {
//     std::int64_t hidden = 128;
//     double drop_rate = 0.1;
//     loom::Array call(const loom::Array& x, bool train) const {
//       auto h = jnp::tanh(nn::Dense{.features = hidden}(x));                  // "Dense_0"
//       h = nn::Dropout{.rate = drop_rate, .deterministic = !train}(h);      // "Dropout_0"
//       return nn::Dense{.features = 10}(h);                                 // "Dense_1"
//     }
//   };
//   MLP model{.hidden = 64};
//   loom::Tree variables = model.init(loom::random::key(0), x, false);
//   loom::Array y = model.apply(variables, {.rngs = {{"dropout", k}}}, x, true);
//
// README.md, "From Flax to loom", maps every Flax idiom to its loom form (compiled by the tests).
//
// child("name", m) is a declaration at a place in the source: reached again (in the same call or
// a later one) it is the same submodule; the same name from another place, a different type, or
// a name used by a param/variable is a NameInUseError. A template called twice creates two
// submodules.
//
// Equality and hashing, as Flax's dataclass __eq__/__hash__: a module compares by its fields
// once it declares `bool operator==(const M&) const = default;` (every loom layer does; the
// empty nn::Module base compares equal), and hashes by its type name and fields with
// LOOM_NN_HASH_FIELDS (loom/nn/module_hash.hpp). Unbound modules with equal fields are equal; a
// Child handle also compares its place (Flax's parent and name). A module without its own == has
// none (it does not silently compare through the base).
//
// Why the pragma below: a module is an aggregate with a (CRTP) base class, and GCC (12, 13)
// warns under -Wextra that `Dense{.features = 3}` leaves the base "uninitialized" (clang does
// not). The base is empty, so the warning is noise; it is switched off for the rest of any
// translation unit that includes loom's nn headers, so user code stays warning-free.
#pragma once
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "loom/array.hpp"
#include "loom/core/scope.hpp"
#include "loom/nn/initializers.hpp"
#include "loom/nn/module_call.hpp"
#include "loom/nn/module_hash.hpp"
#include "loom/nn/module_options.hpp"
#include "loom/numpy/axes.hpp"
#include "loom/random.hpp"
#include "loom/tree.hpp"

namespace loom::nn {

using core::Variable;

/// A submodule instance bound to its scope: calls share the submodule's variables. Made by
/// child(); Flax's module instance (`d = nn.Dense(3)` in a compact method, `self.d = ...` in
/// setup). A Child is also how a shared instance is passed to another module, as Flax's
/// `Encoder(shared_embedding=self.shared_embedding)`: a field `nn::Child<nn::Embed> embed;`
/// set to the parent's handle; calls through it use the variables at the path where the
/// instance was created.
///   auto d = child(nn::Dense{.features = 3});   loom::Array y = d(d(x));
///   auto enc = child("encoder", Encoder{});    auto z = enc(&Encoder::encode, x);
///   auto embed = child("shared_embedding", nn::Embed{.num_embeddings = 10, .features = 4});
///   auto h = Encoder{.embed = embed}(tokens);   // Encoder's call runs embed(tokens)
/// A handle lives as long as the init/apply/bind call that made it: used after that, it raises
/// Flax's InvalidScopeError (never a dangling access).
template <typename M>
class Child {
 public:
  /// An empty handle (a field not set yet); calling it is a loom::Error.
  Child() = default;
  Child(M module, core::Scope* scope)
      : module_(std::move(module)),
        scope_(scope),
        alive_(scope->liveness()),
        name_(scope->name()) {}
  /// Runs M::call(args...) (or the method selected first) in the submodule's scope.
  template <typename... Args>
  decltype(auto) operator()(Args&&... args) const {
    return detail::run_in(checked_scope(), module_, std::forward<Args>(args)...);
  }
  const M& module() const { return module_; }
  const M* operator->() const { return &module_; }
  core::Scope& scope() const { return checked_scope(); }
  /// "/ResidualBlock_0/Dropout_0"
  std::string path() const { return checked_scope().path_text(); }
  /// Handles compare as Flax's bound modules: equal fields and the same place (the scope: Flax's
  /// parent and name). Flax refuses to hash a module that holds variables, so no std::hash.
  friend bool operator==(const Child& a, const Child& b) requires std::equality_comparable<M> {
    return a.scope_ == b.scope_ && a.module_ == b.module_;
  }

 private:
  core::Scope& checked_scope() const {
    if (scope_ == nullptr || alive_.expired()) [[unlikely]] {
      detail::throw_dead_handle(name_, scope_ == nullptr);
    }
    return *scope_;
  }
  M module_{};
  core::Scope* scope_ = nullptr;
  std::weak_ptr<const void> alive_;
  std::string name_;
};

/// A module bound to variables (and rngs) for interactive use, as Flax's module.bind(...).
///   auto bound = model.bind(variables);
///   loom::Array y = bound(x);   loom::Array z = bound(&Model::encode, x);
template <typename M>
class Bound {
 public:
  Bound(M module, std::shared_ptr<core::Scope> root)
      : module_(std::move(module)), root_(std::move(root)) {}
  template <typename... Args>
  decltype(auto) operator()(Args&&... args) const {
    return detail::run_in(*root_, module_, std::forward<Args>(args)...);
  }
  /// The bound variables (with whatever mutable collections the calls changed).
  Tree variables() const { return root_->variables(); }
  const M& module() const { return module_; }
  const M* operator->() const { return &module_; }
  core::Scope& scope() const { return *root_; }

 private:
  M module_;
  std::shared_ptr<core::Scope> root_;
};

/// The CRTP base of every module: operator() (call as a submodule), init/apply/bind, and the
/// helpers a call uses (param, variable, make_rng, sow, perturb, child).
template <typename Derived>
class Module {
 public:
  /// The module type this base belongs to (what nn::Extends and the subclassing check read).
  using loom_module_type = Derived;

  /// The empty base compares equal, so a module's defaulted operator== compares its fields.
  /// Only a Module<Derived> matches: a module without its own == is not comparable (rather
  /// than every two of it comparing equal through this base).
  template <std::same_as<Module> T>
  bool operator==(const T&) const {
    return true;
  }

  /// Calls the module as a new submodule of the running module, auto-named
  /// "<TypeName>_<k>" (Flax's `nn.Dense(3)(x)` inside a compact method). A method pointer
  /// first runs that method instead of call.
  template <typename... Args>
  decltype(auto) operator()(Args&&... args) const {
    core::Scope& scope = detail::new_auto_child(detail::type_name<Derived>());
    return detail::run_in(scope, self(), std::forward<Args>(args)...);
  }

  // ---- init ----
  /// Initializes the variables: init(key, args...) ({"params": key}) or init(rngs, args...).
  /// A method pointer first initializes through that method.
  ///   loom::Tree variables = model.init(loom::random::key(0), x);
  ///   model.init(key, {.mutable_collections = true, .capture_intermediates = true}, x);
  template <typename... Args>
  Tree init(const Rngs& rngs, Args&&... args) const {
    if constexpr (detail::first_is_v<InitOptions, Args...>) {
      return init_impl(rngs, std::forward<Args>(args)...).second;
    } else {
      const InitOptions defaults;
      return init_impl(rngs, defaults, std::forward<Args>(args)...).second;
    }
  }
  template <typename... Args>
  Tree init(const random::Key& key, Args&&... args) const {
    return init(Rngs{{"params", key}}, std::forward<Args>(args)...);
  }
  template <typename... Args>
  Tree init(const Rngs& rngs, const InitOptions& options, Args&&... args) const {
    return init_impl(rngs, options, std::forward<Args>(args)...).second;
  }
  template <typename... Args>
  Tree init(const random::Key& key, const InitOptions& options, Args&&... args) const {
    return init_impl(Rngs{{"params", key}}, options, std::forward<Args>(args)...).second;
  }
  /// (output, variables) of an init run.
  template <typename... Args>
  auto init_with_output(const Rngs& rngs, Args&&... args) const {
    if constexpr (detail::first_is_v<InitOptions, Args...>) {
      return init_impl(rngs, std::forward<Args>(args)...);
    } else {
      const InitOptions defaults;
      return init_impl(rngs, defaults, std::forward<Args>(args)...);
    }
  }
  template <typename... Args>
  auto init_with_output(const random::Key& key, Args&&... args) const {
    return init_with_output(Rngs{{"params", key}}, std::forward<Args>(args)...);
  }
  template <typename... Args>
  auto init_with_output(const Rngs& rngs, const InitOptions& options, Args&&... args) const {
    return init_impl(rngs, options, std::forward<Args>(args)...);
  }
  template <typename... Args>
  auto init_with_output(const random::Key& key, const InitOptions& options, Args&&... args) const {
    return init_impl(Rngs{{"params", key}}, options, std::forward<Args>(args)...);
  }
  /// An eval_shape-style init: the variables tree with the right paths, shapes and dtypes,
  /// without running any initializer or drawing any random number. Params are zeros on
  /// untouched pages (Array::untouched_zeros), so they commit no physical memory; the forward
  /// pass still runs (on those zeros) to find the shapes of later layers.
  ///   for (auto& [path, leaf] : loom::tree_leaves_with_path(model.init_shapes(key, x))) ...
  template <typename... Args>
  Tree init_shapes(const Rngs& rngs, Args&&... args) const {
    auto root = make_root(nullptr, rngs, CollectionFilter::deny({"intermediates"}), true, true);
    detail::run_in(*root, self(), std::forward<Args>(args)...);
    return root->mutable_variables();
  }
  template <typename... Args>
  Tree init_shapes(const random::Key& key, Args&&... args) const {
    return init_shapes(Rngs{{"params", key}}, std::forward<Args>(args)...);
  }

  // ---- apply ----
  /// Runs call(args...) (or the method pointer given first) with the given variables.
  ///   loom::Array y = model.apply(variables, x);
  ///   loom::Array y2 = model.apply(variables, {.rngs = {{"dropout", key}}}, x, true);
  template <typename... Args>
  decltype(auto) apply(const Tree& variables, Args&&... args) const {
    if constexpr (detail::first_is_v<ApplyOptions, Args...>) {
      return apply_impl(variables, std::forward<Args>(args)...);
    } else {
      return apply_impl(variables, ApplyOptions{}, std::forward<Args>(args)...);
    }
  }
  template <typename... Args>
  decltype(auto) apply(const Tree& variables, const ApplyOptions& options, Args&&... args) const {
    return apply_impl(variables, options, std::forward<Args>(args)...);
  }
  /// apply with mutable collections: (output, the mutable collections after the run).
  ///   auto [y, updates] = model.apply_mutable(variables, {.mutable_collections =
  ///                                                       {"batch_stats"}}, x, true);
  template <typename... Args>
  auto apply_mutable(const Tree& variables, const ApplyOptions& options, Args&&... args) const {
    core::check_variables(variables);
    return run_root(&variables, options.rngs, options.mutable_collections,
                    options.capture_intermediates, false, std::forward<Args>(args)...);
  }
  /// The module bound to a copy of `variables` (Flax's module.bind).
  Bound<Derived> bind(const Tree& variables, Rngs rngs = {},
                      CollectionFilter mutable_collections = false) const {
    std::shared_ptr<core::Scope> root =
        core::bind(variables, std::move(rngs), std::move(mutable_collections));
    root->set_module_type(detail::type_name<Derived>());
    return Bound<Derived>(self(), std::move(root));
  }

 protected:
  // ---- helpers for call(): they act on the running module's scope ----
  /// self.param(name, init, shape, dtype)
  Array param(const std::string& name, const initializers::Initializer& init, const Shape& shape,
              DType dtype = DType::float32) const {
    return scope("param").param(name, init, shape, dtype);
  }
  /// A parameter of any structure, made by init(key).
  Tree param(const std::string& name, const std::function<Tree(const random::Key&)>& init) const {
    return scope("param").param(name, init);
  }
  /// self.variable(collection, name, init): read with .value(), write with .set_value().
  Variable variable(const std::string& collection, const std::string& name,
                    const std::function<Tree()>& init = nullptr) const {
    return scope("variable").variable(collection, name, init);
  }
  bool has_variable(const std::string& collection, const std::string& name) const {
    return scope("has_variable").has_variable(collection, name);
  }
  bool is_mutable_collection(const std::string& collection) const {
    return scope("is_mutable_collection").is_mutable_collection(collection);
  }
  bool has_rng(const std::string& stream) const { return scope("has_rng").has_rng(stream); }
  random::Key make_rng(const std::string& stream = "params") const {
    return scope("make_rng").make_rng(stream);
  }
  bool is_initializing() const { return scope("is_initializing").is_initializing(); }
  /// self.sow(collection, name, value): appends to a tuple (a dict "0", "1", ...) when the
  /// collection is mutable; returns whether it stored anything.
  bool sow(const std::string& collection, const std::string& name, const Tree& value) const;
  /// sow with Flax's custom init_fn / reduce_fn.
  bool sow(const std::string& collection, const std::string& name, const Tree& value,
           const std::function<Tree(const Tree& acc, const Tree& value)>& reduce_fn,
           const std::function<Tree()>& init_fn) const;
  /// self.perturb(name, value): adds a zero variable whose gradient is d loss / d value.
  Array perturb(const std::string& name, const Array& value,
                const std::string& collection = "perturbations") const;
  /// A named submodule (setup style, or Flax's `name=`). A declaration is a place in the
  /// source: the same child(name, ...) reached again (a setup-style accessor called twice, in
  /// one call or the next) returns the same submodule and variables; the same name bound from
  /// another place in the same call is Flax's NameInUseError.
  ///   auto dropout() const { return child("dropout", nn::Dropout{.rate = drop_rate}); }
  template <typename M>
  Child<M> child(const std::string& name, M module,
                 std::source_location site = std::source_location::current()) const {
    detail::check_module_type<M>();
    core::Scope& parent = scope("child");
    core::Scope* s =
        &detail::named_child(parent, name, detail::type_name<M>(), detail::site_of(site));
    return Child<M>(std::move(module), s);
  }
  /// An auto-named submodule instance ("Dense_0"), named now as Flax names `nn.Dense(3)` at
  /// construction; keep the handle to call it more than once.
  template <typename M>
  Child<M> child(M module) const {
    detail::check_module_type<M>();
    scope("child");
    core::Scope* s = &detail::new_auto_child(detail::type_name<M>());
    return Child<M>(std::move(module), s);
  }
  /// Flax's nn.compact_name_scope: runs fn() with a named scope `name` of this module, so a
  /// method other than call can create params and submodules under its own name (two such
  /// methods do not collide). Reached again, the scope is reused.
  ///   Array up(const Array& x) const {
  ///     return compact_name_scope("up", [&] { return nn::Dense{.features = 3}(x); });
  ///   }   // params/up/Dense_0/...
  template <typename F>
  decltype(auto) compact_name_scope(
      const std::string& name, F&& fn,
      std::source_location site = std::source_location::current()) const {
    core::Scope& s = detail::named_child(scope("compact_name_scope"), name,
                                         detail::type_name<Derived>(), detail::site_of(site));
    detail::FrameGuard guard(s, &self());
    return std::forward<F>(fn)();
  }
  /// The running module's scope (the functional core underneath).
  core::Scope& scope(const char* what = "scope") const {
    return detail::running_scope(&self(), detail::type_name<Derived>(), what);
  }
  /// The running module's path, "/ResidualBlock_0/Dropout_0".
  std::string path() const { return scope("path").path_text(); }

 private:
  const Derived& self() const { return static_cast<const Derived&>(*this); }
  template <typename... Args>
  decltype(auto) apply_impl(const Tree& variables, const ApplyOptions& options,
                            Args&&... args) const {
    if (!options.mutable_collections.empty()) {
      throw Error("apply: mutable collections " + options.mutable_collections.str() +
                  " were requested; use apply_mutable, which returns (output, updated "
                  "collections)");
    }
    if (options.capture_intermediates.enabled()) {
      throw Error(
          "apply: capture_intermediates returns the captures in the \"intermediates\" "
          "collection; use apply_mutable, which returns (output, updated collections)");
    }
    core::check_variables(variables);
    auto root = make_root(&variables, options.rngs, false, false, false);
    return detail::run_in(*root, self(), std::forward<Args>(args)...);
  }
  template <typename... Args>
  auto init_impl(const Rngs& rngs, const InitOptions& options, Args&&... args) const {
    return run_root(nullptr, rngs, options.mutable_collections, options.capture_intermediates, true,
                    std::forward<Args>(args)...);
  }
  /// One init/apply_mutable run: (output, mutable collections); capture_intermediates makes
  /// "intermediates" mutable too, as Flax's union_filters(mutable, "intermediates").
  template <typename... Args>
  auto run_root(const Tree* variables, const Rngs& rngs, CollectionFilter mutable_collections,
                const CaptureIntermediates& capture, bool initializing, Args&&... args) const {
    std::optional<detail::CaptureGuard> capture_guard;
    if (capture.enabled()) {
      mutable_collections = CollectionFilter::union_of(mutable_collections, "intermediates");
      capture_guard.emplace(capture);
    }
    auto root = make_root(variables, rngs, std::move(mutable_collections), initializing, false);
    using Out = decltype(detail::run_in(*root, self(), std::forward<Args>(args)...));
    if constexpr (std::is_void_v<Out>) {
      detail::run_in(*root, self(), std::forward<Args>(args)...);
      return std::make_pair(std::monostate{}, root->mutable_variables());
    } else {
      auto out = detail::run_in(*root, self(), std::forward<Args>(args)...);
      return std::make_pair(std::move(out), root->mutable_variables());
    }
  }
  static std::unique_ptr<core::Scope> make_root(const Tree* variables, const Rngs& rngs,
                                                CollectionFilter mutable_collections,
                                                bool initializing, bool abstract) {
    auto root = core::Scope::make_root(variables, rngs, std::move(mutable_collections),
                                       initializing, abstract);
    root->set_module_type(detail::type_name<Derived>());
    return root;
  }
};

/// Derives a module from another (Flax's subclassing, `class Bar(Foo)`): Bar keeps Foo's fields,
/// has its own name ("Bar_0") and its own call; base_call(...) runs Foo's call in Bar's scope
/// (Python's `super().__call__(...)`), so what Foo creates lands under Bar's path.
///   struct Bar : nn::Extends<Bar, Foo> {
///     double scale = 2;
///     Array call(const Array& x) const { return base_call(x) * scale; }
///   };
///   Bar bar{.scale = 3};
///   bar.features = 4;   // Foo's fields: designated initializers only name Bar's own fields
/// Plain `struct Bar : Foo` is refused wherever loom sees the type (child, Sequential,
/// tabulate, Extends): it would silently run Foo's call under Foo's name.
template <typename Derived, typename Base>
struct Extends : Base, Module<Derived> {
  static_assert(detail::is_module_v<Base>, "nn::Extends<Derived, Base>: Base must be a module");
  using loom_module_type = Derived;
  using Module<Derived>::operator();
  using Module<Derived>::init;
  using Module<Derived>::init_with_output;
  using Module<Derived>::init_shapes;
  using Module<Derived>::apply;
  using Module<Derived>::apply_mutable;
  using Module<Derived>::bind;

  /// Bar's defaulted operator== compares Foo's fields through this one. Without its own,
  /// `bar == bar2` is deleted rather than comparing only Foo's fields.
  template <std::same_as<Extends> T>
  bool operator==(const T& other) const {
    return base() == other.base();
  }
  template <std::same_as<Derived> T>
  bool operator==(const T&) const = delete;

 protected:
  using Module<Derived>::param;
  using Module<Derived>::variable;
  using Module<Derived>::has_variable;
  using Module<Derived>::is_mutable_collection;
  using Module<Derived>::has_rng;
  using Module<Derived>::make_rng;
  using Module<Derived>::is_initializing;
  using Module<Derived>::sow;
  using Module<Derived>::perturb;
  using Module<Derived>::child;
  using Module<Derived>::compact_name_scope;
  using Module<Derived>::scope;
  using Module<Derived>::path;
  /// Base's call (or the method selected first), in this module's scope.
  template <typename... Args>
  decltype(auto) base_call(Args&&... args) const {
    return detail::dispatch(static_cast<const Base&>(*this), std::forward<Args>(args)...);
  }
  const Base& base() const { return *this; }
};

namespace detail {
bool sow_impl(core::Scope& scope, const std::string& collection, const std::string& name,
              const Tree& value,
              const std::function<Tree(const Tree& acc, const Tree& value)>* reduce_fn,
              const std::function<Tree()>* init_fn);
Array perturb_impl(core::Scope& scope, const std::string& name, const Array& value,
                   const std::string& collection);
[[noreturn]] void throw_merge_param(std::string_view name, bool both);
}  // namespace detail

template <typename Derived>
bool Module<Derived>::sow(const std::string& collection, const std::string& name,
                          const Tree& value) const {
  return detail::sow_impl(scope("sow"), collection, name, value, nullptr, nullptr);
}
template <typename Derived>
bool Module<Derived>::sow(const std::string& collection, const std::string& name, const Tree& value,
                          const std::function<Tree(const Tree&, const Tree&)>& reduce_fn,
                          const std::function<Tree()>& init_fn) const {
  return detail::sow_impl(scope("sow"), collection, name, value, &reduce_fn, &init_fn);
}
template <typename Derived>
Array Module<Derived>::perturb(const std::string& name, const Array& value,
                               const std::string& collection) const {
  return detail::perturb_impl(scope("perturb"), name, value, collection);
}

/// Flax's nn.merge_param: the one of a (the field) and b (the call argument) that is set.
/// Both empty or both set is a loom::Error with Flax's message and the module path.
///   bool det = nn::merge_param("deterministic", deterministic_field, deterministic_arg);
template <typename T>
T merge_param(std::string_view name, const std::optional<T>& a, const std::optional<T>& b) {
  if (a.has_value() == b.has_value()) detail::throw_merge_param(name, a.has_value());
  return a.has_value() ? *a : *b;
}

}  // namespace loom::nn

// `auto [y, updates] = model.apply(variables, {.mutable_collections = ...}, x)` would otherwise
// fail with "cannot decompose inaccessible member"; this makes it say what to use instead.
template <>
struct std::tuple_size<loom::Array> : std::integral_constant<std::size_t, 2> {};
template <std::size_t I>
struct std::tuple_element<I, loom::Array> {
  using type = loom::Array;
};
namespace loom {
template <std::size_t I>
const Array& get(const Array& a) {
  static_assert(I != I,
                "a loom::Array is one array and cannot be unpacked: for (output, updated "
                "collections) call model.apply_mutable(...) instead of model.apply(...)");
  return a;
}
}  // namespace loom
