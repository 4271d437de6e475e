// jax.lax.psum / pmean over named axes bound at run time (see loom/lax/collectives.hpp).
#include "loom/lax/collectives.hpp"

#include <map>
#include <mutex>
#include <utility>

#include "detail/primitive.hpp"
#include "loom/error.hpp"
#include "loom/numpy/elementwise.hpp"

namespace loom::lax {
namespace {

std::mutex& registry_mutex() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, AxisReducer>& registry() {
  static std::map<std::string, AxisReducer> axes;
  return axes;
}

AxisReducer lookup(const char* op, const std::string& name) {
  std::lock_guard lock(registry_mutex());
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& [k, v] : registry()) known += (known.empty() ? "\"" : ", \"") + k + "\"";
    throw Error(std::string("lax.") + op + ": unbound axis name \"" + name +
                "\" (bound: " + (known.empty() ? std::string("none") : known) +
                "); bind it first, e.g. loom::distributed::bind_axis_name(\"" + name + "\")");
  }
  return it->second;
}

}  // namespace

void bind_axis(const std::string& name, AxisReducer reducer) {
  if (name.empty()) throw Error("lax.bind_axis: the axis name is empty");
  if (!reducer.psum) throw Error("lax.bind_axis: axis \"" + name + "\" has no psum function");
  if (reducer.size < 1) {
    throw Error("lax.bind_axis: axis \"" + name + "\" has size " + std::to_string(reducer.size) +
                "; expected at least 1");
  }
  std::lock_guard lock(registry_mutex());
  registry()[name] = std::move(reducer);
}

void unbind_axis(const std::string& name) {
  std::lock_guard lock(registry_mutex());
  registry().erase(name);
}

bool axis_bound(const std::string& name) {
  std::lock_guard lock(registry_mutex());
  return registry().count(name) > 0;
}

std::vector<std::string> bound_axes() {
  std::lock_guard lock(registry_mutex());
  std::vector<std::string> out;
  for (const auto& [k, v] : registry()) out.push_back(k);
  return out;
}

std::int64_t axis_size(const std::string& axis_name) {
  return lookup("axis_size", axis_name).size;
}

Array psum(const Array& x, const std::string& axis_name) {
  if (!x.valid()) throw Error("lax.psum: got an empty array");
  const AxisReducer r = lookup("psum", axis_name);
  Array out = r.psum(x.detached());
  if (!out.valid() || out.shape() != x.shape() || out.dtype() != x.dtype()) {
    throw Error("lax.psum: the reducer of axis \"" + axis_name + "\" returned " +
                (out.valid() ? std::string(dtype_name(out.dtype())) + out.shape().str()
                             : std::string("an empty array")) +
                " for an input " + dtype_name(x.dtype()) + x.shape().str());
  }
  static constexpr detail::Primitive kPsum{.name = "psum", .forward = detail::Forward::linear};
  detail::bind(
      kPsum, out, {&x},
      [axis_name](const std::vector<Array>& in) { return psum(in[0], axis_name); },
      [axis_name](const Array& g, const Array&) {
        // JAX's transpose of psum is psum: each member's cotangent collects every member's.
        return std::vector<Array>{psum(g, axis_name)};
      });
  return out;
}

Array pmean(const Array& x, const std::string& axis_name) {
  const std::int64_t n = axis_size(axis_name);
  Array s = psum(x, axis_name);
  if (!is_floating(s.dtype())) s = s.astype(DType::float32);
  return n == 1 ? s : numpy::divide(s, numpy::weak_scalar(double(n), s));
}

}  // namespace loom::lax
