// loom::Array: an n-dimensional, row-major, immutable array, the counterpart of jax.Array.
//
//   loom::Array x = {{1.f, 2.f}, {3.f, 4.f}};        // float32, shape (2, 2)
//   loom::Array y({1, 2, 3}, loom::Shape{3});         // from std::vector<int> -> int32
//   std::cout << x;      // Array([[1., 2.],\n       [3., 4.]], dtype=float32), as JAX prints
//   float v = x.astype(loom::DType::float64).to_vector<double>()[3];
//
// Copies are cheap: they share one 64-byte-aligned buffer, which nobody mutates after an op has
// produced it. Literals follow JAX: floating literals give float32, integer literals int32, bool
// literals bool; a std::vector<T> gives the dtype of T (double -> float64).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "loom/dtype.hpp"
#include "loom/error.hpp"

namespace loom {

/// The dimensions of an array. A small inline vector: at most Shape::kMaxRank dimensions.
///   loom::Shape s{2, 3};  s.size() == 2;  s.numel() == 6;  s.str() == "(2, 3)"
class Shape {
 public:
  static constexpr int kMaxRank = 8;

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims);
  explicit Shape(std::span<const std::int64_t> dims);
  template <typename Int, typename = std::enable_if_t<std::is_integral_v<Int>>>
  explicit Shape(const std::vector<Int>& dims) {
    for (Int d : dims) push_back(static_cast<std::int64_t>(d));
  }

  int size() const { return rank_; }  // number of dimensions
  int rank() const { return rank_; }
  bool empty() const { return rank_ == 0; }
  std::int64_t numel() const;  // product of the dimensions (1 for a scalar)
  /// Dimension i, unchecked (0 <= i < size()), as std::vector::operator[]; at(i) checks.
  std::int64_t operator[](int i) const { return dims_[static_cast<std::size_t>(i)]; }
  std::int64_t at(int i) const;
  std::int64_t& operator[](int i) { return dims_[static_cast<std::size_t>(i)]; }
  const std::int64_t* begin() const { return dims_.data(); }
  const std::int64_t* end() const { return dims_.data() + rank_; }
  const std::int64_t* data() const { return dims_.data(); }
  std::int64_t back() const { return dims_[static_cast<std::size_t>(rank_ - 1)]; }
  void push_back(std::int64_t d);
  void insert(int pos, std::int64_t d);
  void erase(int pos);
  std::vector<std::int64_t> to_vector() const { return {begin(), end()}; }
  std::string str() const;  // "(2, 3)", "(4,)", "()" as Python prints tuples

  friend bool operator==(const Shape& a, const Shape& b);
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }

 private:
  std::array<std::int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

std::ostream& operator<<(std::ostream& os, const Shape& shape);

namespace detail {
struct Buffer;
struct Node;
}  // namespace detail

class Array {
 public:
  /// An empty handle; every op rejects it. Exists so Arrays can live in containers.
  Array() = default;

  /// A 0-d array (scalar) of the given dtype.
  template <typename T>
  static Array scalar(T value, DType dtype = dtype_of<T>()) {
    return from_data(std::span<const T>(&value, 1), Shape{}, dtype);
  }

  /// From nested initializer lists (1-D, 2-D, 3-D). Floating literals give float32 unless
  /// `dtype` says otherwise.
  template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T>>>
  Array(std::initializer_list<T> values)
      : Array(from_list(values, Shape{std::int64_t(values.size())}, literal_dtype<T>())) {}
  template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T>>>
  Array(std::initializer_list<T> values, DType dtype)
      : Array(from_list(values, Shape{std::int64_t(values.size())}, dtype)) {}
  template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T>>>
  Array(std::initializer_list<std::initializer_list<T>> rows, DType dtype = literal_dtype<T>())
      : Array(from_nested(rows, dtype)) {}
  template <typename T, typename = std::enable_if_t<std::is_arithmetic_v<T>>>
  Array(std::initializer_list<std::initializer_list<std::initializer_list<T>>> planes,
        DType dtype = literal_dtype<T>())
      : Array(from_nested3(planes, dtype)) {}

  /// From flat row-major data and a shape; the dtype is that of T unless given.
  template <typename T>
  Array(const std::vector<T>& data, Shape shape, DType dtype = dtype_of<T>())
      : Array(from_data(std::span<const T>(data.data(), data.size()), shape, dtype)) {}

  /// Flat data of any supported element type, converted to `dtype`.
  template <typename T>
  static Array from_data(std::span<const T> data, Shape shape, DType dtype);

  /// Uninitialized storage of the given shape and dtype. For kernel writers: fill it through
  /// mutable_data() before anybody else sees the array.
  static Array empty(Shape shape, DType dtype);

  /// Zeros whose storage the OS commits only when written (anonymous pages): reading them costs
  /// no physical memory. What an eval_shape-style init (Module::init_shapes) returns as params.
  ///   loom::Array w = loom::Array::untouched_zeros({4096, 4096}, loom::DType::float32);
  static Array untouched_zeros(Shape shape, DType dtype);

  bool valid() const { return buffer_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return shape_.size(); }
  std::int64_t size() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }
  std::size_t nbytes() const { return static_cast<std::size_t>(size()) * itemsize(dtype_); }

  /// Typed read access; throws when T does not match dtype().
  template <typename T>
  const T* data() const {
    check_access(dtype_of<T>(), "data");
    return static_cast<const T*>(raw_data());
  }
  const void* raw_data() const;
  /// Typed write access, for kernels filling a fresh array made by Array::empty.
  template <typename T>
  T* mutable_data() {
    check_access(dtype_of<T>(), "mutable_data");
    return static_cast<T*>(raw_mutable_data());
  }
  void* raw_mutable_data();
  /// True when this handle is the only one sharing its buffer (no copy, view or other handle
  /// sees it), so an op that consumes it may write its result there unobserved (loom::optim
  /// updates optimizer state and params in place this way).
  ///   loom::Array a = jnp::zeros({3});  a.unique() == true;  loom::Array b = a;  // now false
  bool unique() const { return buffer_ != nullptr && buffer_.use_count() == 1; }

  /// All elements, row-major, converted to T.
  template <typename T>
  std::vector<T> to_vector() const;
  /// The single element of a size-1 array, converted to T.
  template <typename T>
  T item() const;
  /// A copy converted to `dtype` (the same array when the dtype already matches).
  Array astype(DType dtype) const;

  /// JAX's repr: NumPy's array2string (shortest round-trip digits up to 8 decimals, aligned
  /// columns, "1.e-05" scientific when NumPy switches, 75-column wrapping, "..." above 1000
  /// elements) inside "Array(..., dtype=float32)".
  ///   Array({1.0, 2.5}).str() == "Array([1. , 2.5], dtype=float32)"
  std::string str() const;

  // Autodiff bookkeeping (see loom/autodiff.hpp); invisible to users.
  const std::shared_ptr<detail::Node>& node() const { return node_; }
  void set_node(std::shared_ptr<detail::Node> node) { node_ = std::move(node); }
  /// The same buffer seen with another shape of equal size, without autodiff history (what
  /// numpy::reshape builds on; arrays are immutable, so sharing is safe).
  Array reshaped_view(Shape shape) const;
  /// The same values without autodiff history (what stop_gradient returns).
  Array detached() const {
    Array out = *this;
    out.node_.reset();
    return out;
  }

 private:
  template <typename T>
  static constexpr DType literal_dtype() {
    if constexpr (std::is_same_v<T, bool>)
      return DType::bool_;
    else if constexpr (std::is_floating_point_v<T>)
      return DType::float32;
    else if constexpr (std::is_unsigned_v<T>)
      return DType::uint32;
    else
      return DType::int32;
  }
  template <typename T>
  static Array from_list(std::initializer_list<T> values, Shape shape, DType dtype) {
    return from_data(std::span<const T>(values.begin(), values.size()), shape, dtype);
  }
  template <typename T>
  static Array from_nested(std::initializer_list<std::initializer_list<T>> rows, DType dtype);
  template <typename T>
  static Array from_nested3(
      std::initializer_list<std::initializer_list<std::initializer_list<T>>> planes, DType dtype);
  void check_access(DType requested, const char* what) const {
    if (buffer_ == nullptr || requested != dtype_) [[unlikely]]
      throw_bad_access(requested, what);
  }
  [[noreturn]] void throw_bad_access(DType requested, const char* what) const;

  std::shared_ptr<detail::Buffer> buffer_;
  Shape shape_;
  DType dtype_ = DType::float32;
  std::shared_ptr<detail::Node> node_;
};

std::ostream& operator<<(std::ostream& os, const Array& array);

// ---- template definitions ----------------------------------------------------------------

namespace detail {
// Converts n elements of type `src` at `in` to type `dst` at `out`.
void convert(const void* in, DType src, void* out, DType dst, std::int64_t n);
[[noreturn]] void throw_ragged(const char* what);
// Installed by loom::jit / loom::vmap while they trace (one thread-local per thread, null
// otherwise): called before item()/to_vector() read an array on the host, to reject traced
// values with a clear error.
using HostReadHook = void (*)(const Array& array, const char* what);
HostReadHook& host_read_hook();
}  // namespace detail

template <typename T>
Array Array::from_data(std::span<const T> data, Shape shape, DType dtype) {
  if (static_cast<std::int64_t>(data.size()) != shape.numel()) {
    throw Error("Array: " + std::to_string(data.size()) + " values cannot fill shape " +
                shape.str() + " (which holds " + std::to_string(shape.numel()) + ")");
  }
  Array out = empty(shape, dtype);
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double> ||
                std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::uint32_t> ||
                std::is_same_v<T, bool>) {
    detail::convert(data.data(), dtype_of<T>(), out.raw_mutable_data(), dtype,
                    static_cast<std::int64_t>(data.size()));
  } else {
    std::vector<double> tmp(data.begin(), data.end());
    detail::convert(tmp.data(), DType::float64, out.raw_mutable_data(), dtype,
                    static_cast<std::int64_t>(tmp.size()));
  }
  return out;
}

template <typename T>
Array Array::from_nested(std::initializer_list<std::initializer_list<T>> rows, DType dtype) {
  std::vector<T> flat;
  const std::size_t cols = rows.size() ? rows.begin()->size() : 0;
  for (const auto& row : rows) {
    if (row.size() != cols) detail::throw_ragged("rows");
    flat.insert(flat.end(), row.begin(), row.end());
  }
  if constexpr (std::is_same_v<T, bool>) {
    std::vector<std::uint32_t> u(flat.begin(), flat.end());
    return from_data(std::span<const std::uint32_t>(u),
                     Shape{std::int64_t(rows.size()), std::int64_t(cols)}, dtype);
  } else {
    return from_data(std::span<const T>(flat), Shape{std::int64_t(rows.size()), std::int64_t(cols)},
                     dtype);
  }
}

template <typename T>
Array Array::from_nested3(
    std::initializer_list<std::initializer_list<std::initializer_list<T>>> planes, DType dtype) {
  std::vector<double> flat;
  const std::size_t rows = planes.size() ? planes.begin()->size() : 0;
  std::size_t cols = (planes.size() && rows) ? planes.begin()->begin()->size() : 0;
  for (const auto& plane : planes) {
    if (plane.size() != rows) detail::throw_ragged("planes");
    for (const auto& row : plane) {
      if (row.size() != cols) detail::throw_ragged("rows");
      flat.insert(flat.end(), row.begin(), row.end());
    }
  }
  return from_data(std::span<const double>(flat),
                   Shape{std::int64_t(planes.size()), std::int64_t(rows), std::int64_t(cols)},
                   dtype);
}

template <typename T>
std::vector<T> Array::to_vector() const {
  if (!valid()) throw Error("Array.to_vector: the array is empty (default-constructed)");
  if (detail::HostReadHook hook = detail::host_read_hook()) hook(*this, "to_vector");
  if constexpr (std::is_same_v<T, bool>) {
    std::vector<std::uint32_t> tmp(static_cast<std::size_t>(size()));
    detail::convert(raw_data(), dtype_, tmp.data(), DType::uint32, size());
    return std::vector<bool>(tmp.begin(), tmp.end());
  } else {
    std::vector<T> out(static_cast<std::size_t>(size()));
    detail::convert(raw_data(), dtype_, out.data(), dtype_of<T>(), size());
    return out;
  }
}

template <typename T>
T Array::item() const {
  if (!valid() || size() != 1) {
    throw Error("Array.item: expected an array of size 1, got shape " +
                (valid() ? shape_.str() : std::string("<empty>")));
  }
  if (detail::HostReadHook hook = detail::host_read_hook()) hook(*this, "item");
  return to_vector<T>()[0];
}

}  // namespace loom
