// loom::optim core: ScalarOrSchedule, identity, chain, apply_updates, global_norm, counts.
#include "loom/optim/base.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "loom/jit.hpp"
#include "loom/numpy.hpp"
#include "optim/kernels.hpp"

namespace loom::optim {

double Schedule::operator()(std::int64_t step) const {
  if (host_) return host_(step);
  if (!traced_) throw Error("optim.Schedule: called an empty schedule");
  // An Array form evaluated on the host: the count as optax keeps it (int32).
  return traced_(Array::scalar(static_cast<std::int32_t>(step)))
      .astype(DType::float64)
      .item<double>();
}

Array Schedule::operator()(const Array& count) const {
  if (traced_) {
    Array v = traced_(count);
    if (!v.valid() || v.size() != 1) {
      throw Error("optim.Schedule: an Array schedule must return a scalar, got " +
                  (v.valid() ? v.shape().str() : std::string("<empty>")));
    }
    return v.dtype() == DType::float64 ? v : v.astype(DType::float64);
  }
  if (!host_) throw Error("optim.Schedule: called an empty schedule");
  if (loom::detail::capturing()) {
    throw Error(
        "optim.Schedule: this schedule is a host function double(std::int64_t), which loom::jit "
        "and loom::vmap cannot trace (the step count is a traced Array inside them). Write it "
        "with loom ops on the int32 count Array, e.g. optim::Schedule s = [](const loom::Array& "
        "count) { return 0.1 / (1.0 + count.astype(loom::DType::float64)); }, or compose the "
        "built-in schedules (optim/schedules.hpp), or call the step without jit");
  }
  return Array::scalar(host_(count.item<std::int32_t>()), DType::float64);
}

double ScalarOrSchedule::value() const {
  if (is_schedule()) throw Error("optim.ScalarOrSchedule: holds a schedule, not a constant");
  return std::get<double>(value_);
}

const Schedule& ScalarOrSchedule::schedule() const {
  if (!is_schedule()) throw Error("optim.ScalarOrSchedule: holds a constant, not a schedule");
  return std::get<Schedule>(value_);
}

double ScalarOrSchedule::operator()(std::int64_t step) const {
  return is_schedule() ? std::get<Schedule>(value_)(step) : std::get<double>(value_);
}

Array ScalarOrSchedule::operator()(const Array& count) const {
  return is_schedule() ? std::get<Schedule>(value_)(count)
                       : Array::scalar(std::get<double>(value_), DType::float64);
}

namespace detail {
void check_structure(const char* op, const Tree& a, const char* a_name, const Tree& b,
                     const char* b_name) {
  if (!same_structure(a, b)) {
    throw Error(std::string("optim.") + op + ": " + a_name + " and " + b_name +
                " must have the same tree structure; " + a_name + ":\n" + a.str() + "\n" + b_name +
                ":\n" + b.str());
  }
}
}  // namespace detail

GradientTransformation identity() {
  return {[](const Tree&) { return Tree(); },
          [](Tree updates, Tree state, const std::optional<Tree>&) {
            return std::make_pair(std::move(updates), std::move(state));
          }};
}

GradientTransformation chain(std::vector<GradientTransformation> transforms) {
  auto init = [transforms](const Tree& params) {
    Tree::Dict states;
    for (std::size_t i = 0; i < transforms.size(); ++i)
      states.emplace(std::to_string(i), transforms[i].init(params));
    return Tree(std::move(states));
  };
  auto update = [transforms](Tree updates, Tree state, const std::optional<Tree>& params) {
    if (!state.is_dict() || state.size() != transforms.size()) {
      throw Error("optim.chain: expected a state with " + std::to_string(transforms.size()) +
                  " entries (\"0\", \"1\", ... one per transformation), got:\n" + state.str());
    }
    Tree::Dict next;
    for (std::size_t i = 0; i < transforms.size(); ++i) {
      const std::string key = std::to_string(i);
      Tree sub = std::move(state.at(key));
      auto [u, s] = transforms[i].update(std::move(updates), std::move(sub), params);
      updates = std::move(u);
      next.emplace(key, std::move(s));
    }
    return std::make_pair(std::move(updates), Tree(std::move(next)));
  };
  return {std::move(init), std::move(update)};
}

Tree apply_updates(Tree params, const Tree& updates) {
  detail::check_structure("apply_updates", params, "params", updates, "updates");
  TreeDef def;
  std::vector<Array> p = detail::take_leaves(params, &def);
  std::vector<Array> u = tree_leaves(updates);
  for (std::size_t i = 0; i < p.size(); ++i) {
    p[i] = detail::fused(
        "apply_updates", [](auto a, auto b) { return a + b; }, std::move(p[i]), u[i]);
  }
  return tree_unflatten(def, std::move(p));
}

Array global_norm(const Tree& updates) {
  // Accumulated in float64 with loom ops (no host read), so jit/vmap/grad see it.
  bool f64 = false;
  Array total = Array::scalar(0.0, DType::float64);
  for (const Array& leaf : tree_leaves(updates)) {
    f64 = f64 || leaf.dtype() == DType::float64;
    total = total + numpy::sum(numpy::square(leaf.astype(DType::float64)));
  }
  const Array norm = numpy::sqrt(total);
  return f64 ? norm : norm.astype(DType::float32);
}

Array zero_count() {
  return Array::scalar(std::int32_t{0});
}

Array safe_increment(const Array& count) {
  if (!count.valid() || count.dtype() != DType::int32 || count.size() != 1) {
    throw Error("optim: a count must be an int32 scalar, got " +
                (count.valid() ? std::string(dtype_name(count.dtype())) + count.shape().str()
                               : std::string("<empty>")));
  }
  // count + (count < INT32_MAX): never computes the overflowing sum, even where discarded.
  return count + numpy::where(count < std::numeric_limits<std::int32_t>::max(), 1, 0);
}

}  // namespace loom::optim
