// loom::nn::initializers, with the constants and rounding steps of jax/_src/nn/initializers.py
// (facts, not code): every intermediate scalar is rounded to the parameter dtype where JAX
// builds a jnp.array of that dtype, so float32 kernels match JAX bit for bit.
#include "loom/nn/initializers.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "loom/numpy/creation.hpp"
#include "random/random_internal.hpp"

namespace loom::nn::initializers {
namespace {

void check_float(DType dtype, const char* op) {
  if (dtype != DType::float32 && dtype != DType::float64) {
    throw Error(std::string("nn.initializers.") + op + ": dtype must be float32 or float64, got " +
                dtype_name(dtype));
  }
}

// Rounds a double to the parameter dtype (what jnp.array(x, dtype) does).
double to_dtype(double x, DType dtype) {
  return dtype == DType::float32 ? static_cast<double>(static_cast<float>(x)) : x;
}

// sqrt in the parameter dtype.
double sqrt_dtype(double x, DType dtype) {
  return dtype == DType::float32 ? static_cast<double>(std::sqrt(static_cast<float>(x)))
                                 : std::sqrt(x);
}

int axis_index(int axis, const Shape& shape, const char* what) {
  const int a = axis < 0 ? axis + shape.size() : axis;
  if (a < 0 || a >= shape.size()) {
    throw Error(std::string("nn.initializers.compute_fans: ") + what + " " + std::to_string(axis) +
                " is out of bounds for shape " + shape.str());
  }
  return a;
}

std::string axes_str(const std::vector<int>& axes) {
  std::string s = "(";
  for (std::size_t i = 0; i < axes.size(); ++i) s += (i ? ", " : "") + std::to_string(axes[i]);
  return s + (axes.size() == 1 ? ",)" : ")");
}

double axes_size(const std::vector<int>& axes, const Shape& shape, const char* what) {
  double n = 1;
  for (int a : axes) n *= static_cast<double>(shape[axis_index(a, shape, what)]);
  return n;
}

// Householder QR of an m x k matrix (m >= k, row-major, double), returning the m x k Q of the
// unique factorization whose R has a non-negative diagonal (what JAX's q * sign(diag(r)) gives).
std::vector<double> orthonormal_columns(std::vector<double> a, std::int64_t m, std::int64_t k) {
  std::vector<double> vs(static_cast<std::size_t>(m * k), 0.0);  // Householder vectors
  std::vector<double> diag_sign(static_cast<std::size_t>(k), 1.0);
  auto A = [&](std::int64_t i, std::int64_t j) -> double& {
    return a[static_cast<std::size_t>(i * k + j)];
  };
  auto V = [&](std::int64_t i, std::int64_t j) -> double& {
    return vs[static_cast<std::size_t>(i * k + j)];
  };
  for (std::int64_t j = 0; j < k; ++j) {
    double norm = 0;
    for (std::int64_t i = j; i < m; ++i) norm += A(i, j) * A(i, j);
    norm = std::sqrt(norm);
    const double alpha = A(j, j) > 0 ? -norm : norm;  // R(j, j) = alpha
    diag_sign[static_cast<std::size_t>(j)] = alpha < 0 ? -1.0 : 1.0;
    double vnorm = 0;
    for (std::int64_t i = j; i < m; ++i) {
      V(i, j) = A(i, j) - (i == j ? alpha : 0.0);
      vnorm += V(i, j) * V(i, j);
    }
    if (vnorm == 0) continue;
    for (std::int64_t c = j; c < k; ++c) {
      double dot = 0;
      for (std::int64_t i = j; i < m; ++i) dot += V(i, j) * A(i, c);
      const double f = 2 * dot / vnorm;
      for (std::int64_t i = j; i < m; ++i) A(i, c) -= f * V(i, j);
    }
    V(j, j) = V(j, j);  // keep
    for (std::int64_t i = j; i < m; ++i) V(i, j) /= std::sqrt(vnorm);
  }
  // Q = H_0 H_1 ... H_{k-1} applied to the first k columns of the identity.
  std::vector<double> q(static_cast<std::size_t>(m * k), 0.0);
  auto Q = [&](std::int64_t i, std::int64_t j) -> double& {
    return q[static_cast<std::size_t>(i * k + j)];
  };
  for (std::int64_t j = 0; j < k; ++j) Q(j, j) = 1.0;
  for (std::int64_t h = k - 1; h >= 0; --h) {
    for (std::int64_t c = 0; c < k; ++c) {
      double dot = 0;
      for (std::int64_t i = h; i < m; ++i) dot += V(i, h) * Q(i, c);
      for (std::int64_t i = h; i < m; ++i) Q(i, c) -= 2 * dot * V(i, h);
    }
  }
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < k; ++j) Q(i, j) *= diag_sign[static_cast<std::size_t>(j)];
  return q;
}

// The shortest decimal that reads back as x (Python's repr of a float, without its ".0").
std::string num(double x) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

// An axis argument as JAX writes it: one axis as an int, several (or none) as a tuple.
std::string axes_arg(const std::vector<int>& axes) {
  if (axes.size() == 1) return std::to_string(axes[0]);
  std::string s = "(";
  for (std::size_t i = 0; i < axes.size(); ++i) s += (i ? ", " : "") + std::to_string(axes[i]);
  return s + ")";
}

Array from_doubles(const std::vector<double>& v, const Shape& shape, DType dtype) {
  return Array(v, shape, dtype);
}

}  // namespace

Array zeros(const random::Key&, const Shape& shape, DType dtype) {
  return numpy::full(shape, 0.0, dtype);
}
Array ones(const random::Key&, const Shape& shape, DType dtype) {
  return numpy::full(shape, 1.0, dtype);
}

Initializer zeros_init() {
  // Built once: every Dense, Conv, ... value constructs its default bias_init (a copy shares it).
  static const Initializer init(
      "zeros", [](const random::Key& k, const Shape& s, DType d) { return zeros(k, s, d); });
  return init;
}
Initializer ones_init() {
  return Initializer("ones",
                     [](const random::Key& k, const Shape& s, DType d) { return ones(k, s, d); });
}
Initializer constant(double value) {
  return Initializer(
      "constant(value=" + num(value) + ")",
      [value](const random::Key&, const Shape& s, DType d) { return numpy::full(s, value, d); });
}

Initializer normal(double stddev) {
  return Initializer("normal(stddev=" + num(stddev) + ")",
                     [stddev](const random::Key& key, const Shape& shape, DType dtype) {
                       check_float(dtype, "normal");
                       return random::detail::normal_scaled(key, shape, dtype,
                                                            to_dtype(stddev, dtype), "normal");
                     });
}

Initializer uniform(double scale) {
  return Initializer("uniform(scale=" + num(scale) + ")",
                     [scale](const random::Key& key, const Shape& shape, DType dtype) {
                       check_float(dtype, "uniform");
                       return random::detail::uniform_scaled(key, shape, dtype, 0.0, 1.0,
                                                             to_dtype(scale, dtype), "uniform");
                     });
}

Initializer truncated_normal(double stddev, double lower, double upper) {
  std::string description = "truncated_normal(stddev=" + num(stddev) + ", lower=" + num(lower) +
                            ", upper=" + num(upper) + ")";
  return Initializer(
      std::move(description), [=](const random::Key& key, const Shape& shape, DType dtype) {
        check_float(dtype, "truncated_normal");
        return random::detail::truncated_normal_scaled(key, lower, upper, shape, dtype,
                                                       to_dtype(stddev, dtype), "truncated_normal");
      });
}

Fans compute_fans(const Shape& shape, std::vector<int> in_axis, std::vector<int> out_axis,
                  std::vector<int> batch_axis) {
  if (in_axis.size() == 1 && in_axis[0] == -2 && shape.size() <= 1) {
    throw Error("nn.initializers.compute_fans: can't compute input and output sizes of a " +
                std::to_string(shape.size()) + "-dimensional weights tensor of shape " +
                shape.str() +
                " with the default in_axis; it must be at least 2-D or in_axis "
                "must be given explicitly");
  }
  const double in_size = axes_size(in_axis, shape, "in_axis");
  const double out_size = axes_size(out_axis, shape, "out_axis");
  const double batch_size = axes_size(batch_axis, shape, "batch_axis");
  if (in_size == 0 || out_size == 0 || batch_size == 0) {
    throw Error("nn.initializers.compute_fans: shape " + shape.str() + " has a zero-sized in " +
                axes_str(in_axis) + ", out " + axes_str(out_axis) + " or batch " +
                axes_str(batch_axis) + " axis, so its fans are undefined");
  }
  // Python's float arithmetic, in JAX's order.
  const double receptive = static_cast<double>(shape.numel()) / in_size / out_size / batch_size;
  return Fans{in_size * receptive, out_size * receptive};
}

Initializer variance_scaling(double scale, std::string mode, std::string distribution,
                             std::vector<int> in_axis, std::vector<int> out_axis,
                             std::vector<int> batch_axis) {
  if (mode != "fan_in" && mode != "fan_out" && mode != "fan_avg" && mode != "fan_geo_avg") {
    throw Error("nn.initializers.variance_scaling: invalid mode \"" + mode +
                "\"; expected fan_in, fan_out, fan_avg or fan_geo_avg");
  }
  if (distribution != "truncated_normal" && distribution != "normal" && distribution != "uniform") {
    throw Error("nn.initializers.variance_scaling: invalid distribution \"" + distribution +
                "\"; expected truncated_normal, normal or uniform");
  }
  if (!(scale > 0)) {
    throw Error("nn.initializers.variance_scaling: scale must be positive, got " +
                std::to_string(scale));
  }
  std::string description = "variance_scaling(scale=" + num(scale) + ", mode=" + mode +
                            ", distribution=" + distribution + ", in_axis=" + axes_arg(in_axis) +
                            ", out_axis=" + axes_arg(out_axis) +
                            ", batch_axis=" + axes_arg(batch_axis) + ")";
  return Initializer(
      std::move(description), [=](const random::Key& key, const Shape& shape, DType dtype) {
        check_float(dtype, "variance_scaling");
        const Fans f = compute_fans(shape, in_axis, out_axis, batch_axis);
        double denominator;
        if (mode == "fan_in")
          denominator = f.fan_in;
        else if (mode == "fan_out")
          denominator = f.fan_out;
        else if (mode == "fan_avg")
          denominator = (f.fan_in + f.fan_out) / 2;
        else
          denominator = std::pow(f.fan_in * f.fan_out, 0.5);
        const double variance = to_dtype(scale / denominator, dtype);
        if (distribution == "truncated_normal") {
          // The standard deviation of a standard normal truncated to (-2, 2).
          double stddev;
          if (dtype == DType::float32) {
            stddev = std::sqrt(static_cast<float>(variance)) / 0.87962566103423978f;
          } else {
            stddev = std::sqrt(variance) / 0.87962566103423978;
          }
          return random::detail::truncated_normal_scaled(key, -2.0, 2.0, shape, dtype, stddev,
                                                         "variance_scaling");
        }
        if (distribution == "normal") {
          return random::detail::normal_scaled(key, shape, dtype, sqrt_dtype(variance, dtype),
                                               "variance_scaling");
        }
        const double s = sqrt_dtype(to_dtype(3 * variance, dtype), dtype);
        return random::detail::uniform_scaled(key, shape, dtype, -1.0, 1.0, s, "variance_scaling");
      });
}

Initializer lecun_normal(std::vector<int> in_axis, std::vector<int> out_axis,
                         std::vector<int> batch_axis) {
  // The default axes are Dense's default kernel_init, built with every Dense value (a module's
  // call constructs its submodules): built once and shared by its copies, not rebuilt per call.
  if (in_axis.size() == 1 && in_axis[0] == -2 && out_axis.size() == 1 && out_axis[0] == -1 &&
      batch_axis.empty()) {
    static const Initializer init =
        variance_scaling(1.0, "fan_in", "truncated_normal", {-2}, {-1}, {});
    return init;
  }
  return variance_scaling(1.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis);
}
Initializer lecun_uniform(std::vector<int> in_axis, std::vector<int> out_axis,
                          std::vector<int> batch_axis) {
  return variance_scaling(1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis);
}
Initializer glorot_normal(std::vector<int> in_axis, std::vector<int> out_axis,
                          std::vector<int> batch_axis) {
  return variance_scaling(1.0, "fan_avg", "truncated_normal", in_axis, out_axis, batch_axis);
}
Initializer glorot_uniform(std::vector<int> in_axis, std::vector<int> out_axis,
                           std::vector<int> batch_axis) {
  return variance_scaling(1.0, "fan_avg", "uniform", in_axis, out_axis, batch_axis);
}
Initializer he_normal(std::vector<int> in_axis, std::vector<int> out_axis,
                      std::vector<int> batch_axis) {
  return variance_scaling(2.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis);
}
Initializer he_uniform(std::vector<int> in_axis, std::vector<int> out_axis,
                       std::vector<int> batch_axis) {
  return variance_scaling(2.0, "fan_in", "uniform", in_axis, out_axis, batch_axis);
}
Initializer xavier_normal(std::vector<int> in_axis, std::vector<int> out_axis,
                          std::vector<int> batch_axis) {
  return glorot_normal(in_axis, out_axis, batch_axis);
}
Initializer xavier_uniform(std::vector<int> in_axis, std::vector<int> out_axis,
                           std::vector<int> batch_axis) {
  return glorot_uniform(in_axis, out_axis, batch_axis);
}
Initializer kaiming_normal(std::vector<int> in_axis, std::vector<int> out_axis,
                           std::vector<int> batch_axis) {
  return he_normal(in_axis, out_axis, batch_axis);
}
Initializer kaiming_uniform(std::vector<int> in_axis, std::vector<int> out_axis,
                            std::vector<int> batch_axis) {
  return he_uniform(in_axis, out_axis, batch_axis);
}

Initializer orthogonal(double scale, int column_axis) {
  std::string description =
      "orthogonal(scale=" + num(scale) + ", column_axis=" + std::to_string(column_axis) + ")";
  return Initializer(
      std::move(description),
      [=](const random::Key& key, const Shape& shape, DType dtype) -> Array {
        check_float(dtype, "orthogonal");
        if (shape.size() < 2) {
          throw Error("nn.initializers.orthogonal: requires at least a 2-D shape, got " +
                      shape.str());
        }
        const int col = column_axis < 0 ? column_axis + shape.size() : column_axis;
        if (col < 0 || col >= shape.size()) {
          throw Error("nn.initializers.orthogonal: column_axis " + std::to_string(column_axis) +
                      " is out of bounds for shape " + shape.str());
        }
        if (shape.numel() == 0) return numpy::full(shape, 0.0, dtype);
        const std::int64_t n_cols = shape[col];
        const std::int64_t n_rows = shape.numel() / n_cols;
        // jax.random.orthogonal(key, n_rows, m=n_cols): QR of a (max, min) normal matrix.
        const std::int64_t big = std::max(n_rows, n_cols), small = std::min(n_rows, n_cols);
        const Array z = random::normal(key, Shape{big, small}, dtype);
        const std::vector<double> q = orthonormal_columns(z.to_vector<double>(), big, small);
        // Q is (big, small); the (n_rows, n_cols) matrix is Q or Q^T.
        const double s = to_dtype(scale, dtype);
        std::vector<double> mat(static_cast<std::size_t>(n_rows * n_cols));
        for (std::int64_t r = 0; r < n_rows; ++r)
          for (std::int64_t c = 0; c < n_cols; ++c) {
            const double v = n_rows >= n_cols ? q[static_cast<std::size_t>(r * small + c)]
                                              : q[static_cast<std::size_t>(c * small + r)];
            mat[static_cast<std::size_t>(r * n_cols + c)] = to_dtype(v, dtype);
          }
        // Reshape to (shape without col) + (n_cols,), then move the last axis to col.
        std::vector<double> out(mat.size());
        std::int64_t outer = 1, inner = 1;
        for (int d = 0; d < col; ++d) outer *= shape[d];
        for (int d = col + 1; d < shape.size(); ++d) inner *= shape[d];
        for (std::int64_t a = 0; a < outer; ++a)
          for (std::int64_t i = 0; i < inner; ++i)
            for (std::int64_t c = 0; c < n_cols; ++c) {
              const double v = mat[static_cast<std::size_t>((a * inner + i) * n_cols + c)];
              out[static_cast<std::size_t>((a * n_cols + c) * inner + i)] = to_dtype(s * v, dtype);
            }
        return from_doubles(out, shape, dtype);
      });
}

Initializer delta_orthogonal(double scale, int column_axis) {
  std::string description =
      "delta_orthogonal(scale=" + num(scale) + ", column_axis=" + std::to_string(column_axis) + ")";
  return Initializer(
      std::move(description),
      [=](const random::Key& key, const Shape& shape, DType dtype) -> Array {
        check_float(dtype, "delta_orthogonal");
        const int nd = shape.size();
        if (nd < 3 || nd > 5) {
          throw Error("nn.initializers.delta_orthogonal: requires a 3-D, 4-D or 5-D shape, got " +
                      shape.str());
        }
        const std::int64_t in = shape[nd - 2], out = shape[nd - 1];
        if (out < in) {
          throw Error("nn.initializers.delta_orthogonal: fan_in must be <= fan_out, got shape " +
                      shape.str() + " (in " + std::to_string(in) + " > out " + std::to_string(out) +
                      ")");
        }
        for (int d = 0; d < nd - 2; ++d) {
          if (shape[d] == 0) {
            throw Error(
                "nn.initializers.delta_orthogonal: spatial dimensions must be non-zero, got " +
                shape.str());
          }
        }
        const Array ortho = orthogonal(scale, column_axis)(key, Shape{in, out}, dtype);
        const std::vector<double> o = ortho.to_vector<double>();
        std::vector<double> w(static_cast<std::size_t>(shape.numel()), 0.0);
        std::int64_t centre = 0;  // flat index of the spatial centre, in units of in * out
        for (int d = 0; d < nd - 2; ++d) centre = centre * shape[d] + (shape[d] - 1) / 2;
        std::copy(o.begin(), o.end(), w.begin() + centre * in * out);
        return from_doubles(w, shape, dtype);
      });
}

}  // namespace loom::nn::initializers
