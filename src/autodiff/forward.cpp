// linearize by transposition and the Jacobians (see loom/autodiff/forward.hpp): the recorded
// pullback of f is linear in its cotangent, and its own pullback is the Jacobian-vector product.
// jvp itself is the forward trace of src/autodiff/jvp_trace.cpp.
#include "loom/autodiff/forward.hpp"

#include <cstdio>
#include <string>

#include "detail/dispatch.hpp"
#include "detail/tape.hpp"
#include "loom/numpy.hpp"

namespace loom::detail {
namespace {

// A Tree holding `leaves` in order (keys sort as their indices).
Tree list_tree(const std::vector<Array>& leaves) {
  Tree t = Tree(Tree::Dict{});
  char key[24];  // "%08zu" of any size_t fits
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    std::snprintf(key, sizeof key, "%08zu", i);
    t.set(key, Tree(leaves[i]));
  }
  return t;
}

std::string describe(const Array& a) {
  return std::string(dtype_name(a.dtype())) + a.shape().str();
}

// A one-hot array of `shape` with a 1 at flat index i.
Array one_hot(const Shape& shape, DType dtype, std::int64_t i) {
  std::vector<double> v(static_cast<std::size_t>(shape.numel()), 0.0);
  v[static_cast<std::size_t>(i)] = 1.0;
  return Array(v, shape, DType::float64).astype(dtype);
}

std::vector<std::int64_t> concat_dims(const Shape& a, const Shape& b) {
  std::vector<std::int64_t> d = a.to_vector();
  for (std::int64_t v : b.to_vector()) d.push_back(v);
  return d;
}

}  // namespace

void check_tangents(const std::vector<Array>& primals, const std::vector<Array>& tangents,
                    const char* fn_name) {
  if (primals.size() != tangents.size()) {
    throw Error(std::string(fn_name) + ": got " + std::to_string(tangents.size()) +
                " tangents for " + std::to_string(primals.size()) + " primals");
  }
  for (std::size_t i = 0; i < primals.size(); ++i) {
    check_valid(tangents[i], fn_name);
    const Array& p = primals[i];
    const Array& t = tangents[i];
    if (p.shape() != t.shape() || p.dtype() != t.dtype()) {
      // As JAX's jvp: "primal and tangent arguments to jax.jvp do not match".
      throw Error(std::string(fn_name) + ": primal and tangent arguments do not match: primal " +
                  std::to_string(i) + " is " + describe(p) + " but its tangent is " + describe(t) +
                  " (a tangent must have its primal's shape and dtype)");
    }
  }
}

Linearized linearize_leaves(const std::function<Tree(const std::vector<Array>&)>& f,
                            const std::vector<Array>& primals, const char* fn_name) {
  for (const Array& p : primals) check_valid(p, fn_name);
  Traced fwd = trace(f, primals);
  const TreeDef out_def = tree_flatten(fwd.output).second;
  std::vector<Array> ct0;
  for (const Array& o : tree_leaves(fwd.output)) ct0.push_back(numpy::zeros(o.shape(), o.dtype()));
  // Record the pullback as a function of the cotangent; its pullback is the tangent map.
  Traced lin = trace(
      [&](const std::vector<Array>& cts) -> Tree {
        return list_tree(fwd.pullback(tree_unflatten(out_def, cts)));
      },
      ct0);
  auto map = [pb = std::move(lin.pullback)](const std::vector<Array>& tangents) {
    return pb(list_tree(tangents));
  };
  return Linearized{std::move(fwd.output), std::move(map)};
}

Array finish_output(const Array& out) {
  return tracing() ? out : out.detached();
}

Tree finish_output(const Tree& out) {
  return tracing() ? out : stop_gradient(out);
}

Array jacobian_rev(const std::function<Array(const Array&)>& f, const Array& x) {
  auto [y, pullback] = vjp(f, x);
  const std::int64_t m = y.shape().numel();
  std::vector<Array> rows;
  rows.reserve(static_cast<std::size_t>(m));
  for (std::int64_t i = 0; i < m; ++i) rows.push_back(pullback(one_hot(y.shape(), y.dtype(), i)));
  if (rows.empty()) return numpy::zeros(Shape(concat_dims(y.shape(), x.shape())), x.dtype());
  return numpy::reshape(numpy::stack(rows, 0), concat_dims(y.shape(), x.shape()));
}

Array jacobian_fwd(const std::function<Array(const Array&)>& f, const Array& x) {
  check_valid(x, "jacfwd");
  // One forward pass per input element (JAX's jacfwd vmaps the same jvp over the basis).
  const std::int64_t n = x.shape().numel();
  auto run = [&](const Array& t) {
    return jvp_leaves([&](const std::vector<Array>& l) -> Tree { return Tree(f(l[0])); }, {x}, {t});
  };
  std::vector<Array> cols;
  cols.reserve(static_cast<std::size_t>(n));
  Array y;
  if (n == 0) y = f(x);
  for (std::int64_t j = 0; j < n; ++j) {
    Forwarded r = run(one_hot(x.shape(), x.dtype(), j));
    if (j == 0) y = r.output.leaf();
    cols.push_back(finish_output(r.tangents.at(0)));
  }
  if (cols.empty()) return numpy::zeros(Shape(concat_dims(y.shape(), x.shape())), y.dtype());
  return numpy::reshape(numpy::stack(cols, y.ndim()), concat_dims(y.shape(), x.shape()));
}

}  // namespace loom::detail
