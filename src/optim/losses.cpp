// optax's losses; softmax_cross_entropy_with_integer_labels is one fused kernel with its VJP
// (and that VJP in composite differentiable ops, for differentiating the backward pass).
#include "loom/optim/losses.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "detail/batching.hpp"
#include "detail/composite_vjp.hpp"
#include "detail/dispatch.hpp"
#include "detail/host_read.hpp"
#include "detail/primitive.hpp"
#include "detail/tape.hpp"
#include "loom/numpy.hpp"
#include "numpy/vmath.hpp"

namespace loom::optim {

namespace jnp = loom::numpy;

namespace {

std::string describe(const Array& x) {
  return x.valid() ? std::string(dtype_name(x.dtype())) + x.shape().str() : "<empty>";
}

/// Checks logits [..., C] floating and labels [...] integer with values in [0, C); returns the
/// labels as int32 values.
std::vector<std::int32_t> checked_labels(const Array& logits, const Array& labels, const char* op) {
  if (!logits.valid() || !labels.valid() || logits.ndim() < 1) {
    throw Error(std::string("optim.") + op + ": expected logits of shape [..., num_classes], got " +
                describe(logits) + " and labels " + describe(labels));
  }
  if (logits.dtype() != DType::float32 && logits.dtype() != DType::float64) {
    throw Error(std::string("optim.") + op + ": logits must be float32 or float64, got " +
                describe(logits));
  }
  if (labels.dtype() != DType::int32 && labels.dtype() != DType::uint32) {
    throw Error(std::string("optim.") + op + ": labels must be integers (int32/uint32), got " +
                describe(labels));
  }
  Shape batch = logits.shape();
  batch.erase(batch.size() - 1);
  if (labels.shape() != batch) {
    throw Error(std::string("optim.") + op + ": labels of shape " + labels.shape().str() +
                " do not match logits of shape " + logits.shape().str() + " (expected labels " +
                batch.str() + ")");
  }
  const std::int64_t classes = logits.shape().back();
  std::vector<std::int32_t> out(static_cast<std::size_t>(labels.size()));
  if (labels.dtype() == DType::int32) {
    const std::int32_t* l = labels.data<std::int32_t>();
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = l[i];
  } else {
    const std::uint32_t* l = labels.data<std::uint32_t>();
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = l[i] > 0x7fffffffu ? -1 : static_cast<std::int32_t>(l[i]);
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] < 0 || out[i] >= classes) {
      throw Error(std::string("optim.") + op + ": label " +
                  (labels.dtype() == DType::int32
                       ? std::to_string(out[i])
                       : std::to_string(labels.data<std::uint32_t>()[i])) +
                  " at flat index " + std::to_string(i) + " is out of range [0, " +
                  std::to_string(classes) + ") for logits of shape " + logits.shape().str());
    }
  }
  return out;
}

/// exp over a row: the vectorized float32 kernel, libm for float64.
inline void exp_row(const float* in, float* out, std::int64_t n) {
  numpy::vmath::exp_f32(in, out, n);
}
inline void exp_row(const double* in, double* out, std::int64_t n) {
  for (std::int64_t j = 0; j < n; ++j) out[j] = std::exp(in[j]);
}

void check_same_shape(const Array& a, const Array& b, const char* op, const char* a_name,
                      const char* b_name) {
  if (!a.valid() || !b.valid() || a.shape() != b.shape()) {
    throw Error(std::string("optim.") + op + ": " + a_name + " " + describe(a) + " and " + b_name +
                " " + describe(b) + " must have the same shape");
  }
}

}  // namespace

Array softmax_cross_entropy_with_integer_labels(const Array& logits, const Array& labels) {
  const char* op = "softmax_cross_entropy_with_integer_labels";
  std::vector<std::int32_t> lab = checked_labels(logits, labels, op);
  const std::int64_t classes = logits.shape().back();
  const std::int64_t rows = static_cast<std::int64_t>(lab.size());
  Shape batch = labels.shape();
  Array out = Array::empty(batch, logits.dtype());
  // Per row: the max (the shift) and log(sum(exp(x - max))), kept for the backward pass.
  Array shift = Array::empty(Shape{rows}, logits.dtype());
  Array log_norm = Array::empty(Shape{rows}, logits.dtype());
  const std::int64_t grain = std::max<std::int64_t>(1, loom::detail::kParallelGrain / classes);
  loom::detail::dispatch_float(logits.dtype(), op, [&]<typename T>() {
    const T* x = logits.data<T>();
    T* o = out.mutable_data<T>();
    T* mp = shift.mutable_data<T>();
    T* lp = log_norm.mutable_data<T>();
    loom::detail::parallel_for(
        rows,
        [&](std::int64_t b, std::int64_t e) {
          std::vector<T> scratch(static_cast<std::size_t>(classes));
          for (std::int64_t r = b; r < e; ++r) {
            const T* row = x + r * classes;
            T m = row[0];
            for (std::int64_t j = 1; j < classes; ++j) m = row[j] > m ? row[j] : m;
            if (!std::isfinite(m)) m = std::isnan(m) ? m : T(0);  // as jax: no shift by +-inf
            for (std::int64_t j = 0; j < classes; ++j) scratch[j] = row[j] - m;
            exp_row(scratch.data(), scratch.data(), classes);
            // Eight partial sums: a reduction the compiler can vectorize without reassociating.
            T part[8] = {};
            std::int64_t j = 0;
            for (; j + 8 <= classes; j += 8)
              for (int k = 0; k < 8; ++k) part[k] += scratch[j + k];
            T s = 0;
            for (; j < classes; ++j) s += scratch[j];
            for (int k = 0; k < 8; ++k) s += part[k];
            const T ln = std::log(s);
            mp[r] = m;
            lp[r] = ln;
            o[r] = ln - (row[lab[r]] - m);
          }
        },
        grain);
  });
  if (!loom::detail::transforming()) return out;
  static constexpr loom::detail::Primitive kCrossEntropy{
      .name = "softmax_cross_entropy_with_integer_labels"};
  loom::detail::bind(
      kCrossEntropy, out, {&logits, &labels},
      [](const std::vector<Array>& in) {
        return softmax_cross_entropy_with_integer_labels(in[0], in[1]);
      },
      [x = logits, labels, lab = std::move(lab), shift, log_norm, classes, rows, grain](
          const Array& g, const Array&) {
        const Array gc = g.dtype() == x.dtype() ? g : g.astype(x.dtype());
        if (loom::detail::use_composite_vjp()) {  // g * (softmax(x) - one_hot(label))
          const Array p = jnp::exp(x - jnp::logsumexp(x, {-1}, true));
          return std::vector<Array>{
              jnp::expand_dims(gc, -1) * (p - jnp::one_hot(labels, classes, x.dtype())), Array()};
        }
        Array dx = Array::empty(x.shape(), x.dtype());
        loom::detail::dispatch_float(x.dtype(), "softmax_cross_entropy_with_integer_labels",
                                     [&]<typename T>() {
                                       const T* xp = x.data<T>();
                                       const T* gp = gc.data<T>();
                                       const T* mp = shift.data<T>();
                                       const T* lp = log_norm.data<T>();
                                       T* d = dx.mutable_data<T>();
                                       loom::detail::parallel_for(
                                           rows,
                                           [&](std::int64_t b, std::int64_t e) {
                                             for (std::int64_t r = b; r < e; ++r) {
                                               const T* row = xp + r * classes;
                                               T* drow = d + r * classes;
                                               const T off = mp[r] + lp[r];
                                               for (std::int64_t j = 0; j < classes; ++j)
                                                 drow[j] = row[j] - off;
                                               exp_row(drow, drow, classes);
                                               for (std::int64_t j = 0; j < classes; ++j)
                                                 drow[j] *= gp[r];
                                               drow[lab[r]] -= gp[r];
                                             }
                                           },
                                           grain);
                                     });
        return std::vector<Array>{dx, Array()};
      },
      // Rows are independent: the batch is more rows (a shared operand repeated along it).
      [](const std::vector<Array>& in, const std::vector<bool>& batched) {
        const std::int64_t size = loom::detail::batch_size(in, batched);
        return softmax_cross_entropy_with_integer_labels(
            loom::detail::with_batch(in[0], batched[0], size),
            loom::detail::with_batch(in[1], batched[1], size));
      });
  return out;
}

Array softmax_cross_entropy(const Array& logits, const Array& labels) {
  check_same_shape(logits, labels, "softmax_cross_entropy", "logits", "labels");
  const Array log_softmax = logits - jnp::logsumexp(logits, {-1}, true);
  return -jnp::sum(labels * log_softmax, {-1});
}

Array sigmoid_binary_cross_entropy(const Array& logits, const Array& labels) {
  const char* op = "sigmoid_binary_cross_entropy";
  check_same_shape(logits, labels, op, "logits", "labels");
  const DType dtype = promote_types(logits.dtype(), labels.dtype());
  const Array x = logits.astype(dtype);
  const Array y = labels.astype(dtype);
  // -y log(sigmoid(x)) - (1 - y) log(1 - sigmoid(x)) = max(x, 0) - x y + log1p(exp(-|x|)):
  // stable, one kernel; d/dx = sigmoid(x) - y, d/dy = -x.
  Array out = Array::empty(x.shape(), dtype);
  const std::int64_t n = x.size();
  loom::detail::dispatch_float(dtype, op, [&]<typename T>() {
    const T* xp = x.data<T>();
    const T* yp = y.data<T>();
    T* o = out.mutable_data<T>();
    for (std::int64_t i = 0; i < n; ++i) {
      o[i] = std::max(xp[i], T(0)) - xp[i] * yp[i] + std::log1p(std::exp(-std::abs(xp[i])));
    }
  });
  if (!loom::detail::transforming()) return out;
  // Not Batching::elementwise: the op requires equal shapes, so it does not broadcast; the batch
  // rule repeats a shared operand along the batch instead.
  static constexpr loom::detail::Primitive kSigmoidBce{.name = "sigmoid_binary_cross_entropy"};
  loom::detail::bind(
      kSigmoidBce, out, {&logits, &labels},
      [](const std::vector<Array>& in) { return sigmoid_binary_cross_entropy(in[0], in[1]); },
      [x, y, n, op, lt = logits.dtype(), yt = labels.dtype()](const Array& g, const Array&) {
        auto cast = [](const Array& d, DType t) {
          return is_floating(t) ? (d.dtype() == t ? d : d.astype(t)) : Array();
        };
        const Array gc = g.dtype() == x.dtype() ? g : g.astype(x.dtype());
        if (loom::detail::use_composite_vjp()) {  // d/dx = sigmoid(x) - y, d/dy = -x
          const Array sig = jnp::reciprocal(1.0 + jnp::exp(-x));
          return std::vector<Array>{cast(gc * (sig - y), lt), cast(-(gc * x), yt)};
        }
        Array dx = Array::empty(x.shape(), x.dtype());
        Array dy = Array::empty(x.shape(), x.dtype());
        loom::detail::dispatch_float(x.dtype(), op, [&]<typename T>() {
          const T* xp = x.data<T>();
          const T* yp = y.data<T>();
          const T* gp = gc.data<T>();
          T* a = dx.mutable_data<T>();
          T* b = dy.mutable_data<T>();
          for (std::int64_t i = 0; i < n; ++i) {
            a[i] = gp[i] * (T(1) / (T(1) + std::exp(-xp[i])) - yp[i]);
            b[i] = -gp[i] * xp[i];
          }
        });
        return std::vector<Array>{cast(dx, lt), cast(dy, yt)};
      },
      [](const std::vector<Array>& in, const std::vector<bool>& batched) {
        const std::int64_t size = loom::detail::batch_size(in, batched);
        return sigmoid_binary_cross_entropy(loom::detail::with_batch(in[0], batched[0], size),
                                            loom::detail::with_batch(in[1], batched[1], size));
      });
  return out;
}

Array squared_error(const Array& predictions, const std::optional<Array>& targets) {
  if (!targets) return jnp::square(predictions);
  check_same_shape(predictions, *targets, "squared_error", "predictions", "targets");
  return jnp::square(predictions - *targets);
}

Array l2_loss(const Array& predictions, const std::optional<Array>& targets) {
  return 0.5 * squared_error(predictions, targets);
}

Array huber_loss(const Array& predictions, const std::optional<Array>& targets, double delta) {
  Array errors = predictions;
  if (targets) {
    check_same_shape(predictions, *targets, "huber_loss", "predictions", "targets");
    errors = predictions - *targets;
  }
  const Array abs_errors = jnp::abs(errors);
  const Array quadratic = jnp::minimum(abs_errors, jnp::full_like(abs_errors, delta));
  const Array linear = abs_errors - quadratic;  // the part beyond delta
  return 0.5 * jnp::square(quadratic) + delta * linear;
}

Array cosine_distance(const Array& predictions, const Array& targets, double epsilon) {
  check_same_shape(predictions, targets, "cosine_distance", "predictions", "targets");
  auto norm = [epsilon](const Array& a) {
    const Array n2 = jnp::sum(jnp::square(a), {-1}, true);
    return jnp::sqrt(jnp::maximum(n2, jnp::full_like(n2, epsilon)));
  };
  const Array similarity =
      jnp::sum((predictions / norm(predictions)) * (targets / norm(targets)), {-1});
  return 1.0 - similarity;
}

Array accuracy(const Array& logits, const Array& labels) {
  loom::detail::KernelRead reading;
  const std::vector<std::int32_t> lab = checked_labels(logits, labels, "accuracy");
  const std::vector<std::int32_t> pred =
      jnp::argmax(logits, -1).astype(DType::int32).to_vector<std::int32_t>();
  std::int64_t hits = 0;
  for (std::size_t i = 0; i < lab.size(); ++i) hits += pred[i] == lab[i];
  const double n = static_cast<double>(lab.size());
  Array out =
      Array::scalar(lab.empty() ? std::nan("") : static_cast<double>(hits) / n, DType::float32);
  static constexpr loom::detail::Primitive kAccuracy{.name = "accuracy"};
  if (loom::detail::transforming()) {
    loom::detail::bind(
        kAccuracy, out, {&logits, &labels},
        [](const std::vector<Array>& in) { return accuracy(in[0], in[1]); }, nullptr);
  }
  return out;
}

}  // namespace loom::optim
