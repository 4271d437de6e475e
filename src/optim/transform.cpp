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

/// 1 - decay ** count (optax's bias correction), computed once per update in float32 and in
/// float64; the kernels pick the one of their element type.
struct BiasCorrection {
  float f32;
  double f64;
  BiasCorrection(double decay, std::int32_t count)
      : f32(1.0f - std::pow(static_cast<float>(decay), static_cast<float>(count))),
        f64(1.0 - std::pow(decay, static_cast<double>(count))) {}
  template <typename T>
  T get() const {
    if constexpr (std::is_same_v<T, float>)
      return f32;
    else
      return f64;
  }
};

double leaf_norm(const Array& a) {
  return std::sqrt(numpy::sum(numpy::square(a.astype(DType::float64))).item<double>());
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
    const double step_size = fn(count.item<std::int32_t>());
    TreeDef def;
    std::vector<Array> g = take_leaves(updates, &def);
    for (Array& leaf : g)
      leaf = fused(
          "scale_by_schedule", [step_size](auto a) { return decltype(a)(step_size) * a; },
          std::move(leaf));
    Tree new_state = {{"count", safe_increment(count)}};
    return std::make_pair(tree_unflatten(def, std::move(g)), std::move(new_state));
  };
  return {[](const Tree&) { return Tree({{"count", zero_count()}}); }, std::move(update)};
}

GradientTransformation scale_by_learning_rate(ScalarOrSchedule learning_rate, bool flip_sign) {
  const double m = flip_sign ? -1.0 : 1.0;
  if (learning_rate.is_schedule()) {
    return scale_by_schedule(
        [m, lr = learning_rate.schedule()](std::int64_t count) { return m * lr(count); });
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
    const std::int32_t c = count_inc.item<std::int32_t>();
    const std::int32_t c_next = safe_increment(count_inc).item<std::int32_t>();
    const BiasCorrection bc1(o.b1, c), bc1_next(o.b1, c_next), bc2(o.b2, c);
    TreeDef def;
    std::vector<Array> g = take_leaves(updates, &def);
    for (std::size_t i = 0; i < g.size(); ++i) {
      mu[i] = update_moment("scale_by_adam", std::move(mu[i]), g[i], o.b1, 1);
      nu[i] = update_moment("scale_by_adam", std::move(nu[i]), g[i], o.b2, 2);
      g[i] = fused(
          "scale_by_adam",
          [o, bc1, bc1_next, bc2](auto x, auto m, auto v) {
            using T = decltype(x);
            const T m_hat =
                o.nesterov ? T(o.b1) * (m / bc1_next.get<T>()) + T(1 - o.b1) * (x / bc1.get<T>())
                           : m / bc1.get<T>();
            const T v_hat = v / bc2.get<T>();
            return m_hat / (std::sqrt(v_hat + T(o.eps_root)) + T(o.eps));
          },
          std::move(g[i]), mu[i], nu[i]);
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
    std::int32_t c = 0;
    if (o.bias_correction) {
      count_inc = safe_increment(take_field(state, "count", "scale_by_rms").leaf());
      c = count_inc.item<std::int32_t>();
    }
    const BiasCorrection bc(o.decay, c);
    std::vector<Array> nu = take_moment(state, "nu", updates, "scale_by_rms");
    TreeDef def;
    std::vector<Array> g = take_leaves(updates, &def);
    for (std::size_t i = 0; i < g.size(); ++i) {
      nu[i] = update_moment("scale_by_rms", std::move(nu[i]), g[i], o.decay, 2);
      g[i] = fused(
          "scale_by_rms",
          [o, bc](auto x, auto v) {
            using T = decltype(x);
            const T n = o.bias_correction ? v / bc.get<T>() : v;
            const T s =
                o.eps_in_sqrt ? T(1) / std::sqrt(n + T(o.eps)) : T(1) / (std::sqrt(n) + T(o.eps));
            return s * x;
          },
          std::move(g[i]), nu[i]);
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
      const double pn0 = leaf_norm(p[i]), un0 = leaf_norm(g[i]);
      const double pn = pn0 > min_norm ? pn0 : min_norm;
      const double un = un0 > min_norm ? un0 : min_norm;
      const double ratio = (pn == 0.0 || un == 0.0) ? 1.0 : trust_coefficient * pn / (un + eps);
      g[i] = fused(
          "scale_by_trust_ratio", [ratio](auto x) { return x * decltype(x)(ratio); },
          std::move(g[i]));
    }
    return std::make_pair(tree_unflatten(def, std::move(g)), std::move(state));
  };
  return {[](const Tree&) { return Tree(); }, std::move(update)};
}

GradientTransformation clip_by_global_norm(double max_norm) {
  auto update = [max_norm](Tree updates, Tree state, const std::optional<Tree>&) {
    const double g_norm = global_norm(updates).astype(DType::float64).item<double>();
    if (g_norm < max_norm) return std::make_pair(std::move(updates), std::move(state));
    TreeDef def;
    std::vector<Array> g = take_leaves(updates, &def);
    for (Array& leaf : g) {
      leaf = fused(
          "clip_by_global_norm",
          [g_norm, max_norm](auto x) {
            using T = decltype(x);
            return (x / T(g_norm)) * T(max_norm);
          },
          std::move(leaf));
    }
    return std::make_pair(tree_unflatten(def, std::move(g)), std::move(state));
  };
  return {[](const Tree&) { return Tree(); }, std::move(update)};
}

}  // namespace loom::optim
