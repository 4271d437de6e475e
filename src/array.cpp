// loom::Shape and loom::Array: storage and conversion (printing: array_print.cpp).
#include "loom/array.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>

#include "detail/allocator.hpp"
#include "detail/dispatch.hpp"
#include "detail/primitive.hpp"

namespace loom {

// ---- Shape --------------------------------------------------------------------------------

Shape::Shape(std::initializer_list<std::int64_t> dims) {
  for (std::int64_t d : dims) push_back(d);
}

Shape::Shape(std::span<const std::int64_t> dims) {
  for (std::int64_t d : dims) push_back(d);
}

std::int64_t Shape::numel() const {
  // The non-zero dimensions must multiply within int64 even when another dimension is 0:
  // index and stride arithmetic uses them, whatever the order of the dimensions.
  std::int64_t n = 1;
  bool has_zero = false;
  for (int i = 0; i < rank_; ++i) {
    const std::int64_t d = dims_[static_cast<std::size_t>(i)];
    if (d == 0) {
      has_zero = true;
    } else if (__builtin_mul_overflow(n, d, &n)) {
      throw Error("Shape: the number of elements of " + str() + " overflows int64");
    }
  }
  return has_zero ? 0 : n;
}

std::int64_t Shape::at(int i) const {
  if (i < 0 || i >= rank_) {
    throw Error("Shape.at(" + std::to_string(i) + "): out of range for shape " + str());
  }
  return dims_[static_cast<std::size_t>(i)];
}

void Shape::push_back(std::int64_t d) {
  if (rank_ >= kMaxRank) {
    throw Error("Shape: loom supports at most " + std::to_string(kMaxRank) + " dimensions");
  }
  if (d < 0) {
    throw Error("Shape: dimension " + std::to_string(rank_) + " is negative (" + std::to_string(d) +
                ")");
  }
  dims_[static_cast<std::size_t>(rank_++)] = d;
}

void Shape::insert(int pos, std::int64_t d) {
  if (pos < 0 || pos > rank_) throw Error("Shape.insert: position out of range");
  push_back(0);
  for (int i = rank_ - 1; i > pos; --i) dims_[std::size_t(i)] = dims_[std::size_t(i - 1)];
  dims_[std::size_t(pos)] = d;
}

void Shape::erase(int pos) {
  if (pos < 0 || pos >= rank_) throw Error("Shape.erase: position out of range");
  for (int i = pos; i + 1 < rank_; ++i) dims_[std::size_t(i)] = dims_[std::size_t(i + 1)];
  --rank_;
}

std::string Shape::str() const {
  std::string s = "(";
  for (int i = 0; i < rank_; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[std::size_t(i)]);
  }
  if (rank_ == 1) s += ",";
  return s + ")";
}

bool operator==(const Shape& a, const Shape& b) {
  return a.rank_ == b.rank_ && std::equal(a.begin(), a.end(), b.begin());
}

std::ostream& operator<<(std::ostream& os, const Shape& shape) {
  return os << shape.str();
}

// ---- Array --------------------------------------------------------------------------------

Array Array::empty(Shape shape, DType dtype) {
  Array out;
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<std::size_t>(shape.numel()), itemsize(dtype), &bytes) ||
      bytes > (std::size_t{1} << 46)) {
    throw Error("Array: a " + std::string(dtype_name(dtype)) + " array of shape " + shape.str() +
                " is too large to allocate");
  }
  out.buffer_ = detail::Buffer::allocate(bytes);
  out.shape_ = shape;
  out.dtype_ = dtype;
  return out;
}

Array Array::reshaped_view(Shape shape) const {
  detail::check_valid(*this, "reshaped_view");
  if (shape.numel() != size()) {
    throw Error("Array.reshaped_view: cannot view an array of shape " + shape_.str() +
                " as shape " + shape.str());
  }
  Array out;
  out.buffer_ = buffer_;
  out.shape_ = shape;
  out.dtype_ = dtype_;
  return out;
}

Array Array::untouched_zeros(Shape shape, DType dtype) {
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<std::size_t>(shape.numel()), itemsize(dtype), &bytes)) {
    throw Error("Array: a " + std::string(dtype_name(dtype)) + " array of shape " + shape.str() +
                " is too large to allocate");
  }
  Array out;
  out.buffer_ = detail::Buffer::allocate_zero_pages(bytes);
  out.shape_ = shape;
  out.dtype_ = dtype;
  return out;
}

const void* Array::raw_data() const {
  if (!buffer_) throw Error("Array: the array is empty (default-constructed)");
  return buffer_->data;
}

void* Array::raw_mutable_data() {
  if (!buffer_) throw Error("Array: the array is empty (default-constructed)");
  return buffer_->data;
}

void Array::throw_bad_access(DType requested, const char* what) const {
  if (!buffer_) throw Error(std::string("Array.") + what + ": the array is empty");
  if (requested != dtype_) {
    throw Error(std::string("Array.") + what + ": requested " + dtype_name(requested) +
                " elements from a " + dtype_name(dtype_) + " array of shape " + shape_.str());
  }
  throw Error(std::string("Array.") + what + ": invalid access");
}

Array Array::astype(DType dtype) const {
  detail::check_valid(*this, "astype");
  if (dtype == dtype_) return *this;
  Array out = empty(shape_, dtype);
  detail::convert(raw_data(), dtype_, out.raw_mutable_data(), dtype, size());
  // Differentiable between floating dtypes (the cotangent is converted back); a conversion to or
  // from an integer or bool dtype is bound without a VJP, so jit and vmap still see it.
  static constexpr detail::Primitive kAstype{.name = "astype",
                                             .batching = detail::Batching::elementwise,
                                             .forward = detail::Forward::linear};
  if (detail::transforming()) {
    const DType src = dtype_;
    auto impl = [dtype](const std::vector<Array>& in) { return in[0].astype(dtype); };
    if (is_floating(dtype) && is_floating(dtype_)) {
      detail::bind(kAstype, out, {this}, impl, [src](const Array& g, const Array&) {
        return std::vector<Array>{g.astype(src)};
      });
    } else {
      detail::bind(kAstype, out, {this}, impl, nullptr);
    }
  }
  return out;
}

namespace detail {

void check_valid(const Array& x, const char* op) {
  if (!x.valid()) throw Error(std::string(op) + ": got an empty (default-constructed) Array");
}

// The host-read hook of loom::jit / loom::vmap (see detail::host_read_hook in array.hpp).
HostReadHook& host_read_hook() {
  thread_local HostReadHook hook = nullptr;
  return hook;
}

void throw_ragged(const char* what) {
  throw Error(std::string("Array: nested initializer list is ragged (") + what +
              " of different lengths)");
}

void convert(const void* in, DType src, void* out, DType dst, std::int64_t n) {
  if (n <= 0) return;  // an empty std::vector's data() may be null: memcpy(null, ..., 0) is UB
  if (src == dst) {
    std::memcpy(out, in, static_cast<std::size_t>(n) * itemsize(src));
    return;
  }
  dispatch(src, [&]<typename S>() {
    dispatch(dst, [&]<typename D>() {
      const S* s = static_cast<const S*>(in);
      D* d = static_cast<D*>(out);
      for (std::int64_t i = 0; i < n; ++i) {
        if constexpr (std::is_same_v<D, bool>) {
          d[i] = s[i] != S(0);
        } else if constexpr (std::is_integral_v<D> && std::is_floating_point_v<S>) {
          // Float -> int truncates toward zero as NumPy/XLA; out-of-range and NaN saturate
          // instead of being undefined behaviour.
          const S v = s[i];
          if (std::isnan(v))
            d[i] = D(0);
          else if (v <= S(std::numeric_limits<D>::min()))
            d[i] = std::numeric_limits<D>::min();
          else if (v >= S(std::numeric_limits<D>::max()))
            d[i] = std::numeric_limits<D>::max();
          else
            d[i] = static_cast<D>(v);
        } else {
          d[i] = static_cast<D>(s[i]);
        }
      }
    });
  });
}

}  // namespace detail

}  // namespace loom
