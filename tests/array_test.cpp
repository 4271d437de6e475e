// loom::Array and loom::Shape: construction, conversion, printing, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "loom/loom.hpp"

namespace jnp = loom::numpy;
using loom::Array;
using loom::DType;
using loom::Shape;

TEST(Shape, BasicsAndPythonStyleText) {
  Shape s{2, 3};
  EXPECT_EQ(s.size(), 2);
  EXPECT_EQ(s.numel(), 6);
  EXPECT_EQ(s.str(), "(2, 3)");
  EXPECT_EQ(Shape{4}.str(), "(4,)");
  EXPECT_EQ(Shape{}.str(), "()");
  EXPECT_EQ(Shape{}.numel(), 1);
  EXPECT_THROW(Shape({1, 1, 1, 1, 1, 1, 1, 1, 1}), loom::Error);
  EXPECT_THROW(Shape({-1}), loom::Error);
}

TEST(Array, LiteralsFollowJaxDefaults) {
  Array f = {{1.0, 2.0}, {3.0, 4.0}};
  EXPECT_EQ(f.dtype(), DType::float32);
  EXPECT_EQ(f.shape(), (Shape{2, 2}));
  Array i = {1, 2, 3};
  EXPECT_EQ(i.dtype(), DType::int32);
  Array b = {true, false};
  EXPECT_EQ(b.dtype(), DType::bool_);
  Array v(std::vector<double>{1, 2, 3, 4, 5, 6}, Shape{2, 3});
  EXPECT_EQ(v.dtype(), DType::float64);
  EXPECT_EQ(v.to_vector<int>(), (std::vector<int>{1, 2, 3, 4, 5, 6}));
  Array t = {{{1, 2}, {3, 4}}, {{5, 6}, {7, 8}}};
  EXPECT_EQ(t.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(t.to_vector<int>()[7], 8);
}

TEST(Array, BuffersAre64ByteAligned) {
  for (int n : {1, 3, 17, 1000}) {
    Array a = jnp::zeros({n});
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.raw_data()) % 64, 0u);
  }
}

TEST(Array, AstypeAndItem) {
  Array x = {1.5, -2.7, 3.0};
  EXPECT_EQ(x.astype(DType::int32).to_vector<int>(), (std::vector<int>{1, -2, 3}));  // truncation
  EXPECT_EQ(x.astype(DType::bool_).to_vector<bool>(), (std::vector<bool>{true, true, true}));
  EXPECT_DOUBLE_EQ(Array::scalar(2.5).item<double>(), 2.5);
  EXPECT_THROW(x.item<float>(), loom::Error);
}

TEST(Array, CopiesShareTheBuffer) {
  Array a = {1.f, 2.f};
  Array b = a;
  EXPECT_EQ(a.raw_data(), b.raw_data());
}

TEST(Array, PrintsLikeJax) {
  EXPECT_EQ(Array({{1.0, 2.0}}).str(), "Array([[1., 2.]], dtype=float32)");
  EXPECT_EQ(Array({1, 2, 3}).str(), "Array([1, 2, 3], dtype=int32)");
  EXPECT_EQ(Array({true, false}).str(), "Array([ True, False], dtype=bool)");
  EXPECT_EQ(Array::scalar(1.5f).str(), "Array(1.5, dtype=float32)");
  EXPECT_EQ(Array({1.0, 2.5}).str(), "Array([1. , 2.5], dtype=float32)");
  EXPECT_EQ(Array({{1, 2}, {3, 4}}).str(), "Array([[1, 2],\n       [3, 4]], dtype=int32)");
}

TEST(Array, Errors) {
  EXPECT_THROW(Array(std::vector<float>{1, 2, 3}, Shape{2, 2}), loom::Error);
  EXPECT_THROW(Array({{1, 2}, {3}}), loom::Error);
  Array f = {1.f};
  EXPECT_THROW(f.data<double>(), loom::Error);
  Array empty;
  EXPECT_THROW(empty.astype(DType::float64), loom::Error);
  EXPECT_THROW(loom::promote_types(DType::int32, DType::uint32), loom::Error);
}

TEST(DType, PromotionTable) {
  using loom::promote_types;
  EXPECT_EQ(promote_types(DType::bool_, DType::int32), DType::int32);
  EXPECT_EQ(promote_types(DType::int32, DType::float32), DType::float32);
  EXPECT_EQ(promote_types(DType::uint32, DType::float64), DType::float64);
  EXPECT_EQ(promote_types(DType::float32, DType::float64), DType::float64);
  EXPECT_EQ(promote_types(DType::bool_, DType::bool_), DType::bool_);
}

TEST(Array, HugeShapesAreErrorsNotOverflow) {
  const std::int64_t big = std::int64_t{1} << 40;
  EXPECT_THROW(Shape({big, big}).numel(), loom::Error);
  EXPECT_THROW(jnp::zeros({big, big}), loom::Error);
  EXPECT_THROW(jnp::zeros({big, 1 << 10}), loom::Error);  // 2^50 floats: too large
  EXPECT_THROW(jnp::reshape(jnp::zeros({4}), {big, big, -1}), loom::Error);
  // The non-zero dimensions must fit int64 whatever their order, even beside a 0.
  EXPECT_THROW(jnp::zeros({0, std::int64_t{1} << 62, 4}), loom::Error);
  EXPECT_EQ(jnp::zeros({0, 1 << 20, 4}).size(), 0);
  EXPECT_THROW(Shape({2, 3}).at(2), loom::Error);
  EXPECT_EQ(Shape({2, 3}).at(1), 3);
}

TEST(Creation, OutOfRangeFillValuesConvertLikeAstype) {
  // A plain float->int cast of these would be undefined behaviour; loom saturates like astype.
  EXPECT_EQ(jnp::full({1}, 1e10, DType::int32).to_vector<int>(), (std::vector<int>{2147483647}));
  EXPECT_EQ(jnp::full({1}, std::nan(""), DType::int32).to_vector<int>(), (std::vector<int>{0}));
  EXPECT_EQ(jnp::full({1}, -1.0, DType::uint32).to_vector<std::uint32_t>(),
            (std::vector<std::uint32_t>{0u}));
  EXPECT_THROW(jnp::arange(0, 1e300, 1), loom::Error);
}

TEST(Creation, Basics) {
  EXPECT_EQ(jnp::arange(4).to_vector<int>(), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(jnp::arange(1, 2, 0.25, DType::float32).to_vector<float>(),
            (std::vector<float>{1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(jnp::eye(2, 3, 1).to_vector<float>(), (std::vector<float>{0, 1, 0, 0, 0, 1}));
  EXPECT_EQ(jnp::linspace(0, 1, 5).to_vector<float>(), (std::vector<float>{0, .25, .5, .75, 1}));
  EXPECT_EQ(jnp::full({2}, 7, DType::int32).to_vector<int>(), (std::vector<int>{7, 7}));
  EXPECT_THROW(jnp::arange(0, 1, 0), loom::Error);
}

TEST(ArrayEmpty, FromEmptyVectorHasShapeAndNoElements) {
  // An empty std::vector has a null data(): building from it must not pass null to memcpy
  // (UBSan's nonnull check caught that).
  loom::Array a(std::vector<float>{}, loom::Shape{0, 3});
  EXPECT_EQ(a.shape(), (loom::Shape{0, 3}));
  EXPECT_TRUE(a.to_vector<float>().empty());
}
