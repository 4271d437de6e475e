// Private to loom::optim: one fused elementwise kernel per update rule, written into the buffer
// of an input that nobody else holds (out of place while a transformation records it; it binds
// as a non-differentiable primitive so that jit/vmap see it).
//
//   // trace: t <- g + decay * t, in t's buffer when t is uniquely held
//   t = detail::fused("trace", [d = decay](auto t, auto g) { return g + decltype(t)(d) * t; },
//                     std::move(t), g);
//
// `self` is taken by value: pass it with std::move so that it can be unique. Every input must
// have self's shape, or be a one-element Array wrapped in detail::bcast (a hyper-parameter that
// is a traced value: a bias correction or a learning rate computed from the step count, read
// once per kernel run, so that jit replays it with the new count); inputs of another dtype are
// converted to self's dtype (the result's dtype). The lambda gets elements of one type T (float
// or double) and returns a T.
//
//   // adam's m_hat: mu / (1 - b1 ** count), the correction an int32-count function in loom ops
//   g = detail::fused("scale_by_adam", [](auto m, auto bc) { return m / bc; }, mu, bcast(bc1));
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/dispatch.hpp"
#include "detail/primitive.hpp"
#include "loom/array.hpp"
#include "loom/tree.hpp"

namespace loom::optim::detail {

/// Throws unless two trees have the same structure (the op and what each tree is).
void check_structure(const char* op, const Tree& a, const char* a_name, const Tree& b,
                     const char* b_name);

/// A one-element operand of `fused`, broadcast against self (read once per kernel run).
struct Bcast {
  Array value;
};
inline Bcast bcast(Array value) {
  return Bcast{std::move(value)};
}

inline void check_same_shape(const char* op, const Array& self, const Array& other) {
  if (!other.valid() || other.shape() != self.shape()) {
    throw Error(std::string("optim.") + op + ": leaves must have matching shapes, got " +
                self.shape().str() + " and " +
                (other.valid() ? other.shape().str() : std::string("<empty>")));
  }
}
inline void check_same_shape(const char* op, const Array&, const Bcast& other) {
  if (!other.value.valid() || other.value.size() != 1) {
    throw Error(std::string("optim.") + op + ": a broadcast operand must have one element, got " +
                (other.value.valid() ? other.value.shape().str() : std::string("<empty>")));
  }
}

inline Array as_dtype(const Array& x, DType dtype) {
  return x.dtype() == dtype ? x : x.astype(dtype);
}

inline const Array& operand_array(const Array& x) {
  return x;
}
inline const Array& operand_array(const Bcast& x) {
  return x.value;
}

/// What the kernel loop indexes: a pointer for a full operand, the value for a broadcast one.
template <typename T, typename A>
auto operand_view(const Array& converted) {
  if constexpr (std::is_same_v<A, Bcast>)
    return converted.data<T>()[0];
  else
    return converted.data<T>();
}
template <typename T>
T element(const T* p, std::int64_t i) {
  return p[i];
}
template <typename T>
T element(T v, std::int64_t) {
  return v;
}

/// Rewraps a replayed input as the operand kind `A` it was recorded as.
template <typename A>
A rewrap(const Array& x) {
  if constexpr (std::is_same_v<A, Bcast>)
    return Bcast{x};
  else
    return x;
}

template <typename F, typename... A>
Array fused(const char* op, F f, Array self, const A&... others) {
  if (!self.valid()) throw Error(std::string("optim.") + op + ": got an empty array");
  (check_same_shape(op, self, others), ...);
  const DType dtype = self.dtype();
  if (dtype != DType::float32 && dtype != DType::float64) {
    throw Error(std::string("optim.") + op +
                ": expected floating leaves (float32 or float64), got " + dtype_name(dtype) +
                " of shape " + self.shape().str());
  }
  // In place only when this handle is the sole owner and carries no autodiff history, and no
  // transformation is recording the op (a captured input must keep its value).
  const bool transforming = loom::detail::transforming();
  Array out =
      (self.unique() && !self.node() && !transforming) ? self : Array::empty(self.shape(), dtype);
  const std::int64_t n = self.size();
  loom::detail::dispatch_float(dtype, op, [&]<typename T>() {
    auto run = [&](const T* s, const auto... o) {
      T* d = out.mutable_data<T>();
      loom::detail::parallel_for(n, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) d[i] = f(s[i], element(o, i)...);
      });
    };
    const std::vector<Array> keep{as_dtype(operand_array(others), dtype)...};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      run(self.data<T>(), operand_view<T, A>(keep[I])...);
    }
    (std::index_sequence_for<A...>{});
  });
  if (transforming) {
    // One Primitive per instantiation (the update rule's lambda type), so one name per static.
    static const loom::detail::Primitive prim{.name = op};
    std::vector<Array> inputs{self, operand_array(others)...};
    // The impl gets inputs that the replay's caller still holds (never unique), so it runs out
    // of place. Not differentiable: no VJP (optimizer updates are not differentiated through).
    // The block closure lets jit's fuser run the rule inside a fused chain (float32 only, as
    // the fuser checks): the same f on the same float values as the loop above, so the same
    // bits. A broadcast operand arrives as a block filled with its one value.
    loom::detail::BlockImpl impl{
        .impl =
            [op, f](const std::vector<Array>& in) {
              return [&]<std::size_t... I>(std::index_sequence<I...>) {
                return fused(op, f, in[0], rewrap<A>(in[I + 1])...);
              }
              (std::index_sequence_for<A...>{});
            },
        .block =
            [f](const float* const* in, float* o, std::int64_t n) {
              [&]<std::size_t... I>(std::index_sequence<I...>) {
                for (std::int64_t i = 0; i < n; ++i) o[i] = f(in[0][i], in[I + 1][i]...);
              }
              (std::index_sequence_for<A...>{});
            },
        .arity = int(1 + sizeof...(A))};
    loom::detail::bind(prim, out, inputs, std::move(impl), nullptr);
  }
  return out;
}

/// Leaves of `tree` in flattening order, with the tree emptied so the leaves can be unique.
inline std::vector<Array> take_leaves(Tree& tree, TreeDef* def = nullptr) {
  auto [leaves, d] = tree_flatten(tree);
  if (def) *def = std::move(d);
  tree = Tree();
  return std::move(leaves);
}

/// Moves the subtree `key` out of a state dict, with an error naming the transformation.
inline Tree take_field(Tree& state, const char* key, const char* op) {
  if (!state.is_dict() || !state.contains(key)) {
    throw Error(std::string("optim.") + op + ": expected a state with field \"" + key +
                "\", got:\n" + state.str());
  }
  return std::move(state.at(key));
}

/// The params, checked against the updates; a clear error when a transformation lacks them.
inline const Tree& need_params(const std::optional<Tree>& params, const Tree& updates,
                               const char* op) {
  if (!params) {
    throw Error(std::string("optim.") + op +
                ": this transformation needs the params; pass them to update(updates, state, "
                "params)");
  }
  detail::check_structure(op, updates, "updates", *params, "params");
  return *params;
}

}  // namespace loom::optim::detail
