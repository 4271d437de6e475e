// Gradient transformations (optax/_src/transform.py, optax/transforms/): each update is one fused
// kernel per leaf (optim/kernels.hpp), written into a buffer nobody else holds.
#include "loom/optim/transform.hpp"

#include <cmath>
#include <string>
#include <type_traits>
#include <utility>

#include "loom/numpy.hpp"
#include "optim/kernels.hpp"

namespace loom::optim {

using detail::fused;
using detail::need_params;
using detail::take_field;
using detail::take_leaves;

namespace {

// optax's update_moment (order 1) and update_moment_per_elem_norm (order 2):
// decay * moment + (1 - decay) * g^order, in place when `moment` is uniquely owned.
Array update_moment(const char* op, Array moment, const Array& g, double decay, int order) {
  if (order == 1) {
    return fused(
        op,
        [decay](auto m, auto x) {
          using T = decltype(m);
          return T(1 - decay) * x + T(decay) * m;
        },
        std::move(moment), g);
  }
  return fused(
      op,
      [decay](auto v, auto x) {
        using T = decltype(v);
        return T(1 - decay) * (x * x) + T(decay) * v;
      },
      std::move(moment), g);
}

Tree zeros_like_tree(const Tree& params) {
  return tree_map([](const Array& a) { return numpy::zeros_like(a); }, params);
}

Tree full_like_tree(const Tree& params, double value) {
  return tree_map([value](const Array& a) { return numpy::full_like(a, value); }, params);
}

/// Leaves of a moment tree taken from the state, checked against the updates' structure.
std::vector<Array> take_moment(Tree& state, const char* key, const Tree& like, const char* op) {
  Tree moment = take_field(state, key, op);
  detail::check_structure(op, like, "updates", moment, key);
  return take_leaves(moment);
}

template <typename T>
T sign_of(T x) {
  return x > T(0) ? T(1) : (x < T(0) ? T(-1) : x);  // 0 stays 0, NaN stays NaN
}

/// 1 - decay ** count (optax's bias correction) as a scalar of each leaf dtype, in loom ops on
/// the int32 count (so jit traces it): float32 leaves get the float32 power optax computes
/// (count promoted to float32), float64 leaves the float64 one. Computed once per dtype.
class BiasCorrection {
 public:
  BiasCorrection(double decay, Array count) : decay_(decay), count_(std::move(count)) {}
  detail::Bcast get(DType dtype) {
    Array& slot = dtype == DType::float64 ? f64_ : f32_;
    if (!slot.valid()) {
      const DType t = dtype == DType::float64 ? DType::float64 : DType::float32;
      slot = 1.0 - numpy::power(Array::scalar(decay_, t), count_.astype(t));
    }
    return detail::bcast(slot);
  }

 private:
  double decay_;
  Array count_;
  Array f32_, f64_;
};

/// sqrt(sum(a^2)) in float64, as a scalar Array (traced under jit).
Array leaf_norm(const Array& a) {
  return numpy::sqrt(numpy::sum(numpy::square(a.astype(DType::float64))));
}

}  // namespace

GradientTransformation trace(double decay, bool nesterov) {
  auto update = [decay, nesterov](Tree updates, Tree state, const std::optional<Tree>&) {
    std::vector<Array> t = take_moment(state, "trace", updates, "trace");
    TreeDef def;
    std::vector<Array> g = take_leaves(updates, &def);
    for (std::size_t i = 0; i < g.size(); ++i) {
      auto step = [decay](auto a, auto b) { return b + decltype(a)(decay) * a; };  // g + d * t
      t[i] = fused("trace", step, std::move(t[i]), g[i]);
      g[i] = nesterov ? fused(
                            "trace", [decay](auto a, auto b) { return a + decltype(a)(decay) * b; },
                            std::move(g[i]), t[i])
                      : t[i];
    }
    Tree new_state = {{"trace", tree_unflatten(def, std::move(t))}};
    return std::make_pair(tree_unflatten(def, std::move(g)), std::move(new_state));
  };
  return {[](const Tree& params) {
            return Tree({{"trace", zeros_like_tree(params)}});
          },
          std::move(update)};
}

GradientTransformation scale(double step_size) {
  auto update = [step_size](Tree updates, Tree state, const std::optional<Tree>&) {
    TreeDef def;
    std::vector<Array> g = take_leaves(updates, &def);
    for (Array& leaf : g)
      leaf = fused(
          "scale", [step_size](auto a) { return decltype(a)(step_size) * a; }, std::move(leaf));
    return std::make_pair(tree_unflatten(def, std::move(g)), std::move(state));
  };
  return {[](const Tree&) { return Tree(); }, std::move(update)};
}

GradientTransformation scale_by_schedule(Schedule step_size_fn) {
  auto update = [fn = std::move(step_size_fn)](Tree updates, Tree state,
                                               const std::optional<Tree>&) {
    const Array count = take_field(state, "count", "scale_by_schedule").leaf();
    const detail::Bcast step_size = detail::bcast(fn(count));  // float64, rounded per leaf
    TreeDef def;
    std::vector<Array> g = take_leaves(updates, &def);
    for (Array& leaf : g)
      leaf = fused(
          "scale_by_schedule", [](auto a, auto s) { return s * a; }, std::move(leaf), step_size);
    Tree new_state = {{"count", safe_increment(count)}};
    return std::make_pair(tree_unflatten(def, std::move(g)), std::move(new_state));
  };
  return {[](const Tree&) { return Tree({{"count", zero_count()}}); }, std::move(update)};
}

GradientTransformation scale_by_learning_rate(ScalarOrSchedule learning_rate, bool flip_sign) {
  const double m = flip_sign ? -1.0 : 1.0;
  if (learning_rate.is_schedule()) {
    const Schedule& lr = learning_rate.schedule();
    Schedule::HostFn host = [m, lr](std::int64_t count) { return m * lr(count); };
    if (!lr.traceable()) return scale_by_schedule(Schedule(std::move(host)));
    return scale_by_schedule(
        Schedule(std::move(host), [m, lr](const Array& count) { return m * lr(count); }));
  }
  return scale(m * learning_rate.value());
}

GradientTransformation scale_by_adam(AdamOptions o) {
  auto init = [](const Tree& params) {
    return Tree({{"count", zero_count()},
                 {"mu", zeros_like_tree(params)},
                 {"nu", zeros_like_tree(params)}});
  };
  auto update = [o](Tree updates, Tree state, const std::optional<Tree>&) {
    const Array count = take_field(state, "count", "scale_by_adam").leaf();
    std::vector<Array> mu = take_moment(state, "mu", updates, "scale_by_adam");
    std::vector<Array> nu = take_moment(state, "nu", updates, "scale_by_adam");
    const Array count_inc = safe_increment(count);
    BiasCorrection bc1(o.b1, count_inc), bc2(o.b2, count_inc);
    // Nesterov's look-ahead needs the next count's correction; without it bc1 stands in (unused).
    BiasCorrection bc1_next(o.b1, o.nesterov ? safe_increment(count_inc) : count_inc);
    TreeDef def;
    std::vector<Array> g = take_leaves(updates, &def);
    for (std::size_t i = 0; i < g.size(); ++i) {
      mu[i] = update_moment("scale_by_adam", std::move(mu[i]), g[i], o.b1, 1);
      nu[i] = update_moment("scale_by_adam", std::move(nu[i]), g[i], o.b2, 2);
      const DType t = g[i].dtype();
      g[i] = fused(
          "scale_by_adam",
          [o](auto x, auto m, auto v, auto c1, auto c1_next, auto c2) {
            using T = decltype(x);
            const T m_hat = o.nesterov ? T(o.b1) * (m / c1_next) + T(1 - o.b1) * (x / c1) : m / c1;
            const T v_hat = v / c2;
            return m_hat / (std::sqrt(v_hat + T(o.eps_root)) + T(o.eps));
          },
          std::move(g[i]), mu[i], nu[i], bc1.get(t), bc1_next.get(t), bc2.get(t));
    }
    Tree new_state = {{"count", count_inc},
                      {"mu", tree_unflatten(def, std::move(mu))},
                      {"nu", tree_unflatten(def, std::move(nu))}};
    return std::make_pair(tree_unflatten(def, std::move(g)), std::move(new_state));
  };
  return {std::move(init), std::move(update)};
}

GradientTransformation scale_by_rms(RmsOptions o) {
  auto init = [o](const Tree& params) {
    Tree nu = full_like_tree(params, o.initial_scale);
    if (o.bias_correction) return Tree({{"count", zero_count()}, {"nu", nu}});
    return Tree({{"nu", nu}});
  };
  auto update = [o](Tree updates, Tree state, const std::optional<Tree>&) {
    Array count_inc;
    if (o.bias_correction)
      count_inc = safe_increment(take_field(state, "count", "scale_by_rms").leaf());
    BiasCorrection bc(o.decay, count_inc);
    std::vector<Array> nu = take_moment(state, "nu", updates, "scale_by_rms");
    TreeDef def;
    std::vector<Array> g = take_leaves(updates, &def);
    auto rule = [o](auto x, auto n) {
      using T = decltype(x);
      const T s = o.eps_in_sqrt ? T(1) / std::sqrt(n + T(o.eps)) : T(1) / (std::sqrt(n) + T(o.eps));
      return s * x;
    };
    for (std::size_t i = 0; i < g.size(); ++i) {
      nu[i] = update_moment("scale_by_rms", std::move(nu[i]), g[i], o.decay, 2);
      if (o.bias_correction) {
        g[i] = fused(
            "scale_by_rms", [rule](auto x, auto v, auto c) { return rule(x, v / c); },
            std::move(g[i]), nu[i], bc.get(g[i].dtype()));
      } else {
        g[i] = fused("scale_by_rms", rule, std::move(g[i]), nu[i]);
      }
    }
    Tree new_state = {{"nu", tree_unflatten(def, std::move(nu))}};
    if (o.bias_correction) new_state.set("count", count_inc);
    return std::make_pair(tree_unflatten(def, std::move(g)), std::move(new_state));
  };
  return {std::move(init), std::move(update)};
}

GradientTransformation scale_by_rss(double initial_accumulator_value, double eps) {
  auto init = [initial_accumulator_value](const Tree& params) {
    return Tree({{"sum_of_squares", full_like_tree(params, initial_accumulator_value)}});
  };
  auto update = [eps](Tree updates, Tree state, const std::optional<Tree>&) {
    std::vector<Array> s = take_moment(state, "sum_of_squares", updates, "scale_by_rss");
    TreeDef def;
    std::vector<Array> g = take_leaves(updates, &def);
    for (std::size_t i = 0; i < g.size(); ++i) {
      s[i] = fused(
          "scale_by_rss", [](auto t, auto x) { return x * x + t; }, std::move(s[i]), g[i]);
      g[i] = fused(
          "scale_by_rss",
          [eps](auto x, auto t) {
            using T = decltype(x);
            return (t > T(0) ? T(1) / std::sqrt(t + T(eps)) : T(0)) * x;
          },
          std::move(g[i]), s[i]);
    }
    Tree new_state = {{"sum_of_squares", tree_unflatten(def, std::move(s))}};
    return std::make_pair(tree_unflatten(def, std::move(g)), std::move(new_state));
  };
  return {std::move(init), std::move(update)};
}

GradientTransformation scale_by_lion(double b1, double b2) {
  auto init = [](const Tree& params) {
    return Tree({{"count", zero_count()}, {"mu", zeros_like_tree(params)}});
  };
  auto update = [b1, b2](Tree updates, Tree state, const std::optional<Tree>&) {
    const Array count = take_field(state, "count", "scale_by_lion").leaf();
    std::vector<Array> mu = take_moment(state, "mu", updates, "scale_by_lion");
    TreeDef def;
    std::vector<Array> g = take_leaves(updates, &def);
    std::vector<Array> out(g.size());
    for (std::size_t i = 0; i < g.size(); ++i) {
      // Both rules read the old g and mu: the direction goes to a fresh buffer, mu in place.
      out[i] = fused(
          "scale_by_lion",
          [b1](auto x, auto m) {
            using T = decltype(x);
            return sign_of(T(1.0 - b1) * x + T(b1) * m);
          },
          g[i], mu[i]);
      mu[i] = update_moment("scale_by_lion", std::move(mu[i]), g[i], b2, 1);
    }
    Tree new_state = {{"count", safe_increment(count)}, {"mu", tree_unflatten(def, std::move(mu))}};
    return std::make_pair(tree_unflatten(def, std::move(out)), std::move(new_state));
  };
  return {std::move(init), std::move(update)};
}

GradientTransformation scale_by_trust_ratio(double min_norm, double trust_coefficient, double eps) {
  auto update = [=](Tree updates, Tree state, const std::optional<Tree>& params) {
    const Tree& p_tree = need_params(params, updates, "scale_by_trust_ratio");
    const std::vector<Array> p = tree_leaves(p_tree);
    TreeDef def;
    std::vector<Array> g = take_leaves(updates, &def);
    for (std::size_t i = 0; i < g.size(); ++i) {
      // In float64 loom ops (traced under jit); where() keeps the host rules' NaN behaviour.
      const Array pn0 = leaf_norm(p[i]), un0 = leaf_norm(g[i]);
      const Array pn = numpy::where(pn0 > min_norm, pn0, min_norm);
      const Array un = numpy::where(un0 > min_norm, un0, min_norm);
      const Array ratio = numpy::where(numpy::logical_or(pn == 0.0, un == 0.0), 1.0,
                                       trust_coefficient * pn / (un + eps));
      g[i] = fused(
          "scale_by_trust_ratio", [](auto x, auto r) { return x * r; }, std::move(g[i]),
          detail::bcast(ratio));
    }
    return std::make_pair(tree_unflatten(def, std::move(g)), std::move(state));
  };
  return {[](const Tree&) { return Tree(); }, std::move(update)};
}

GradientTransformation clip_by_global_norm(double max_norm) {
  auto update = [max_norm](Tree updates, Tree state, const std::optional<Tree>&) {
    // optax: select(g_norm < max_norm, t, (t / g_norm) * max_norm), a select rather than a
    // host branch so that jit traces it. The test is in float64, as the eager rule always was.
    const Array g_norm = global_norm(updates);
    const detail::Bcast keep = detail::bcast(g_norm.astype(DType::float64) < max_norm);
    TreeDef def;
    std::vector<Array> g = take_leaves(updates, &def);
    for (Array& leaf : g) {
      leaf = fused(
          "clip_by_global_norm",
          [max_norm](auto x, auto n, auto k) {
            using T = decltype(x);
            return k != T(0) ? x : (x / n) * T(max_norm);
          },
          std::move(leaf), detail::bcast(g_norm), keep);
    }
    return std::make_pair(tree_unflatten(def, std::move(g)), std::move(state));
  };
  return {[](const Tree&) { return Tree(); }, std::move(update)};
}

}  // namespace loom::optim
