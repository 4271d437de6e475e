// Linen's lifted transformations (flax/linen/transforms.py over flax/core/lift.py): nn::scan
// and nn::vmap lift a module over an axis, with Flax's names, variables trees and rng streams.
//
//   namespace nn = loom::nn;
//   // A stack of 3 Dense layers: params/kernel (3, 4, 4), one init key per layer.
//   auto stack = nn::scan(nn::Dense{.features = 4}, {.variable_axes = {{"params", 0}},
//                                                    .split_rngs = {{"params", true}},
//                                                    .length = 3});
//   loom::Tree v = stack.init(loom::random::key(0), x);        // x: (batch, 4)
//   loom::Array y = stack.apply(v, x);                          // Dense applied 3 times
//   // An LSTM over time, its params shared by every step (Flax's nn.RNN):
//   auto lstm = nn::scan(nn::LSTMCell{.features = 2}, {.variable_broadcast = "params",
//                                                      .split_rngs = {{"params", false}}});
//   auto [carry, ys] = lstm.apply(lstm.init(key, c0, xs), c0, xs);   // xs: (time, batch, in)
//   // An ensemble of 5 Dense: params/kernel (5, in, 3), the input shared (in_axes None).
//   auto ens = nn::vmap(nn::Dense{.features = 3}, {.variable_axes = {{"params", 0}},
//                                                  .split_rngs = {{"params", true}},
//                                                  .in_axes = nn::broadcast, .axis_size = 5});
//   loom::Array ys5 = ens.apply(ens.init(key, x), x);           // (5, batch, 3)
//
// Inside a module, call them like any submodule (auto-named as Flax names the lifted class,
// "ScanDense_0", "VmapDense_0") or with child("name", ...).
//
// The scanned call is f(carry, xs...) -> (carry, ys): a target whose call returns a std::pair
// (carry, y) is scanned as Flax scans it, ys stacked on out_axes; a target whose call returns
// one value (nn::Dense) is a layer stack, carry -> carry (Flax's remat_scan body, `(fn(x),
// None)`), and the scanned call returns the final carry. xs and ys are Arrays, Trees, or
// std::pair/std::tuple of them.
//
// Semantics follow lift.py exactly, run eagerly as a loop over the axis:
// - variable_axes: {filter, axis} collections stacked on `axis` (one slice per iteration or
//   index); variable_broadcast (scan) / axis std::nullopt (vmap): shared by every iteration;
//   variable_carry (scan): each iteration sees the previous one's values. Other collections are
//   not visible inside the lifted module.
// - split_rngs: {filter, split}. A split stream's iteration i uses key i of
//   random::split(base, length) (base: the stream's key given to init/apply, or the enclosing
//   lift's), with the module path and count folded in as usual; an unsplit stream is the same
//   for every iteration; a stream matched by no filter is not visible inside.
// - rng counts: the lifted body shares the counts of the module's scope, and JAX traces it
//   once, so every iteration starts from the same counts. nn::scan (check_constancy_invariants,
//   Flax's default) traces the body twice, first to find the broadcast variables; the real pass
//   then starts from the counts after that first pass (for nn::Dense: kernel key count 3, not
//   1). loom runs that first pass too (one extra iteration) when it can change anything: when
//   a broadcast collection is mutable or an rng stream reaches the body.
// - unroll is accepted for parity; an eager loop has nothing to unroll.
// Known differences from Flax: a module handle (nn::Child) passed into the target from outside
// is not lifted (Flax lifts those scopes too; calling one inside the body uses the outer
// variables); a broadcast variable that depends on the scanned data is not detected (Flax
// raises "broadcasted variable has a data dependency"); vmap's out_axes std::nullopt and its
// shared (axis std::nullopt) mutable collections take index 0's value, which jax.vmap requires
// to be the same at every index anyway.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "loom/array.hpp"
#include "loom/core/scope.hpp"
#include "loom/nn/module.hpp"
#include "loom/numpy/manipulation.hpp"
#include "loom/tree.hpp"

namespace loom::nn {

/// Flax's nn.broadcast / in_axes None: the argument is passed whole to every iteration.
inline constexpr std::nullopt_t broadcast = std::nullopt;

/// in_axes: one axis for every argument (`0`, nn::broadcast) or one per argument
/// (`{0, nn::broadcast}`, Flax's tuple).
struct InAxes {
  InAxes(int axis) : all(axis) {}                            // NOLINT
  InAxes(std::nullopt_t) : all(std::nullopt) {}              // NOLINT
  InAxes(std::initializer_list<std::optional<int>> per_arg)  // NOLINT
      : per_arg(per_arg), is_list(true) {}
  std::optional<int> all = 0;
  std::vector<std::optional<int>> per_arg;
  bool is_list = false;
};

/// Flax's split_rngs: {stream filter, split} in order, a stream taking the first that matches.
using SplitRngs = std::vector<std::pair<core::CollectionFilter, bool>>;

/// The options of nn::scan (flax.linen.scan's arguments, same names and defaults).
struct ScanOptions {
  std::vector<std::pair<core::CollectionFilter, int>> variable_axes;
  core::CollectionFilter variable_broadcast;
  core::CollectionFilter variable_carry;
  SplitRngs split_rngs;
  InAxes in_axes = 0;
  int out_axes = 0;
  std::optional<std::int64_t> length;
  bool reverse = false;
  int unroll = 1;  // accepted; the eager loop runs step by step
  bool check_constancy_invariants = true;
};

/// The options of nn::vmap (flax.linen.vmap's arguments).
struct VmapOptions {
  std::vector<std::pair<core::CollectionFilter, std::optional<int>>> variable_axes;
  SplitRngs split_rngs;
  InAxes in_axes = 0;
  std::optional<int> out_axes = 0;
  std::optional<std::int64_t> axis_size;
};

namespace detail {

/// rng counts of a scope and its descendants (Flax's nested rng_counters dict).
struct RngCounterTree {
  std::map<std::string, std::uint64_t> counters;
  std::map<std::string, RngCounterTree> children;
};

/// One lifted call on the module's scope (lift.py's pack + scan/vmap's inner): groups the
/// variables and rngs, builds an inner root per iteration with the outer path, and publishes
/// the results. Kinds: how a group's variables flow through the iterations.
class LiftRun {
 public:
  enum class Kind { broadcast, carry, axis, shared };
  struct Group {
    core::CollectionFilter filter;
    Kind kind;
    int axis = 0;
  };
  LiftRun(core::Scope& outer, std::vector<Group> groups, const SplitRngs& split_rngs,
          const char* what);
  ~LiftRun();
  LiftRun(const LiftRun&) = delete;
  LiftRun& operator=(const LiftRun&) = delete;
  /// The sizes of the stacked (axis) variables on their axes (what vmap infers axis_size from).
  std::vector<std::int64_t> variable_axis_sizes() const;
  /// Fixes the number of iterations: checks the stacked variables, splits the rngs.
  void set_size(std::int64_t n);
  /// True when a first (shadow) pass can change anything (scan's constancy pass).
  bool shadow_pass_matters() const;
  /// The inner scope for iteration i (shadow: the constancy pass, whose outputs other than the
  /// broadcast variables are discarded).
  core::Scope& enter(std::int64_t i, bool shadow);
  void leave(std::int64_t i, bool shadow);
  /// Stacks the per-iteration variables, publishes everything mutable, writes the counts back.
  void finish();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

[[noreturn]] void throw_in_axes_count(const char* what, std::size_t axes, std::size_t args);
[[noreturn]] void throw_axis(const char* what, int axis, const Shape& shape);
std::int64_t resolve_size(const char* what, const std::vector<std::int64_t>& sizes,
                          std::optional<std::int64_t> given);
int normalize_axis(const char* what, int axis, int ndim);

// ---- slicing and stacking of arguments and outputs (Array, Tree, pair, tuple) ----
inline std::optional<std::int64_t> axis_size(const char* what, const Array& x, int axis) {
  return x.shape()[normalize_axis(what, axis, x.ndim())];
}
std::optional<std::int64_t> axis_size(const char* what, const Tree& x, int axis);
template <typename A, typename B>
std::optional<std::int64_t> axis_size(const char* what, const std::pair<A, B>& x, int axis) {
  auto a = axis_size(what, x.first, axis);
  return a ? a : axis_size(what, x.second, axis);
}
inline Array slice_at(const Array& x, std::int64_t i, int axis) {
  return numpy::index(x, i, normalize_axis("slice", axis, x.ndim()));
}
Tree slice_at(const Tree& x, std::int64_t i, int axis);
template <typename A, typename B>
std::pair<A, B> slice_at(const std::pair<A, B>& x, std::int64_t i, int axis) {
  return {slice_at(x.first, i, axis), slice_at(x.second, i, axis)};
}
inline Array stack_at(const std::vector<Array>& xs, int axis) {
  return numpy::stack(xs, axis);
}
Tree stack_at(const std::vector<Tree>& xs, int axis);
template <typename T>
requires std::is_empty_v<T> T stack_at(const std::vector<T>&, int) {
  return T{};
}
template <typename A, typename B>
std::pair<A, B> stack_at(const std::vector<std::pair<A, B>>& xs, int axis) {
  std::vector<A> a;
  std::vector<B> b;
  for (const auto& x : xs) {
    a.push_back(x.first);
    b.push_back(x.second);
  }
  return {stack_at(a, axis), stack_at(b, axis)};
}
template <typename... T>
std::tuple<T...> stack_at(const std::vector<std::tuple<T...>>& xs, int axis) {
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return std::tuple<T...>{[&] {
      std::vector<std::tuple_element_t<I, std::tuple<T...>>> v;
      for (const auto& x : xs) v.push_back(std::get<I>(x));
      return stack_at(v, axis);
    }()...};
  }
  (std::index_sequence_for<T...>{});
}

template <typename T>
struct is_pair : std::false_type {};
template <typename A, typename B>
struct is_pair<std::pair<A, B>> : std::true_type {};

/// The per-argument axes of in_axes for n arguments.
std::vector<std::optional<int>> arg_axes(const char* what, const InAxes& in_axes, std::size_t n);

template <typename X>
X arg_slice(const X& x, const std::optional<int>& axis, std::int64_t i) {
  return axis ? slice_at(x, i, *axis) : x;
}

std::vector<LiftRun::Group> scan_groups(const ScanOptions& o);
std::vector<LiftRun::Group> vmap_groups(const VmapOptions& o);

}  // namespace detail

/// flax.linen.scan over a module: see the file comment. Flax's class name is "Scan<Target>".
///   auto stack = nn::scan(nn::Dense{.features = 4},
///                         {.variable_axes = {{"params", 0}}, .split_rngs = {{"params", true}},
///                          .length = 3});
template <typename M>
struct Scan : Module<Scan<M>> {
  M target;
  ScanOptions options;

  static std::string loom_type_name() { return "Scan" + detail::type_name<M>(); }

  /// (carry, xs...) -> (carry, ys) for a target returning (carry, y); carry -> carry (xs...
  /// broadcast or scanned) for a target returning one value.
  template <typename C, typename... Xs>
  auto call(const C& init, const Xs&... xs) const {
    constexpr const char* what = "nn.scan";
    const auto axes = detail::arg_axes(what, options.in_axes, sizeof...(Xs));
    std::vector<std::int64_t> lengths;
    {
      std::size_t k = 0;
      (
          [&](const auto& x) {
            if (axes[k]) {
              if (auto n = detail::axis_size(what, x, *axes[k])) lengths.push_back(*n);
            }
            ++k;
          }(xs),
          ...);
    }
    const std::int64_t n = detail::resolve_size(what, lengths, options.length);
    detail::LiftRun run(this->scope("scan"), detail::scan_groups(options), options.split_rngs,
                        what);
    run.set_size(n);
    using R =
        std::decay_t<decltype(detail::run_in(std::declval<core::Scope&>(), target, init, xs...))>;
    auto step = [&](std::int64_t i, bool shadow, const C& c) {
      core::Scope& s = run.enter(i, shadow);
      std::size_t k = 0;
      auto slice = [&](const auto& x) { return detail::arg_slice(x, axes[k++], i); };
      std::tuple<std::decay_t<Xs>...> sliced{slice(xs)...};
      R out = std::apply([&](const auto&... a) -> R { return detail::run_in(s, target, c, a...); },
                         sliced);
      run.leave(i, shadow);
      return out;
    };
    auto index = [&](std::int64_t t) { return options.reverse ? n - 1 - t : t; };
    if (options.check_constancy_invariants && n > 0 && run.shadow_pass_matters()) {
      step(index(0), true, init);
    }
    C carry = init;
    if constexpr (detail::is_pair<R>::value) {
      using Y = std::decay_t<typename R::second_type>;
      std::vector<Y> ys(static_cast<std::size_t>(n));
      for (std::int64_t t = 0; t < n; ++t) {
        const std::int64_t i = index(t);
        R out = step(i, false, carry);
        carry = std::move(out.first);
        ys[static_cast<std::size_t>(i)] = std::move(out.second);
      }
      run.finish();
      return std::pair<C, Y>(std::move(carry), detail::stack_at(ys, options.out_axes));
    } else {
      for (std::int64_t t = 0; t < n; ++t) carry = step(index(t), false, carry);
      run.finish();
      return carry;
    }
  }
};

/// flax.linen.vmap over a module: see the file comment. Flax's class name is "Vmap<Target>".
///   auto ensemble = nn::vmap(nn::Dense{.features = 3},
///                            {.variable_axes = {{"params", 0}}, .split_rngs = {{"params", true}},
///                             .in_axes = nn::broadcast, .axis_size = 5});
template <typename M>
struct Vmap : Module<Vmap<M>> {
  M target;
  VmapOptions options;

  static std::string loom_type_name() { return "Vmap" + detail::type_name<M>(); }

  template <typename... Xs>
  auto call(const Xs&... xs) const {
    constexpr const char* what = "nn.vmap";
    const auto axes = detail::arg_axes(what, options.in_axes, sizeof...(Xs));
    detail::LiftRun run(this->scope("vmap"), detail::vmap_groups(options), options.split_rngs,
                        what);
    std::vector<std::int64_t> sizes = run.variable_axis_sizes();
    {
      std::size_t k = 0;
      (
          [&](const auto& x) {
            if (axes[k]) {
              if (auto n = detail::axis_size(what, x, *axes[k])) sizes.push_back(*n);
            }
            ++k;
          }(xs),
          ...);
    }
    const std::int64_t n = detail::resolve_size(what, sizes, options.axis_size);
    run.set_size(n);
    using R = std::decay_t<decltype(detail::run_in(std::declval<core::Scope&>(), target, xs...))>;
    std::vector<R> outs;
    outs.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      core::Scope& s = run.enter(i, false);
      std::size_t k = 0;
      auto slice = [&](const auto& x) { return detail::arg_slice(x, axes[k++], i); };
      std::tuple<std::decay_t<Xs>...> sliced{slice(xs)...};
      outs.push_back(std::apply(
          [&](const auto&... a) -> R { return detail::run_in(s, target, a...); }, sliced));
      run.leave(i, false);
    }
    run.finish();
    if (!options.out_axes) return outs.front();  // out_axes None: the (unbatched) output
    return detail::stack_at(outs, *options.out_axes);
  }
};

/// nn.scan(Target, ...)(fields): the lifted module (Flax's `nn.scan(nn.Dense, ...)(4)`).
template <typename M>
Scan<M> scan(M target, ScanOptions options) {
  detail::check_module_type<M>();
  return Scan<M>{.target = std::move(target), .options = std::move(options)};
}

/// nn.vmap(Target, ...)(fields).
template <typename M>
Vmap<M> vmap(M target, VmapOptions options) {
  detail::check_module_type<M>();
  return Vmap<M>{.target = std::move(target), .options = std::move(options)};
}

}  // namespace loom::nn
