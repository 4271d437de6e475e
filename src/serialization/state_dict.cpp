// to_state_dict/from_state_dict and the byte-level entry points (flax/serialization.py).
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "loom/serialization.hpp"
#include "serialization/value.hpp"

namespace loom::serialization {
namespace {
using detail::Value;

std::string join_path(const std::vector<std::string>& path) {
  std::string s;
  for (const auto& k : path) s += (s.empty() ? "" : "/") + k;
  return s;
}

std::string describe(const Array& a) {
  return std::string(dtype_name(a.dtype())) + " " + a.shape().str();
}

std::string keys_of(const std::map<std::string, Value>& d) {
  std::string s = "{";
  for (const auto& [k, v] : d) s += (s.size() > 1 ? ", \"" : "\"") + k + "\"";
  return s + "}";
}

std::string describe(const Value& v) {
  switch (v.kind) {
    case Value::Kind::dict:
      return "a dict with keys " + keys_of(v.dict);
    case Value::Kind::array:
      return "an array " + describe(v.array);
    case Value::Kind::integer:
      return "the integer " + std::to_string(v.i);
    case Value::Kind::floating:
      return "a float";
    case Value::Kind::boolean:
      return "a bool";
  }
  return "?";
}

// A plain msgpack number as a 0-d array of `dtype`, or an invalid Array when not representable.
Array scalar_as(const Value& v, DType dtype) {
  switch (v.kind) {
    case Value::Kind::integer:
      if (dtype == DType::int32 && v.i >= std::numeric_limits<std::int32_t>::min() &&
          v.i <= std::numeric_limits<std::int32_t>::max())
        return Array::scalar(static_cast<std::int32_t>(v.i));
      if (dtype == DType::uint32 && v.i >= 0 && v.i <= std::numeric_limits<std::uint32_t>::max())
        return Array::scalar(static_cast<std::uint32_t>(v.i));
      if (dtype == DType::float32) return Array::scalar(static_cast<float>(v.i));
      if (dtype == DType::float64) return Array::scalar(static_cast<double>(v.i));
      return {};
    case Value::Kind::floating:
      if (dtype == DType::float32) return Array::scalar(static_cast<float>(v.f));
      if (dtype == DType::float64) return Array::scalar(v.f);
      return {};
    case Value::Kind::boolean:
      if (dtype == DType::bool_) return Array::scalar(v.b);
      return {};
    default:
      return {};
  }
}

[[noreturn]] void fail(const char* op, const std::vector<std::string>& path,
                       const std::string& what) {
  throw Error(std::string(op) + ": at \"" + join_path(path) + "\": " + what);
}

// Untargeted: plain ints become int32 (uint32 when only that fits), floats float32, bools bool.
Tree to_tree(const Value& v, const char* op, std::vector<std::string>& path) {
  switch (v.kind) {
    case Value::Kind::dict: {
      Tree::Dict d;
      for (const auto& [k, c] : v.dict) {
        path.push_back(k);
        d.emplace(k, to_tree(c, op, path));
        path.pop_back();
      }
      return Tree(std::move(d));
    }
    case Value::Kind::array:
      return Tree(v.array);
    case Value::Kind::integer: {
      Array a = scalar_as(v, DType::int32);
      if (!a.valid()) a = scalar_as(v, DType::uint32);
      if (!a.valid())
        fail(op, path, "the integer " + std::to_string(v.i) + " does not fit int32 or uint32");
      return Tree(a);
    }
    case Value::Kind::floating:
      return Tree(scalar_as(v, DType::float32));
    case Value::Kind::boolean:
      return Tree(scalar_as(v, DType::bool_));
  }
  return {};
}

Tree restore(const Tree& target, const Value& v, const char* op, std::vector<std::string>& path) {
  if (target.is_dict()) {
    if (v.kind != Value::Kind::dict) {
      fail(op, path,
           "the target has a dict with " + std::to_string(target.size()) + " keys, the state has " +
               describe(v));
    }
    std::string missing, extra;
    for (const auto& [k, c] : target.dict())
      if (!v.dict.count(k)) missing += (missing.empty() ? "\"" : ", \"") + k + "\"";
    for (const auto& [k, c] : v.dict)
      if (!target.contains(k)) extra += (extra.empty() ? "\"" : ", \"") + k + "\"";
    if (!missing.empty()) fail(op, path, "the state lacks the target's keys {" + missing + "}");
    if (!extra.empty())
      fail(op, path, "the state has keys {" + extra + "} that the target does not have");
    Tree::Dict d;
    for (const auto& [k, c] : target.dict()) {
      path.push_back(k);
      d.emplace(k, restore(c, v.dict.at(k), op, path));
      path.pop_back();
    }
    return Tree(std::move(d));
  }
  const Array& t = target.leaf();
  if (!t.valid()) fail(op, path, "the target leaf is an empty (default-constructed) Array");
  if (v.kind == Value::Kind::array) {
    if (!v.array.valid()) fail(op, path, "the state leaf is an empty (default-constructed) Array");
    if (v.array.shape() != t.shape() || v.array.dtype() != t.dtype())
      fail(op, path, "the state has " + describe(v.array) + ", the target " + describe(t));
    return Tree(v.array);
  }
  if (v.kind == Value::Kind::dict)
    fail(op, path, "the target has an array " + describe(t) + ", the state " + describe(v));
  Array a = t.ndim() == 0 ? scalar_as(v, t.dtype()) : Array();
  if (!a.valid())
    fail(op, path,
         "the state has " + describe(v) + ", which cannot restore the target " + describe(t));
  return Tree(a);
}

Value to_value(const Tree& t) {
  Value v;
  if (t.is_leaf()) {
    v.kind = Value::Kind::array;
    v.array = t.leaf();
    return v;
  }
  for (const auto& [k, c] : t.dict()) v.dict.emplace(k, to_value(c));
  return v;
}

}  // namespace

Tree to_state_dict(const Tree& target) {
  return target;
}

Tree from_state_dict(const Tree& target, const Tree& state) {
  std::vector<std::string> path;
  return restore(target, to_value(state), "from_state_dict", path);
}

Tree msgpack_restore(std::span<const std::uint8_t> bytes) {
  std::vector<std::string> path;
  return to_tree(detail::decode(bytes, "msgpack_restore"), "msgpack_restore", path);
}

Bytes to_bytes(const Tree& target) {
  return msgpack_serialize(to_state_dict(target));
}

Tree from_bytes(const Tree& target, std::span<const std::uint8_t> bytes) {
  std::vector<std::string> path;
  return restore(target, detail::decode(bytes, "from_bytes"), "from_bytes", path);
}

}  // namespace loom::serialization
