// loom::jit: trace a function once per signature into a graph of primitives and replay it
// (jax.jit). Results equal eager execution bit for bit, with one documented exception (below).
//
// Fusion (JitOptions::fuse, on by default): after tracing, chains of float32 elementwise
// primitives of one shape (add, subtract, multiply, divide, maximum, minimum, negative, exp,
// log, log1p, expm1, tanh, sqrt, rsqrt, abs, sin, cos, floor, ceil, the float32 comparisons,
// where, and the jax.nn activations without parameters: relu, relu6, sigmoid, log_sigmoid,
// softplus, silu, gelu, selu, hard_*), with operands that are whole arrays, scalars, trailing
// rows (a Dense bias) or columns (softmax's (B, 1)), run as one fused node block by block in L1;
// a value is written to memory only where a node outside the chain or the result reads it, and
// into the buffer of an input that dies there when it can (never an argument, a constant or a
// buffer a reshape view shares). Each fused op runs its eager kernel's own block kernel in the
// eager order, so no fusion changes rounding: a fused replay equals the unfused one bit for
// bit (tests/jit_fusion_test.cpp). A replay inside another transformation (grad of jit, jit
// inside vmap or jit) runs node by node, since each primitive must bind there.
//
// The exception to "equals eager": a VJP whose eager form is a hand-written backward kernel
// (the jax.nn activations, glu, softmax, log_softmax and standardize; LayerNorm/RMSNorm rows; the
// fused softmax cross-entropy with integer labels and sigmoid binary cross-entropy; the var, std,
// max, min, prod and logsumexp reductions) computes its cotangent with composite loom ops while a
// jit or vmap capture traces it, since the kernel is not a primitive the graph could replay. The
// composite cotangent equals the kernel's to float rounding (the last bits may differ).
//
//   auto f = loom::jit([](const loom::Array& x, const loom::Array& y) {
//     return jnp::sum(jnp::tanh(x) * y);
//   });
//   loom::Array a = f(x, y);        // first call: traces f (running it once) and caches the graph
//   loom::Array b = f(x2, y2);      // same shapes and dtypes: replays the graph, f is not called
//   f.cache_misses() == 1;  f.cache_hits() == 1;
//
//   // Static arguments (JAX's static_argnums) are hashed by value; each new value retraces.
//   auto g = loom::jit([](const loom::Array& x, int n) { return jnp::power(x, double(n)); },
//                      {.static_argnums = {1}});
//
// Arguments are Arrays, loom::Trees or std::vector<Array> (traced: the graph is keyed by their
// tree structure, shapes and dtypes) and static values; f returns an Array, a Tree, a
// std::vector<Array> or a std::pair/std::tuple of them. As in JAX:
// - f runs only when a signature is new (tracing); its side effects (printing, counting,
//   appending to a captured vector) happen then and never on a replay.
// - Arrays f uses without receiving them as arguments (closures, globals, values f creates
//   from nothing) are constants of the graph: their value at trace time is baked in. Pass
//   anything that changes between calls as an argument.
// - Reading a traced value on the host inside f (Array::item(), Array::to_vector()) is a
//   loom::Error: a host branch on a traced value cannot be replayed. Use lax::cond or
//   jnp::where instead.
// - jit composes: grad inside f, grad(jit(f)) (the replay runs the same bound primitives, so
//   an outer grad records them), jit inside vmap or inside another jit.
// Replay runs only the primitives the outputs need (dead code removed), frees each
// intermediate after its last use, places intermediates in a static arena planned once per
// graph (JitOptions::arena), and is thread-safe: the graph is immutable, the cache is locked and
// each call has its own arena, so several threads may call one jitted function at once.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeindex>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "loom/array.hpp"
#include "loom/error.hpp"
#include "loom/tree.hpp"

namespace loom::detail {

struct Graph;  // defined in src/transforms/graph.hpp

/// What one capture produced: the graph and the function's outputs computed while tracing.
struct Captured {
  std::shared_ptr<const Graph> graph;
  std::vector<Array> outputs;
};

/// Runs `body` once on private copies of `args` (same values, same autodiff history, fresh
/// buffers, so two equal arguments stay distinct) with a capture installed, and returns the
/// graph from the arguments to body's outputs (dead nodes removed). `traced[i]` says whether
/// reading a value computed from args[i] on the host is an error; `transform` ("jit", "vmap")
/// names the transformation in that error.
Captured capture(const std::function<std::vector<Array>(const std::vector<Array>&)>& body,
                 const std::vector<Array>& args, const std::vector<bool>& traced,
                 const char* transform);

/// Runs the graph's impls in order on new arguments (each value freed after its last use), or
/// its fused plan when it has one and no transformation is active around the replay.
std::vector<Array> replay(const Graph& graph, const std::vector<Array>& args);

/// jit's fusion pass (src/transforms/fusion.cpp): the graph with a replay plan that runs
/// chains of float32 elementwise nodes as one fused node and writes values into the buffer of
/// an input that dies there. The nodes are kept for replays under a transformation.
/// With `arena`, the plan also places intermediates in one static arena (JitOptions::arena).
std::shared_ptr<const Graph> fuse(std::shared_ptr<const Graph> graph, bool arena = true);

/// Summary of a graph, for tests and benchmarks.
struct GraphInfo {
  std::size_t num_args = 0;
  std::size_t num_nodes = 0;       // after dead-code elimination
  std::size_t num_constants = 0;   // Arrays baked into the graph
  std::size_t peak_live_bytes = 0; // intermediates alive at once during a replay (not args)
  // jit's fusion pass (JitOptions::fuse): what a replay runs.
  std::size_t num_steps = 0;         // fused groups plus unfused nodes (num_nodes without fusion)
  std::size_t num_fused_groups = 0;  // fused elementwise nodes
  std::size_t num_fused_nodes = 0;   // original nodes running inside them
  std::size_t num_in_place = 0;      // values written into a dying input's buffer
  std::size_t num_fused_updates = 0;  // fused nodes running a BlockImpl closure (optim rules)
  std::size_t unfused_peak_live_bytes = 0;  // peak_live_bytes of the node-by-node replay
  // The static arena (JitOptions::arena): intermediates written to memory that are not results,
  // the part of them planned into the arena, and the part that a replay saw land there (an op
  // that allocates its result some other way misses its slot); the arena's size, what it would
  // be without sharing bytes between values whose lives do not overlap, and the most planned
  // bytes alive at one step (the arena's lower bound).
  std::size_t intermediate_bytes = 0;
  std::size_t arena_planned_bytes = 0;
  std::size_t arena_landed_bytes = 0;  // after at least one replay; 0 before
  std::size_t arena_bytes = 0;
  std::size_t arena_no_reuse_bytes = 0;
  std::size_t arena_peak_live_bytes = 0;
};
GraphInfo graph_info(const Graph& graph);
/// The graph as text, one line per node (see Jitted::graph_str).
std::string graph_str(const Graph& graph);

/// True when a jit/vmap capture is active on this thread (the caller is being traced).
bool capturing();

// ---- flattening arguments and results -----------------------------------------------------

template <typename T>
struct is_tuple_like : std::false_type {};
template <typename A, typename B>
struct is_tuple_like<std::pair<A, B>> : std::true_type {};
template <typename... T>
struct is_tuple_like<std::tuple<T...>> : std::true_type {};

/// True for the types jit and vmap trace: Array, Tree, std::vector<Array> and pairs/tuples of
/// them.
template <typename T>
constexpr bool is_traceable() {
  if constexpr (std::is_same_v<T, Array> || std::is_same_v<T, Tree> ||
                std::is_same_v<T, std::vector<Array>>) {
    return true;
  } else if constexpr (is_tuple_like<T>::value) {
    return []<std::size_t... I>(std::index_sequence<I...>) {
      return (is_traceable<std::decay_t<std::tuple_element_t<I, T>>>() && ...);
    }(std::make_index_sequence<std::tuple_size_v<T>>{});
  } else {
    return false;
  }
}

template <typename T>
void flatten_into(const T& x, std::vector<Array>& out) {
  if constexpr (std::is_same_v<T, Array>) {
    out.push_back(x);
  } else if constexpr (std::is_same_v<T, Tree>) {
    for (Array& a : tree_leaves(x)) out.push_back(std::move(a));
  } else if constexpr (std::is_same_v<T, std::vector<Array>>) {
    out.insert(out.end(), x.begin(), x.end());
  } else {
    std::apply([&](const auto&... e) { (flatten_into(e, out), ...); }, x);
  }
}

/// Rebuilds a value of `like`'s structure from leaves starting at `*pos`.
template <typename T>
T unflatten_from(const T& like, const std::vector<Array>& leaves, std::size_t* pos) {
  if constexpr (std::is_same_v<T, Array>) {
    return leaves.at((*pos)++);
  } else if constexpr (std::is_same_v<T, Tree>) {
    return tree_map([&](const Array&) { return leaves.at((*pos)++); }, like);
  } else if constexpr (std::is_same_v<T, std::vector<Array>>) {
    std::vector<Array> v;
    for (std::size_t i = 0; i < like.size(); ++i) v.push_back(leaves.at((*pos)++));
    return v;
  } else {
    return std::apply(
        [&](const auto&... e) { return T{unflatten_from(e, leaves, pos)...}; }, like);
  }
}

/// `x` with its leaves dropped (the structure alone, to rebuild results from).
template <typename T>
T skeleton_of(const T& x) {
  std::vector<Array> leaves;
  flatten_into(x, leaves);
  std::size_t pos = 0;
  return unflatten_from(x, std::vector<Array>(leaves.size()), &pos);
}

/// "Array float32(2, 3)" / "Tree{a:float32(3),b:{}}" : the part of a jit signature an argument
/// contributes (structure, shapes and dtypes).
std::string aval_signature(const Array& x);
std::string aval_signature(const Tree& x);

}  // namespace loom::detail

namespace loom {

struct JitOptions {
  /// Positions of the static arguments (JAX's static_argnums): any non-Array, non-Tree
  /// argument must be listed. They are hashed with std::hash and compared with ==; a value
  /// not seen before traces f again.
  std::vector<int> static_argnums;
  /// Replay with the fusion pass's plan: fused elementwise chains and in-place buffer reuse
  /// (same bits as without). false replays node by node (for comparison and benchmarks).
  bool fuse = true;
  /// With fuse: a static memory plan. Each intermediate's live range over the replay order is
  /// known when the graph is planned, so every value that is neither a result nor a buffer a
  /// view shares gets a slot in one arena (64-byte aligned, greedy by size), and slots of
  /// values whose lives do not overlap share bytes. A replay takes one arena buffer from the
  /// allocator (each concurrent call its own) and each op writes its result into its slot;
  /// results never live in the arena. Same bits as without; false allocates every
  /// intermediate from the caching pool.
  bool arena = true;
};

namespace detail {

/// One static argument's part of the cache key: its type, hash and value (for ==).
struct StaticKey {
  std::type_index type = typeid(void);
  std::size_t hash = 0;
  std::shared_ptr<const void> value;
  bool (*equal)(const void*, const void*) = nullptr;
};

struct JitSignature {
  std::string avals;  // argument types, tree structures, shapes and dtypes
  std::vector<StaticKey> statics;
  bool operator==(const JitSignature& o) const;
};
struct JitSignatureHash {
  std::size_t operator()(const JitSignature& s) const;
};

/// A cached trace: the graph and the result's structure (an R with empty leaves).
struct JitEntry {
  std::shared_ptr<const Graph> graph;
  std::shared_ptr<const void> skeleton;
};

/// One graph per signature. Thread-safe: a signature is traced once even when several threads
/// miss it at the same time (the others wait for that trace).
class JitCache {
 public:
  std::shared_ptr<const JitEntry> get(const JitSignature& sig,
                                      const std::function<JitEntry()>& trace, bool* hit);
  std::size_t size() const;
  std::size_t hits() const;
  std::size_t misses() const;

 private:
  struct Slot {
    std::mutex mu;
    std::shared_ptr<const JitEntry> entry;
  };
  mutable std::mutex mu_;
  std::unordered_map<JitSignature, std::shared_ptr<Slot>, JitSignatureHash> slots_;
  std::size_t hits_ = 0, misses_ = 0;
};

[[noreturn]] void throw_jit_arg(int index, const std::string& what);

template <typename T>
bool static_equal(const void* a, const void* b) {
  return *static_cast<const T*>(a) == *static_cast<const T*>(b);
}

inline std::string aval_signature(const std::vector<Array>& xs) {
  std::string s = "[";
  for (const Array& x : xs) s += aval_signature(x) + ",";
  return s + "]";
}

}  // namespace detail

/// The callable loom::jit returns; copies share one cache.
template <typename F>
class Jitted {
 public:
  Jitted(F f, JitOptions options)
      : f_(std::move(f)),
        options_(std::move(options)),
        cache_(std::make_shared<detail::JitCache>()) {}

  template <typename... Args>
  auto operator()(const Args&... args) const {
    using R = std::decay_t<std::invoke_result_t<const F&, const Args&...>>;
    static_assert(detail::is_traceable<R>(),
                  "loom::jit: f must return an Array, a Tree, a std::vector<Array> or a "
                  "pair/tuple of them");
    detail::JitSignature sig;
    std::vector<Array> leaves;
    int index = 0;
    (add_arg(args, index++, sig, leaves), ...);
    std::optional<R> traced;
    bool hit = false;
    auto entry = cache_->get(
        sig,
        [&] {
          detail::Captured c = detail::capture(
              [&](const std::vector<Array>& copies) {
                std::size_t pos = 0;
                // A braced list evaluates left to right, so leaves are consumed in order.
                std::tuple<Args...> rebuilt{pick(args, copies, &pos)...};
                traced.emplace(std::apply(f_, rebuilt));
                std::vector<Array> out;
                detail::flatten_into(*traced, out);
                return out;
              },
              leaves, std::vector<bool>(leaves.size(), true), "jit");
          return detail::JitEntry{options_.fuse ? detail::fuse(c.graph, options_.arena) : c.graph,
                                  std::make_shared<const R>(detail::skeleton_of(*traced))};
        },
        &hit);
    // A fresh trace already computed the result, unless an outer capture must see the
    // primitives (then replay, which binds them to it).
    if (!hit && !detail::capturing()) return std::move(*traced);
    std::vector<Array> out = detail::replay(*entry->graph, leaves);
    std::size_t pos = 0;
    return detail::unflatten_from(*static_cast<const R*>(entry->skeleton.get()), out, &pos);
  }

  /// Number of calls answered from the cache / that traced f.
  std::size_t cache_hits() const { return cache_->hits(); }
  std::size_t cache_misses() const { return cache_->misses(); }
  /// Number of cached graphs (signatures seen).
  std::size_t cache_size() const { return cache_->size(); }

  /// The graph a call with these arguments replays (tracing it if new): node count, constants,
  /// peak bytes of intermediates alive at once.
  template <typename... Args>
  detail::GraphInfo graph_info(const Args&... args) const {
    return detail::graph_info(*entry_for(args...)->graph);
  }

  /// The same graph as text, one line per node ("%3 = add(%1, c0) float32(128, 512)"; fused
  /// groups and in-place steps marked), for inspecting what a step runs.
  template <typename... Args>
  std::string graph_str(const Args&... args) const {
    return detail::graph_str(*entry_for(args...)->graph);
  }

 private:
  template <typename... Args>
  std::shared_ptr<const detail::JitEntry> entry_for(const Args&... args) const {
    (*this)(args...);
    detail::JitSignature sig;
    std::vector<Array> leaves;
    int index = 0;
    (add_arg(args, index++, sig, leaves), ...);
    bool hit = false;
    return cache_->get(
        sig, [&]() -> detail::JitEntry { throw Error("jit: lost entry"); }, &hit);
  }

  bool is_static(int index) const {
    for (int i : options_.static_argnums)
      if (i == index) return true;
    return false;
  }

  template <typename T>
  void add_arg(const T& x, int index, detail::JitSignature& sig,
               std::vector<Array>& leaves) const {
    if constexpr (std::is_same_v<T, Array> || std::is_same_v<T, Tree> ||
                  std::is_same_v<T, std::vector<Array>>) {
      if (is_static(index)) {
        detail::throw_jit_arg(index, "is an Array or Tree but listed in static_argnums; "
                                     "static arguments must be hashable values (as JAX "
                                     "rejects non-hashable static arguments)");
      }
      sig.avals += detail::aval_signature(x) + ";";
      detail::flatten_into(x, leaves);
    } else {
      if (!is_static(index)) {
        detail::throw_jit_arg(index, std::string("has type ") + typeid(T).name() +
                                         ", which jit cannot trace; list it in "
                                         "JitOptions::static_argnums");
      }
      static_assert(requires(const T& v) { std::hash<T>{}(v); v == v; },
                    "loom::jit: a static argument needs std::hash and operator==");
      sig.avals += std::string("static:") + typeid(T).name() + ";";
      sig.statics.push_back({.type = typeid(T),
                             .hash = std::hash<T>{}(x),
                             .value = std::make_shared<const T>(x),
                             .equal = &detail::static_equal<T>});
    }
  }

  template <typename T>
  static T pick(const T& x, const std::vector<Array>& copies, std::size_t* pos) {
    if constexpr (std::is_same_v<T, Array> || std::is_same_v<T, Tree> ||
                  std::is_same_v<T, std::vector<Array>>)
      return detail::unflatten_from(x, copies, pos);
    else
      return x;
  }

  F f_;
  JitOptions options_;
  std::shared_ptr<detail::JitCache> cache_;
};

/// jax.jit(f, static_argnums=...): see the top of this header.
template <typename F>
Jitted<F> jit(F f, JitOptions options = {}) {
  return Jitted<F>(std::move(f), std::move(options));
}

}  // namespace loom
