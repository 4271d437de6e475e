// jax.lax control flow as eager loops over loom ops (see loom/control_flow.hpp).
//
// Nothing here is a primitive: every step is made of bound ops, so grad records them, and a
// jit/vmap capture sees (and unrolls) them. Only cond/switch_ look at the capture: with one
// active the predicate may be a traced value, so every branch runs and jnp::where selects.
#include "loom/control_flow.hpp"

#include <string>

#include "detail/dispatch.hpp"
#include "detail/primitive.hpp"
#include "loom/numpy.hpp"

namespace loom::lax {
namespace {

namespace jnp = loom::numpy;

std::string path_str(const std::vector<std::string>& path) {
  std::string p;
  for (const auto& k : path) p += (p.empty() ? "" : "/") + k;
  return p.empty() ? "<root>" : p;
}

std::string describe(const Array& a) {
  return std::string(dtype_name(a.dtype())) + a.shape().str();
}

// JAX: "scan body function carry input and carry output must have equal types".
void check_same_type(const Tree& expected, const Tree& got, const std::string& what) {
  if (!same_structure(expected, got)) {
    throw Error(what + " must have the same tree structure: expected\n" + expected.str() +
                "\ngot\n" + got.str());
  }
  auto a = tree_leaves_with_path(expected);
  auto b = tree_leaves_with_path(got);
  for (std::size_t i = 0; i < a.size(); ++i) {
    const Array& x = a[i].second;
    const Array& y = b[i].second;
    if (x.shape() != y.shape() || x.dtype() != y.dtype()) {
      throw Error(what + " must have equal types: the leaf \"" + path_str(a[i].first) + "\" is " +
                  describe(x) + " but became " + describe(y));
    }
  }
}

bool capturing() {
  return detail::current_capture() != nullptr;
}

void check_scalar_predicate(const Array& p, const char* op) {
  detail::check_valid(p, op);
  if (p.ndim() != 0 || is_floating(p.dtype())) {
    throw Error(std::string(op) + ": the predicate must be a scalar bool or integer array, got " +
                describe(p));
  }
}

bool host_truth(const Array& p) {
  return jnp::not_equal(p.astype(DType::int32), Array::scalar(0)).item<bool>();
}

}  // namespace

std::pair<Tree, Tree> scan(const ScanBody& body, const Tree& init, const Tree& xs,
                           ScanOptions options) {
  if (options.unroll < 1) {
    throw Error("lax::scan: unroll must be >= 1, got " + std::to_string(options.unroll));
  }
  const auto [x_leaves, x_def] = tree_flatten(xs);
  std::int64_t length = -1;
  for (const auto& [path, leaf] : tree_leaves_with_path(xs)) {
    detail::check_valid(leaf, "lax::scan");
    if (leaf.ndim() == 0) {
      throw Error("lax::scan: every leaf of xs needs a leading axis to scan over; \"" +
                  path_str(path) + "\" is a scalar");
    }
    if (length >= 0 && leaf.shape()[0] != length) {
      throw Error("lax::scan: the leaves of xs have different leading sizes: \"" + path_str(path) +
                  "\" has " + std::to_string(leaf.shape()[0]) + ", others " +
                  std::to_string(length));
    }
    length = leaf.shape()[0];
  }
  if (options.length) {
    if (*options.length < 0) throw Error("lax::scan: length must be >= 0");
    if (length >= 0 && *options.length != length) {
      throw Error("lax::scan: length " + std::to_string(*options.length) +
                  " does not match the leading size " + std::to_string(length) + " of xs");
    }
    length = *options.length;
  }
  if (length < 0) {
    throw Error("lax::scan: xs is empty, so the trip count must be given as options.length");
  }

  Tree carry = init;
  std::vector<Tree> ys(static_cast<std::size_t>(length));
  for (std::int64_t s = 0; s < length; ++s) {
    const std::int64_t i = options.reverse ? length - 1 - s : s;
    std::vector<Array> slice;
    slice.reserve(x_leaves.size());
    for (const Array& leaf : x_leaves) slice.push_back(jnp::index(leaf, i, 0));
    auto [next, y] = body(carry, tree_unflatten(x_def, std::move(slice)));
    check_same_type(carry, next, "lax::scan: the body's carry input and carry output");
    if (s > 0)
      check_same_type(ys[std::size_t(options.reverse ? i + 1 : i - 1)], y,
                      "lax::scan: every iteration's y");
    carry = std::move(next);
    ys[std::size_t(i)] = std::move(y);
  }
  if (length == 0) return {carry, Tree()};  // no y to learn the structure from
  // Stack leaf k of every step's y along a new leading axis.
  const auto def = tree_flatten(ys[0]).second;
  const std::size_t n_leaves = tree_leaves(ys[0]).size();
  std::vector<std::vector<Array>> columns(n_leaves);
  for (const Tree& y : ys) {
    auto leaves = tree_leaves(y);
    for (std::size_t k = 0; k < n_leaves; ++k) columns[k].push_back(std::move(leaves[k]));
  }
  std::vector<Array> stacked;
  stacked.reserve(n_leaves);
  for (auto& column : columns) stacked.push_back(jnp::stack(column, 0));
  return {carry, tree_unflatten(def, std::move(stacked))};
}

Tree fori_loop(std::int64_t lower, std::int64_t upper,
               const std::function<Tree(std::int64_t i, const Tree& val)>& body, const Tree& init) {
  Tree val = init;
  for (std::int64_t i = lower; i < upper; ++i) {
    Tree next = body(i, val);
    check_same_type(val, next, "lax::fori_loop: the body's input and output");
    val = std::move(next);
  }
  return val;
}

Tree while_loop(const std::function<Array(const Tree& val)>& cond_fun,
                const std::function<Tree(const Tree& val)>& body_fun, const Tree& init) {
  Tree val = init;
  while (true) {
    const Array p = cond_fun(val);
    check_scalar_predicate(p, "lax::while_loop");
    if (!host_truth(p)) break;
    Tree next = body_fun(val);
    check_same_type(val, next, "lax::while_loop: the body's input and output");
    val = std::move(next);
  }
  return val;
}

Tree cond(bool pred, const Branch& true_fun, const Branch& false_fun, const Tree& operand) {
  return pred ? true_fun(operand) : false_fun(operand);
}

Tree cond(const Array& pred, const Branch& true_fun, const Branch& false_fun, const Tree& operand) {
  check_scalar_predicate(pred, "lax::cond");
  if (!capturing()) return host_truth(pred) ? true_fun(operand) : false_fun(operand);
  Tree t = true_fun(operand);
  Tree f = false_fun(operand);
  check_same_type(t, f, "lax::cond: true_fun and false_fun outputs");
  const Array p = jnp::not_equal(pred.astype(DType::int32), Array::scalar(0));
  return tree_map([&](const Array& a, const Array& b) { return jnp::where(p, a, b); }, t, f);
}

Tree switch_(const Array& index, const std::vector<Branch>& branches, const Tree& operand) {
  check_scalar_predicate(index, "lax::switch_");
  if (index.dtype() == DType::bool_) {
    throw Error("lax::switch_: the index must be an integer scalar, got bool");
  }
  if (branches.empty()) throw Error("lax::switch_: needs at least one branch");
  const auto last = static_cast<std::int64_t>(branches.size()) - 1;
  const Array k = jnp::clip(index.astype(DType::int32), 0.0, double(last));
  if (!capturing()) return branches[std::size_t(k.item<std::int32_t>())](operand);
  Tree result = branches[std::size_t(last)](operand);
  for (std::int64_t b = last - 1; b >= 0; --b) {
    Tree r = branches[std::size_t(b)](operand);
    check_same_type(result, r, "lax::switch_: every branch's output");
    const Array is_b = jnp::equal(k, Array::scalar(std::int32_t(b)));
    result =
        tree_map([&](const Array& x, const Array& y) { return jnp::where(is_b, x, y); }, r, result);
  }
  return result;
}

}  // namespace loom::lax
