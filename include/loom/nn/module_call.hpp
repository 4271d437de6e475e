// The machinery under nn::Module (namespace loom::nn::detail): Flax's class names, the stack of
// running modules, naming of submodules, method selection and dispatch, and the hooks behind
// nn::tabulate and capture_intermediates. Users need none of it directly; layer writers may use
// detail::module_path_suffix() in error messages.
#pragma once
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif

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
#include <vector>

#include "loom/array.hpp"
#include "loom/core/scope.hpp"
#include "loom/nn/module_options.hpp"
#include "loom/tree.hpp"

namespace loom::nn {

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

/// The class name Flax would use for T (e.g. "Dense", "ResidualBlock"); a type can name itself
/// with `static std::string loom_type_name()` (nn::Scan<Dense> is Flax's "ScanDense").
template <typename T>
const std::string& type_name() {
  if constexpr (requires { T::loom_type_name(); }) {
    static const std::string name = T::loom_type_name();
    return name;
  } else {
    static const std::string name = parse_type_name(__PRETTY_FUNCTION__);
    return name;
  }
}

/// "&Model::encode" -> "encode", from a __PRETTY_FUNCTION__ naming `Fn = &...`.
std::string parse_method_name(std::string_view pretty_function);
template <auto Fn>
const std::string& method_name() {
  static const std::string name = parse_method_name(__PRETTY_FUNCTION__);
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
/// The running module's scope; `module` must be the running module (outside init/apply/bind:
/// Flax's error for `what`, e.g. "Can't use RNGs on unbound modules" for make_rng; a
/// loom::Error for another module).
core::Scope& running_scope(const void* module, const std::string& type, const char* what);
/// The running scope or nullptr.
core::Scope* current_scope();
/// A new auto-named child of the running scope ("Dense_0", "Dense_1", ...).
core::Scope& new_auto_child(const std::string& type);
/// The child `name` of `parent`, declared at `site` for a module of `type`: the same name,
/// type and site again reach the same child; anything else is a NameInUseError.
core::Scope& named_child(core::Scope& parent, const std::string& name, const std::string& type,
                         core::DeclarationSite site = {});
/// An InvalidScopeError for a handle whose init/apply/bind has returned, or an Error for an
/// empty (default-constructed) handle.
[[noreturn]] void throw_dead_handle(const std::string& name, bool empty);
inline core::DeclarationSite site_of(const std::source_location& loc) {
  return {loc.file_name(), loc.line(), loc.column()};
}
/// " (module \"/a/b\")" for the running module, "" outside any.
std::string module_path_suffix();

// ---- nn::tabulate's call recorder -----------------------------------------------------------
struct CallRecord {
  std::string path;
  std::string type;
  std::string method;
  std::string inputs;
  std::string outputs;
};
std::vector<CallRecord>* recorder();  // non-null while tabulate runs
void set_recorder(std::vector<CallRecord>* recorder);
std::size_t begin_record(const core::Scope& scope, std::string method, std::string inputs);
void end_record(std::size_t index, std::string outputs);

// ---- capture_intermediates ----
const CaptureIntermediates* capture();  // non-null while an init/apply captures
struct CaptureGuard {
  explicit CaptureGuard(const CaptureIntermediates& c);
  ~CaptureGuard();
  CaptureGuard(const CaptureGuard&) = delete;
  CaptureGuard& operator=(const CaptureGuard&) = delete;
  const CaptureIntermediates* previous;
};
/// True while tabulate records or an apply captures (the slow path of run_in).
inline bool hooks_active() {
  return recorder() != nullptr || capture() != nullptr;
}
void capture_output(core::Scope& scope, const std::string& method, const Tree& out);

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

/// How the first argument of a module call selects what runs: call() (none), a method
/// pointer, nn::method<&M::f>, or a function receiving the module (Flax's
/// `method=lambda m, x: ...`).
template <typename M, typename F, typename... Rest>
constexpr bool is_module_fn_v =
    !std::is_member_pointer_v<std::decay_t<F>> && std::is_invocable_v<F, const M&, Rest...>;
template <typename T>
struct is_method_tag : std::false_type {};
template <auto Fn>
struct is_method_tag<Method<Fn>> : std::true_type {};

/// The method name run by m(args...), as Flax names it ("__call__", "encode", "<lambda>").
template <typename M, typename... Args>
std::string method_name_of() {
  if constexpr (sizeof...(Args) == 0) {
    return "__call__";
  } else {
    using First = std::decay_t<std::tuple_element_t<0, std::tuple<Args...>>>;
    if constexpr (std::is_member_function_pointer_v<First>) {
      return "method";
    } else if constexpr (is_method_tag<First>::value) {
      return []<auto Fn>(Method<Fn>) {
        return method_name<Fn>();
      }
      (First{});
    } else if constexpr ([]<typename F, typename... R>(std::type_identity<F>,
                                                       std::type_identity<R>...) {
                           return is_module_fn_v<M, F, R...>;
                         }(std::type_identity<Args>{}...)) {
      return "<lambda>";
    } else {
      return "__call__";
    }
  }
}

/// Runs a module's call (or the method selected first) on m.
template <typename M, typename... Args>
decltype(auto) dispatch(const M& m, Args&&... args) {
  return m.call(std::forward<Args>(args)...);
}
template <typename M, typename R, typename C, typename... P, typename... Args>
decltype(auto) dispatch(const M& m, R (C::*method)(P...) const, Args&&... args) {
  static_assert(std::is_base_of_v<C, M>, "the method must belong to the module");
  return (m.*method)(std::forward<Args>(args)...);
}
template <typename M, auto Fn, typename... Args>
decltype(auto) dispatch(const M& m, Method<Fn>, Args&&... args) {
  return (m.*Fn)(std::forward<Args>(args)...);
}
template <typename M, typename F, typename... Args>
requires is_module_fn_v<M, F, Args...>
decltype(auto) dispatch(const M& m, F&& fn, Args&&... args) {
  return std::forward<F>(fn)(m, std::forward<Args>(args)...);
}

/// The call's inputs for tabulate, without the method selector.
template <typename M, typename... Args>
std::string describe_inputs(const Args&... args) {
  if constexpr (sizeof...(Args) > 0) {
    if (method_name_of<M, Args...>() != "__call__") {
      return [](const auto&, const auto&... rest) { return describe_args(rest...); }(args...);
    }
  }
  return describe_args(args...);
}

template <typename M, typename... Args>
decltype(auto) run_hooked(core::Scope& scope, const M& m, Args&&... args) {
  const std::string method = method_name_of<M, Args...>();
  const bool recording = recorder() != nullptr;
  const std::size_t index =
      recording ? begin_record(scope, method, describe_inputs<M>(args...)) : 0;
  using Out = decltype(dispatch(m, std::forward<Args>(args)...));
  if constexpr (std::is_void_v<Out>) {
    dispatch(m, std::forward<Args>(args)...);
    if (recording) end_record(index, "-");
  } else {
    decltype(auto) out = dispatch(m, std::forward<Args>(args)...);
    if (recording) end_record(index, describe(out));
    if constexpr (std::is_convertible_v<const std::decay_t<Out>&, Tree>) {
      if (capture() != nullptr && capture()->captures(scope, method)) {
        capture_output(scope, method, Tree(out));
      }
    }
    return out;
  }
}

template <typename M, typename... Args>
decltype(auto) run_in(core::Scope& scope, const M& m, Args&&... args) {
  FrameGuard guard(scope, &m);
  if (!hooks_active()) [[likely]] {
    return dispatch(m, std::forward<Args>(args)...);
  }
  return run_hooked(scope, m, std::forward<Args>(args)...);
}

/// T is a module of its own: it derives from nn::Module<T> (directly or through nn::Extends).
/// False for `struct Bar : Foo` (Foo a module), which would run Foo's call under Foo's name.
template <typename T>
constexpr bool is_module_v = std::is_base_of_v<Module<T>, T>;
template <typename T>
constexpr bool is_any_module_v = requires {
  typename T::loom_module_type;
};

template <typename M>
constexpr void check_module_type() {
  static_assert(is_module_v<M> || !is_any_module_v<M>,
                "this type derives from another module without nn::Extends: it would run the "
                "base's call under the base's name. Write struct Bar : nn::Extends<Bar, Foo>.");
  static_assert(is_module_v<M>, "expected an nn::Module value (struct M : nn::Module<M>)");
}

template <typename Opt, typename... Args>
struct first_is : std::false_type {};
template <typename Opt, typename First, typename... Rest>
struct first_is<Opt, First, Rest...> : std::is_same<std::decay_t<First>, Opt> {};
template <typename Opt, typename... Args>
constexpr bool first_is_v = first_is<Opt, Args...>::value;

}  // namespace detail

}  // namespace loom::nn
