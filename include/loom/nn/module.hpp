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
// Mapping from Flax:
//   nn.Dense(3)(x)  (compact)          nn::Dense{.features = 3}(x)   a new submodule per call,
//                                      auto-named <TypeName>_<k>, one counter per type per parent
//   d = nn.Dense(3); d(x); d(x)        auto d = child(nn::Dense{.features = 3}); d(x); d(x);
//                                      (named at child(), shares its variables between calls)
//   nn.Dense(3, name="out")(x)         child("out", nn::Dense{.features = 3})(x)
//   setup: self.dropout = nn.Dropout(r)   auto dropout() const {
//                                          return child("dropout", nn::Dropout{.rate = r}); }
//                                      every dropout() reaches the same submodule "dropout"
//   partial(nn.Dropout, rate=r)        nn::Dropout{.rate = r}: a module value IS a template;
//                                      copy it, set more fields, call it (or child() it)
//   self.norm(name="norm_proj")(y)     child("norm_proj", norm)(y)
//   self.norm(scale_init=zeros)(y)     auto n = norm; n.scale_init = zeros; n(y);
//   model.apply(v, x, method=M.encode) model.apply(v, &M::encode, x)
//   model.apply(v, x, mutable=["bs"])  auto [y, updates] = model.apply_mutable(
//                                          v, {.mutable_collections = {"bs"}}, x);
//
// child("name", m) is a declaration: binding the same name to the same module type again (in
// the same call or a later one) reaches the same submodule; a different type, or a name used by
// a param/variable, is a NameInUseError. A template called twice creates two submodules.
//
// Why the pragma below: a module is an aggregate with a (CRTP) base class, and GCC (12, 13)
// warns under -Wextra that `Dense{.features = 3}` leaves the base "uninitialized" (clang does
// not). The base is empty, so the warning is noise; it is switched off for the rest of any
// translation unit that includes loom's nn headers, so user code stays warning-free.
#pragma once
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "loom/array.hpp"
#include "loom/core/scope.hpp"
#include "loom/nn/initializers.hpp"
#include "loom/random.hpp"
#include "loom/tree.hpp"

namespace loom::nn {

using core::CollectionFilter;
using core::Rngs;
using core::Variable;

/// Options of apply(): rng streams and the mutable collections (apply_mutable only).
///   model.apply(variables, {.rngs = {{"dropout", key}}}, x, true);
struct ApplyOptions {
  Rngs rngs;
  CollectionFilter mutable_collections;
};

template <typename Derived>
class Module;
template <typename M>
class Child;
template <typename M>
class Bound;

namespace detail {

/// "loom::nn::Dense" -> "Dense": the text after "T = " in a __PRETTY_FUNCTION__, without
/// namespaces, enclosing functions or template arguments.
std::string parse_type_name(std::string_view pretty_function);

/// The class name Flax would use for T (e.g. "Dense", "ResidualBlock").
template <typename T>
const std::string& type_name() {
  static const std::string name = parse_type_name(__PRETTY_FUNCTION__);
  return name;
}

/// The module running on this thread and its scope (set by init/apply/bind and module calls).
struct Frame {
  core::Scope* scope;
  const void* module;
};
/// Makes (scope, module) the running frame for the guard's lifetime; rewinds the scope, so a
/// module called again names its submodules and params afresh (Flax rewinds after each call).
class FrameGuard {
 public:
  FrameGuard(core::Scope& scope, const void* module);
  ~FrameGuard();
  FrameGuard(const FrameGuard&) = delete;
  FrameGuard& operator=(const FrameGuard&) = delete;
};
/// The running module's scope; `module` must be the running module (a
/// CallCompactUnboundModuleError outside init/apply/bind, a loom::Error for another module).
core::Scope& running_scope(const void* module, const std::string& type, const char* what);
/// The running scope or nullptr.
core::Scope* current_scope();
/// A new auto-named child of the running scope ("Dense_0", "Dense_1", ...).
core::Scope& new_auto_child(const std::string& type);
/// The child `name` of the running scope, declared (or re-declared) for a module of `type`.
core::Scope& named_child(core::Scope& parent, const std::string& name, const std::string& type);
/// " (module \"/a/b\")" for the running module, "" outside any.
std::string module_path_suffix();

// ---- nn::tabulate's call recorder -----------------------------------------------------------
struct CallRecord {
  std::string path;
  std::string type;
  std::string inputs;
  std::string outputs;
};
std::vector<CallRecord>* recorder();  // non-null while tabulate runs
void set_recorder(std::vector<CallRecord>* recorder);
std::size_t begin_record(const core::Scope& scope, std::string inputs);
void end_record(std::size_t index, std::string outputs);

std::string describe(const Array& x);
std::string describe(const Tree& t);
inline std::string describe(bool b) {
  return b ? "True" : "False";
}
template <typename T>
std::string describe(const T& v) {
  if constexpr (std::is_arithmetic_v<T>) {
    return std::to_string(v);
  } else if constexpr (requires {
                         v.has_value();
                         *v;
                       }) {
    return v.has_value() ? describe(*v) : std::string("None");
  } else {
    return "-";
  }
}
template <typename... Args>
std::string describe_args(const Args&... args) {
  std::string s;
  ((s += (s.empty() ? "" : ", ") + describe(args)), ...);
  return s;
}

/// Runs a module's call (or the method pointer given first) in `scope`.
template <typename M, typename... Args>
decltype(auto) dispatch(const M& m, Args&&... args) {
  return m.call(std::forward<Args>(args)...);
}
template <typename M, typename R, typename C, typename... P, typename... Args>
decltype(auto) dispatch(const M& m, R (C::*method)(P...) const, Args&&... args) {
  static_assert(std::is_base_of_v<C, M>, "the method must belong to the module");
  return (m.*method)(std::forward<Args>(args)...);
}

template <typename M, typename... Args>
decltype(auto) run_in(core::Scope& scope, const M& m, Args&&... args) {
  FrameGuard guard(scope, &m);
  if (recorder() == nullptr) [[likely]] {
    return dispatch(m, std::forward<Args>(args)...);
  }
  const std::size_t index = begin_record(scope, describe_args(args...));
  using Out = decltype(dispatch(m, std::forward<Args>(args)...));
  if constexpr (std::is_void_v<Out>) {
    dispatch(m, std::forward<Args>(args)...);
    end_record(index, "-");
  } else {
    decltype(auto) out = dispatch(m, std::forward<Args>(args)...);
    end_record(index, describe(out));
    return out;
  }
}

template <typename T>
constexpr bool is_module_v = std::is_base_of_v<Module<T>, T>;

template <typename First, typename... Rest>
constexpr bool first_is_options_v = std::is_same_v<std::decay_t<First>, ApplyOptions>;

}  // namespace detail

/// A submodule bound to its scope: calls share the submodule's variables. Made by child().
/// It lives as long as the init/apply/bind call that made it; do not keep it beyond that.
///   auto d = child(nn::Dense{.features = 3});   loom::Array y = d(d(x));
///   auto enc = child("encoder", Encoder{});    auto z = enc(&Encoder::encode, x);
template <typename M>
class Child {
 public:
  Child(M module, core::Scope* scope) : module_(std::move(module)), scope_(scope) {}
  /// Runs M::call(args...) (or the method pointer given first) in the submodule's scope.
  template <typename... Args>
  decltype(auto) operator()(Args&&... args) const {
    return detail::run_in(*scope_, module_, std::forward<Args>(args)...);
  }
  const M& module() const { return module_; }
  const M* operator->() const { return &module_; }
  core::Scope& scope() const { return *scope_; }
  /// "/ResidualBlock_0/Dropout_0"
  std::string path() const { return scope_->path_text(); }

 private:
  M module_;
  core::Scope* scope_;
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
  template <typename... Args>
  Tree init(const Rngs& rngs, Args&&... args) const {
    auto root = make_root(nullptr, rngs, CollectionFilter::deny({"intermediates"}), true, false);
    detail::run_in(*root, self(), std::forward<Args>(args)...);
    return root->mutable_variables();
  }
  template <typename... Args>
  Tree init(const random::Key& key, Args&&... args) const {
    return init(Rngs{{"params", key}}, std::forward<Args>(args)...);
  }
  /// (output, variables) of an init run.
  template <typename... Args>
  auto init_with_output(const Rngs& rngs, Args&&... args) const {
    auto root = make_root(nullptr, rngs, CollectionFilter::deny({"intermediates"}), true, false);
    auto out = detail::run_in(*root, self(), std::forward<Args>(args)...);
    return std::make_pair(std::move(out), root->mutable_variables());
  }
  template <typename... Args>
  auto init_with_output(const random::Key& key, Args&&... args) const {
    return init_with_output(Rngs{{"params", key}}, std::forward<Args>(args)...);
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
    if constexpr ((sizeof...(Args) > 0) && detail::first_is_options_v<Args...>) {
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
    auto root = make_root(&variables, options.rngs, options.mutable_collections, false, false);
    auto out = detail::run_in(*root, self(), std::forward<Args>(args)...);
    return std::make_pair(std::move(out), root->mutable_variables());
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
  /// A named submodule (setup style, or Flax's `name=`): the same name reaches the same
  /// submodule and variables every time it is bound.
  ///   auto dropout() const { return child("dropout", nn::Dropout{.rate = drop_rate}); }
  template <typename M>
  Child<M> child(const std::string& name, M module) const {
    static_assert(detail::is_module_v<M>, "child() takes an nn::Module value");
    core::Scope& parent = scope("child");
    core::Scope* s = &detail::named_child(parent, name, detail::type_name<M>());
    return Child<M>(std::move(module), s);
  }
  /// An auto-named submodule instance ("Dense_0"), named now as Flax names `nn.Dense(3)` at
  /// construction; keep the handle to call it more than once.
  template <typename M>
  Child<M> child(M module) const {
    static_assert(detail::is_module_v<M>, "child() takes an nn::Module value");
    scope("child");
    core::Scope* s = &detail::new_auto_child(detail::type_name<M>());
    return Child<M>(std::move(module), s);
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
    core::check_variables(variables);
    auto root = make_root(&variables, options.rngs, false, false, false);
    return detail::run_in(*root, self(), std::forward<Args>(args)...);
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
