// optax's schedules (optax/schedules/_schedule.py, _join.py), evaluated in double precision,
// on the host or on the count Array with loom ops (traceable by jit/vmap).
#include "loom/optim/schedules.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>

#include "loom/numpy.hpp"

namespace loom::optim {

namespace jnp = loom::numpy;

namespace {

/// The count as float64 (exact for every int32), what the Array forms compute with.
Array steps(const Array& count) {
  return count.astype(DType::float64);
}

}  // namespace

// Each schedule has a host form (doubles) and an Array form in float64 loom ops that performs
// the same IEEE operations in the same order, so both give the same doubles (and the eager and
// jitted updates, which both use the Array form, the same bits).

Schedule constant_schedule(double value) {
  return Schedule([value](std::int64_t) { return value; },
                  [value](const Array&) { return Array::scalar(value, DType::float64); });
}

Schedule polynomial_schedule(double init_value, double end_value, double power,
                             std::int64_t transition_steps, std::int64_t transition_begin) {
  if (transition_steps <= 0) return constant_schedule(init_value);
  transition_begin = std::max<std::int64_t>(transition_begin, 0);
  auto host = [=](std::int64_t step) {
    const double t = double(std::clamp<std::int64_t>(step - transition_begin, 0, transition_steps));
    const double frac = 1.0 - t / double(transition_steps);
    return (init_value - end_value) * std::pow(frac, power) + end_value;
  };
  auto traced = [=](const Array& count) {
    const Array t =
        jnp::clip(steps(count) - double(transition_begin), 0.0, double(transition_steps));
    const Array frac = 1.0 - t / double(transition_steps);
    return (init_value - end_value) * jnp::power(frac, power) + end_value;
  };
  return Schedule(std::move(host), std::move(traced));
}

Schedule linear_schedule(double init_value, double end_value, std::int64_t transition_steps,
                         std::int64_t transition_begin) {
  return polynomial_schedule(init_value, end_value, 1.0, transition_steps, transition_begin);
}

Schedule cosine_decay_schedule(double init_value, std::int64_t decay_steps, double alpha,
                               double exponent) {
  if (decay_steps <= 0) {
    throw Error("optim.cosine_decay_schedule: decay_steps must be positive, got " +
                std::to_string(decay_steps));
  }
  auto host = [=](std::int64_t step) {
    const double t = double(std::min(step, decay_steps));
    const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * t / double(decay_steps)));
    return init_value * ((1.0 - alpha) * std::pow(cosine, exponent) + alpha);
  };
  auto traced = [=](const Array& count) {
    const Array t = jnp::minimum(steps(count), double(decay_steps));
    const Array cosine = 0.5 * (1.0 + jnp::cos(std::numbers::pi * t / double(decay_steps)));
    return init_value * ((1.0 - alpha) * jnp::power(cosine, exponent) + alpha);
  };
  return Schedule(std::move(host), std::move(traced));
}

Schedule warmup_cosine_decay_schedule(double init_value, double peak_value,
                                      std::int64_t warmup_steps, std::int64_t decay_steps,
                                      double end_value, double exponent) {
  const double alpha = peak_value == 0.0 ? 0.0 : end_value / peak_value;
  if (decay_steps - warmup_steps <= 0) {
    throw Error("optim.warmup_cosine_decay_schedule: decay_steps (" + std::to_string(decay_steps) +
                ") must exceed warmup_steps (" + std::to_string(warmup_steps) +
                "); it counts the warmup");
  }
  return join_schedules(
      {linear_schedule(init_value, peak_value, warmup_steps),
       cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)},
      {warmup_steps});
}

Schedule exponential_decay(double init_value, std::int64_t transition_steps, double decay_rate,
                           ExponentialDecayOptions o) {
  if (transition_steps <= 0 || decay_rate == 0.0) return constant_schedule(init_value);
  const std::int64_t begin = std::max<std::int64_t>(o.transition_begin, 0);
  auto host = [=](std::int64_t step) {
    const std::int64_t decreased = step - begin;
    double p = double(decreased) / double(transition_steps);
    if (o.staircase) p = std::floor(p);
    double v = decreased <= 0 ? init_value : init_value * std::pow(decay_rate, p);
    if (o.end_value) v = decay_rate < 1.0 ? std::max(v, *o.end_value) : std::min(v, *o.end_value);
    return v;
  };
  auto traced = [=](const Array& count) {
    const Array decreased = steps(count) - double(begin);
    Array p = decreased / double(transition_steps);
    if (o.staircase) p = jnp::floor(p);
    Array v = jnp::where(decreased <= 0.0, init_value, init_value * jnp::power(decay_rate, p));
    if (o.end_value) {
      // std::max(v, e) is (v < e ? e : v); std::min(v, e) is (e < v ? e : v).
      const double e = *o.end_value;
      v = decay_rate < 1.0 ? jnp::where(v < e, e, v) : jnp::where(v > e, e, v);
    }
    return v;
  };
  return Schedule(std::move(host), std::move(traced));
}

Schedule piecewise_constant_schedule(double init_value,
                                     std::map<std::int64_t, double> boundaries_and_scales) {
  for (const auto& [boundary, s] : boundaries_and_scales) {
    if (!(s >= 0.0)) {
      throw Error("optim.piecewise_constant_schedule: scales must be non-negative, got " +
                  std::to_string(s) + " at step " + std::to_string(boundary));
    }
  }
  auto host = [=](std::int64_t step) {
    double v = init_value;
    for (const auto& [boundary, s] : boundaries_and_scales) {
      if (step >= boundary) v *= s;  // optax: the scale applies from the boundary on
    }
    return v;
  };
  auto traced = [=](const Array& count) {
    const Array t = steps(count);
    Array v = Array::scalar(init_value, DType::float64);
    for (const auto& [boundary, s] : boundaries_and_scales)
      v = jnp::where(t >= double(boundary), v * s, v);
    return v;
  };
  return Schedule(std::move(host), std::move(traced));
}

Schedule join_schedules(std::vector<Schedule> schedules, std::vector<std::int64_t> boundaries) {
  if (schedules.empty() || boundaries.size() + 1 != schedules.size()) {
    throw Error("optim.join_schedules: expected one boundary fewer than schedules, got " +
                std::to_string(schedules.size()) + " schedules and " +
                std::to_string(boundaries.size()) + " boundaries");
  }
  // Traceable when every part is and every shifted count (count - boundary) fits an int32.
  bool traceable = true;
  for (const Schedule& s : schedules) traceable = traceable && s.traceable();
  for (std::int64_t b : boundaries) traceable = traceable && b >= -(std::int64_t{1} << 30);
  auto host = [schedules, boundaries](std::int64_t step) {
    double out = schedules[0](step);
    for (std::size_t i = 0; i < boundaries.size(); ++i) {
      if (step >= boundaries[i]) out = schedules[i + 1](step - boundaries[i]);
    }
    return out;
  };
  if (!traceable) return Schedule(std::move(host));
  auto traced = [schedules = std::move(schedules),
                 boundaries = std::move(boundaries)](const Array& count) {
    Array out = schedules[0](count);
    for (std::size_t i = 0; i < boundaries.size(); ++i) {
      // A boundary past INT32_MAX is never reached by an int32 count.
      if (boundaries[i] > std::numeric_limits<std::int32_t>::max()) continue;
      const int b = static_cast<int>(boundaries[i]);
      // Both branches are computed (as jnp.where does); the one past the boundary is kept.
      out = jnp::where(count >= b, schedules[i + 1](count - b), out);
    }
    return out;
  };
  return Schedule(std::move(host), std::move(traced));
}

}  // namespace loom::optim
