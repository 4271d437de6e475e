// loom::optim's core, after optax/_src/base.py, combine.py and update.py: GradientTransformation,
// schedules as values, chain, identity and apply_updates.
//
//   namespace optim = loom::optim;
//   optim::GradientTransformation tx = optim::sgd(0.1, 0.9);
//   loom::Tree opt_state = tx.init(params);            // {"0": {"trace": ...}, "1": {}}
//   auto [updates, new_state] = tx.update(grads, std::move(opt_state), params);
//   params = optim::apply_updates(std::move(params), updates);
//
// A state is a plain loom::Tree laid out as Flax's serialization writes optax's states: a tuple
// (chain) becomes {"0": ..., "1": ...}, a NamedTuple a dict of its field names, EmptyState an
// empty dict, counts int32 scalars. Passing the state (and params) by rvalue lets the update
// write into their buffers when nobody else holds them (Array::unique); a state or params that
// somebody still references is never changed.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "loom/array.hpp"
#include "loom/tree.hpp"

namespace loom::optim {

/// A learning-rate (or other hyper-parameter) schedule: step count -> value (optax.Schedule).
/// It has a host form (an int64 step -> double) and, when it can be traced, an Array form (the
/// int32 count Array -> a float64 scalar Array, written in loom ops) that the transformations
/// evaluate, so that a step under loom::jit/vmap reads its count as a traced value. The
/// built-in schedules (schedules.hpp) have both forms, computing the same doubles.
///   optim::Schedule s = [](std::int64_t step) { return 0.1 / (1.0 + double(step)); };  // host
///   optim::Schedule t = [](const loom::Array& count) {                             // traceable
///     return 0.1 / (1.0 + count.astype(loom::DType::float64));
///   };
/// A host-only function works eagerly; under jit/vmap it throws a loom::Error saying to write it
/// as `t` is written (or to compose the built-in schedules).
class Schedule {
 public:
  using HostFn = std::function<double(std::int64_t step)>;
  using ArrayFn = std::function<Array(const Array& count)>;

  Schedule() = default;
  /// A host function double(int64): eager only.
  template <typename F, std::enable_if_t<!std::is_same_v<std::decay_t<F>, Schedule> &&
                                             std::is_invocable_r_v<double, F, std::int64_t>,
                                         int> = 0>
  Schedule(F host) : host_(std::move(host)) {}  // NOLINT: as a std::function converts
  /// An Array function (int32 count -> scalar Array) in loom ops: traceable; its host form
  /// evaluates it on a concrete count. Not chosen for a callable that also takes an int64.
  template <typename F,
            std::enable_if_t<
                std::conjunction_v<std::negation<std::is_same<std::decay_t<F>, Schedule>>,
                                   std::negation<std::is_invocable_r<double, F, std::int64_t>>,
                                   std::is_invocable_r<Array, F, const Array&>>,
                int> = 0>
  Schedule(F traced) : traced_(std::move(traced)) {}  // NOLINT
  /// Both forms, which must compute the same values (what the built-in schedules build).
  Schedule(HostFn host, ArrayFn traced) : host_(std::move(host)), traced_(std::move(traced)) {}

  /// The value at `step` on the host.
  double operator()(std::int64_t step) const;
  /// The value at an int32 count Array, as a float64 scalar Array. Traced by jit/vmap when the
  /// schedule has an Array form; a host-only schedule reads the count on the host (a loom::Error
  /// under jit/vmap that says how to write a traceable one).
  Array operator()(const Array& count) const;
  /// True when the schedule has an Array form (it can run under jit/vmap).
  bool traceable() const { return static_cast<bool>(traced_); }
  explicit operator bool() const { return host_ || traced_; }

 private:
  HostFn host_;
  ArrayFn traced_;
};

/// A constant or a schedule (optax.ScalarOrSchedule).
///   optim::ScalarOrSchedule lr = 0.1;   lr = optim::cosine_decay_schedule(0.1, 1000);
class ScalarOrSchedule {
 public:
  ScalarOrSchedule(double value) : value_(value) {}  // NOLINT: as optax accepts a float
  ScalarOrSchedule(Schedule schedule) : value_(std::move(schedule)) {}  // NOLINT
  template <typename F, typename = std::enable_if_t<!std::is_arithmetic_v<F> &&
                                                    !std::is_same_v<std::decay_t<F>, Schedule> &&
                                                    std::is_constructible_v<Schedule, F>>>
  ScalarOrSchedule(F schedule) : value_(Schedule(std::move(schedule))) {}  // NOLINT
  bool is_schedule() const { return std::holds_alternative<Schedule>(value_); }
  /// The constant; throws loom::Error on a schedule.
  double value() const;
  /// The schedule; throws loom::Error on a constant.
  const Schedule& schedule() const;
  /// The value at `step` (the constant for a constant).
  double operator()(std::int64_t step) const;
  /// The value at an int32 count Array as a float64 scalar (see Schedule::operator()(Array)).
  Array operator()(const Array& count) const;

 private:
  std::variant<double, Schedule> value_;
};

/// optax.GradientTransformation: a pair of pure functions.
///   init(params) -> state
///   update(updates, state, params) -> (new updates, new state); params may be std::nullopt
///   for transformations that do not read them (a clear loom::Error otherwise).
struct GradientTransformation {
  using InitFn = std::function<Tree(const Tree& params)>;
  using UpdateFn = std::function<std::pair<Tree, Tree>(Tree updates, Tree state,
                                                       const std::optional<Tree>& params)>;
  InitFn init;
  UpdateFn update;
};

/// optax.identity(): state {} and updates passed through.
GradientTransformation identity();

/// optax.chain: applies the transformations in order; state {"0": s0, "1": s1, ...}.
///   auto tx = optim::chain({optim::clip_by_global_norm(1.0), optim::adam(1e-3)});
GradientTransformation chain(std::vector<GradientTransformation> transforms);

/// optax.apply_updates: params + updates, each leaf keeping the params' dtype. Writes into the
/// params' buffers when they are uniquely held (pass std::move(params)).
///   params = optim::apply_updates(std::move(params), updates);
Tree apply_updates(Tree params, const Tree& updates);

/// optax.global_norm (optax.tree.norm): sqrt of the sum of squares of every leaf, as a float32
/// scalar (float64 when any leaf is float64).
Array global_norm(const Tree& updates);

/// An int32 scalar 0, how optax starts every count.
Array zero_count();
/// optax.safe_increment: count + 1, staying at INT32_MAX instead of overflowing. Computed with
/// loom ops, so a jitted step traces it.
Array safe_increment(const Array& count);

}  // namespace loom::optim
