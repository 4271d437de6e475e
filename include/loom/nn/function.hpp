// loom::nn::Function<R(Args...)>: a callable field of a module (an initializer, an activation,
// Bidirectional's merge_fn) that can be compared and hashed, so that modules compare by their
// fields as Flax's dataclass modules do.
//
//   nn::Function<Array(const Array&)> act = nn::relu;          // compares by function address
//   act == nn::Function<Array(const Array&)>(nn::relu);        // true
//   auto mine = nn::Function<Array(const Array&)>([](const Array& x) { return x * 2.0; });
//   auto copy = mine;   copy == mine;                          // true: the same callable
//   nn::Function<Array(const Array&)>([](const Array& x) { return x * 2.0; }) == mine;  // false
//   nn::Function<Array(const Array&)>("double", [](const Array& x) { return x * 2.0; });
//                                                              // compares by "double"
//
// Equality, in order: a Function with a description (the initializer factories give every
// initializer one, e.g. "normal(stddev=0.01)") equals exactly the Functions with the same
// description; else one made from a plain function pointer equals those made from the same
// pointer; else (a lambda or other callable) it equals only its own copies (they share the
// callable). C++ cannot compare two lambdas, and Python cannot either: Flax compares such
// fields by identity. The hash follows the same key, so equal Functions hash equal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "loom/error.hpp"

namespace loom::nn {

template <typename Signature>
class Function;

template <typename R, typename... Args>
class Function<R(Args...)> {
 public:
  using Pointer = R (*)(Args...);

  /// An empty Function (calling it is a loom::Error); equal to every other empty one.
  Function() = default;
  Function(std::nullptr_t) {}  // NOLINT: as std::function
  /// From a plain function (an overload set resolves here): compares by the address.
  Function(Pointer fp) : fp_(fp) {}  // NOLINT: implicit, as std::function
  /// From any other callable: compares equal to its copies only.
  template <typename F>
  requires(!std::is_same_v<std::decay_t<F>, Function> &&
           !std::is_same_v<std::decay_t<F>, Pointer> &&
           std::is_invocable_r_v<R, std::decay_t<F>&, Args...>)
      Function(F f)  // NOLINT: implicit, as std::function
      : fn_(std::make_shared<const std::function<R(Args...)>>(std::move(f))) {}
  /// A callable with a canonical description: equal to every Function with that description,
  /// so the description must name everything that determines the result.
  template <typename F>
  requires(std::is_invocable_r_v<R, std::decay_t<F>&, Args...>)
      Function(std::string description, F f)
      : fn_(std::make_shared<const std::function<R(Args...)>>(std::move(f))),
        description_(std::move(description)) {}

  R operator()(Args... args) const {
    if (fp_ != nullptr) return fp_(std::forward<Args>(args)...);
    if (fn_ == nullptr) [[unlikely]] {
      throw Error("nn::Function: called an empty function (a callable field that was never set)");
    }
    return (*fn_)(std::forward<Args>(args)...);
  }
  explicit operator bool() const { return fp_ != nullptr || fn_ != nullptr; }

  /// The canonical description ("" for a plain function or a lambda without one).
  const std::string& description() const { return description_; }

  friend bool operator==(const Function& a, const Function& b) {
    if (!a.description_.empty() || !b.description_.empty()) {
      return a.description_ == b.description_;
    }
    if (a.fp_ != nullptr || b.fp_ != nullptr) return a.fp_ == b.fp_;
    return a.fn_ == b.fn_;
  }
  friend bool operator==(const Function& a, std::nullptr_t) { return !a; }

  /// A hash consistent with ==.
  std::size_t hash() const {
    if (!description_.empty()) return std::hash<std::string>{}(description_);
    if (fp_ != nullptr) return std::hash<std::uintptr_t>{}(reinterpret_cast<std::uintptr_t>(fp_));
    return std::hash<const void*>{}(fn_.get());
  }

 private:
  Pointer fp_ = nullptr;
  std::shared_ptr<const std::function<R(Args...)>> fn_;
  std::string description_;
};

}  // namespace loom::nn

template <typename Signature>
struct std::hash<loom::nn::Function<Signature>> {
  std::size_t operator()(const loom::nn::Function<Signature>& f) const noexcept { return f.hash(); }
};
