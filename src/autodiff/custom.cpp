// custom_vjp, custom_jvp and checkpoint under a grad trace (see loom/autodiff/custom.hpp).
#include "loom/autodiff/custom.hpp"

#include <string>

#include "detail/dispatch.hpp"
#include "detail/tape.hpp"
#include "loom/numpy.hpp"

namespace loom::detail {
namespace {

std::string describe(const Array& a) {
  return std::string(dtype_name(a.dtype())) + a.shape().str();
}

// The records naming custom rules in jvp's errors and forward_rules_used().
constexpr Primitive kCustomVjp{.name = "custom_vjp"};
constexpr Primitive kCustomJvp{.name = "custom_jvp"};

// No jvp level visible for its lifetime (custom_jvp's f: the rule gives its tangents).
struct HideForward {
  int saved = g_forward_visible;
  HideForward() { g_forward_visible = 0; }
  ~HideForward() { g_forward_visible = saved; }
  HideForward(const HideForward&) = delete;
  HideForward& operator=(const HideForward&) = delete;
};

}  // namespace

bool any_history(const std::vector<const Array*>& inputs) {
  for (const Array* a : inputs)
    if (a->node()) return true;
  return false;
}

void attach_custom_vjp(Array& out, const std::vector<const Array*>& inputs,
                       std::function<std::vector<Array>(const Array& g)> bwd, const char* fn_name) {
  std::vector<Shape> shapes;
  std::vector<DType> dtypes;
  for (const Array* a : inputs) {
    shapes.push_back(a->shape());
    dtypes.push_back(a->dtype());
  }
  std::string name = fn_name;
  Vjp vjp = [bwd = std::move(bwd), shapes, dtypes, name](const Array& g, const Array&) {
    std::vector<Array> cts = bwd(g);
    if (cts.size() != shapes.size()) {
      throw Error(name + ": bwd returned " + std::to_string(cts.size()) +
                  " cotangents for a function of " + std::to_string(shapes.size()) +
                  " inputs (return one per input; an invalid Array() for none)");
    }
    for (std::size_t i = 0; i < cts.size(); ++i) {
      if (!cts[i].valid()) continue;
      if (cts[i].shape() != shapes[i]) {
        // As JAX: "Custom VJP bwd rule must produce an output with the same shape/dtypes as
        // the args tuple of the primal function".
        throw Error(name + ": bwd's cotangent " + std::to_string(i) + " is " + describe(cts[i]) +
                    " but input " + std::to_string(i) + " is " + dtype_name(dtypes[i]) +
                    shapes[i].str() + " (a cotangent must have its input's shape)");
      }
    }
    return cts;
  };
  if (!forwarding()) {
    attach(out, inputs, std::move(vjp), false);
    return;
  }
  // Under jvp (where JAX raises: no forward rule) the tangent is the transpose of bwd.
  const Node* before = out.node().get();
  attach(out, inputs, vjp, false);
  push_vjp_tangents(kCustomVjp, out, inputs, vjp, before);
}

Array custom_jvp_call(const LeafFn& f, const LeafFn& tangent_map_of,
                      const std::vector<Array>& primals) {
  Array y;
  {
    NoRecordGuard guard;  // f's own derivative is replaced by the rule: record nothing of it
    HideForward hide;     // nor push tangents through it
    y = f(primals).leaf().detached();
  }
  std::vector<const Array*> inputs;
  for (const Array& p : primals) inputs.push_back(&p);
  // VJP = transpose of the rule's tangent map t -> rule(primals, t).second, by tracing it on
  // zero tangents and pulling g back (exact: the map is linear in t).
  Vjp vjp = [tangent_map_of, primals](const Array& g, const Array&) {
    std::vector<Array> zeros;
    for (const Array& p : primals) zeros.push_back(numpy::zeros(p.shape(), p.dtype()));
    Traced lin = trace(
        [&](const std::vector<Array>& t) -> Tree {
          std::vector<Array> pt = primals;
          pt.insert(pt.end(), t.begin(), t.end());
          return tangent_map_of(pt);
        },
        zeros);
    const Array& t_out = lin.output.leaf();
    if (t_out.shape() != g.shape()) {
      throw Error("custom_jvp: the rule's tangent output is " + describe(t_out) +
                  " but the function's output is " + describe(g));
    }
    return lin.pullback(Tree(g.astype(t_out.dtype())));
  };
  attach(y, inputs, std::move(vjp), false);
  // Under jvp the rule is the forward rule itself.
  push_rule_tangents(
      kCustomJvp, y, inputs,
      [&](const std::vector<Array>& t) {
        std::vector<Array> pt = primals;
        pt.insert(pt.end(), t.begin(), t.end());
        return tangent_map_of(pt).leaf();
      },
      nullptr);
  return y;
}

Tree checkpoint_call(const LeafFn& f, const std::vector<Array>& leaves) {
  // Under jvp, f runs as is: its tangents (and, under grad too, their history) flow through its
  // ops; rematerializing would drop the tangent computation's residuals.
  if (forwarding()) return f(leaves);
  Tree out;
  {
    NoRecordGuard guard;  // no internal residuals survive the forward pass
    out = f(leaves);
  }
  out = stop_gradient(out);
  std::vector<const Array*> inputs;
  for (const Array& l : leaves) inputs.push_back(&l);
  auto [outs, def] = tree_flatten(out);
  for (std::size_t i = 0; i < outs.size(); ++i) {
    Vjp vjp = [f, leaves, i](const Array& g, const Array&) {
      Traced re = trace(f, leaves);  // re-run f, this time keeping what its backward needs
      std::vector<Array> cts;
      auto re_outs = tree_leaves(re.output);
      for (std::size_t j = 0; j < re_outs.size(); ++j) {
        cts.push_back(j == i ? g : numpy::zeros(re_outs[j].shape(), re_outs[j].dtype()));
      }
      // Sparse: inputs the function does not use get no zeros to add (memory, exact sums).
      return re.sparse_pullback(tree_unflatten(tree_flatten(re.output).second, std::move(cts)));
    };
    attach(outs[i], inputs, std::move(vjp), false);
  }
  return tree_unflatten(def, std::move(outs));
}

}  // namespace loom::detail
