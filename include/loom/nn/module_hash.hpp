// Flax's dataclass __hash__ for modules: nn::hash_fields combines a module's type name with its
// fields, and LOOM_NN_HASH_FIELDS declares std::hash for a module type with it, so that
// configured modules can be keys of unordered containers (as Flax modules are dict keys).
// Included by loom/nn/module.hpp; see its header comment for equality.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "loom/array.hpp"
#include "loom/nn/module_call.hpp"
#include "loom/numpy/axes.hpp"

namespace loom::nn {

namespace detail {
inline void hash_combine(std::size_t& seed, std::size_t h) {
  seed ^= h + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
}
template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};
template <typename T>
struct IsVector : std::false_type {};
template <typename T, typename A>
struct IsVector<std::vector<T, A>> : std::true_type {};
template <typename T>
struct IsPair : std::false_type {};
template <typename A, typename B>
struct IsPair<std::pair<A, B>> : std::true_type {};
template <typename T>
inline constexpr bool kNoHash = false;

/// The hash of one module field: std::hash where there is one, else Shape, numpy::Axes,
/// optional, vector and pair element-wise.
template <typename T>
std::size_t hash_value(const T& v) {
  if constexpr (requires { std::hash<T>{}(v); }) {
    return std::hash<T>{}(v);
  } else if constexpr (std::is_same_v<T, Shape>) {
    std::size_t seed = static_cast<std::size_t>(v.size());
    for (int i = 0; i < v.size(); ++i) hash_combine(seed, std::hash<std::int64_t>{}(v[i]));
    return seed;
  } else if constexpr (std::is_same_v<T, numpy::Axes>) {
    return hash_value(v.axes);
  } else if constexpr (IsOptional<T>::value) {
    return v.has_value() ? hash_value(*v) ^ 0x51ed27 : 0;
  } else if constexpr (IsVector<T>::value) {
    std::size_t seed = v.size();
    for (const auto& e : v) hash_combine(seed, hash_value(e));
    return seed;
  } else if constexpr (IsPair<T>::value) {
    std::size_t seed = hash_value(v.first);
    hash_combine(seed, hash_value(v.second));
    return seed;
  } else {
    static_assert(kNoHash<T>,
                  "loom::nn::hash_fields: this field type has no hash; give it a std::hash "
                  "specialization or leave it out (hashing fewer fields is still consistent)");
    return 0;
  }
}
}  // namespace detail

/// Flax's dataclass __hash__ for a module: its type name combined with the given fields. Any
/// subset of the fields that operator== compares gives a consistent hash; all of them, a good one.
///   std::size_t h = nn::hash_fields(mlp, mlp.hidden, mlp.drop_rate);
template <typename M, typename... Fields>
std::size_t hash_fields(const M&, const Fields&... fields) {
  std::size_t seed = std::hash<std::string>{}(detail::type_name<M>());
  (detail::hash_combine(seed, detail::hash_value(fields)), ...);
  return seed;
}

}  // namespace loom::nn

/// Declares std::hash<Type> over the given fields of `m` (at global scope, after the type):
///   struct MLP : nn::Module<MLP> {
///     std::int64_t hidden = 128;
///     double drop_rate = 0.1;
///     bool operator==(const MLP&) const = default;
///     loom::Array call(const loom::Array& x) const;
///   };
///   LOOM_NN_HASH_FIELDS(MLP, m.hidden, m.drop_rate)
///   std::unordered_set<MLP> seen{MLP{}, MLP{.hidden = 64}};
#define LOOM_NN_HASH_FIELDS(Type, ...)                              \
  template <>                                                       \
  struct std::hash<Type> {                                          \
    std::size_t operator()(const Type& m) const {                   \
      return ::loom::nn::hash_fields(m __VA_OPT__(, ) __VA_ARGS__); \
    }                                                               \
  };
