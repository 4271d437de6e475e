// The contraction engine (see contract.hpp): labels -> strided batched GEMM.
//
// Every label becomes a "dim" with a size and a stride in each of a, b, c (0 when absent).
// Dims in a and c only are GEMM rows (M), in b and c only columns (N), in a and b only the
// reduction (K); all others (batch dims in all three, dims in one operand only, and M/N/K dims
// that cannot be folded into one strided matrix axis) become loops around the GEMM call. Loops
// over dims absent from c accumulate (beta = 1 after the first iteration).
#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "detail/dispatch.hpp"
#include "lax/blas_threads.hpp"
#include "lax/contract.hpp"
#include "numpy/strided.hpp"

namespace loom::detail {
namespace {

using Strides = std::vector<std::int64_t>;
using numpy::strided::contiguous_strides;

struct Dim {
  std::int64_t size = 1;
  std::int64_t sa = 0, sb = 0, sc = 0;
  bool ia = false, ib = false, ic = false;
};

// One collapsed GEMM axis: total size and the strides of its innermost dim.
struct Group {
  std::int64_t size = 1;
  std::int64_t sa = 0, sb = 0, sc = 0;
};

struct Plan {
  Group m, n, k;
  std::vector<Dim> loops;
};

// Sorts dims by `key` ascending and folds the longest run that is contiguous in both operands
// `o1`/`o2` (member pointers) into one group; the rest become loops.
Group collapse(std::vector<Dim> v, std::int64_t Dim::*key, std::int64_t Dim::*o1,
               std::int64_t Dim::*o2, std::vector<Dim>& loops) {
  Group g;
  if (v.empty()) return g;
  std::sort(v.begin(), v.end(), [&](const Dim& x, const Dim& y) { return x.*key < y.*key; });
  g.size = v[0].size;
  g.sa = v[0].sa;
  g.sb = v[0].sb;
  g.sc = v[0].sc;
  const std::int64_t s1 = v[0].*o1, s2 = v[0].*o2;
  std::size_t i = 1;
  for (; i < v.size(); ++i) {
    if (v[i].*o1 != s1 * g.size || v[i].*o2 != s2 * g.size) break;
    g.size *= v[i].size;
  }
  for (; i < v.size(); ++i) loops.push_back(v[i]);
  return g;
}

Plan make_plan(const std::vector<Dim>& dims) {
  std::vector<Dim> ms, ns, ks;
  Plan p;
  for (const Dim& d : dims) {
    if (d.ia && d.ic && !d.ib)
      ms.push_back(d);
    else if (d.ib && d.ic && !d.ia)
      ns.push_back(d);
    else if (d.ia && d.ib && !d.ic)
      ks.push_back(d);
    else
      p.loops.push_back(d);
  }
  p.m = collapse(ms, &Dim::sc, &Dim::sa, &Dim::sc, p.loops);
  p.n = collapse(ns, &Dim::sc, &Dim::sb, &Dim::sc, p.loops);
  p.k = collapse(ks, &Dim::sa, &Dim::sa, &Dim::sb, p.loops);
  return p;
}

// How a (rows x cols) matrix with strides (rs, cs) is handed to row-major BLAS.
struct Mat {
  bool ok = false;
  bool trans = false;
  std::int64_t ld = 1;
};

Mat as_mat(std::int64_t rows, std::int64_t cols, std::int64_t rs, std::int64_t cs) {
  const std::int64_t r1 = std::max<std::int64_t>(rows, 1), c1 = std::max<std::int64_t>(cols, 1);
  if ((cols == 1 || cs == 1) && (rows == 1 || rs >= c1)) return {true, false, rows == 1 ? c1 : rs};
  if ((rows == 1 || rs == 1) && (cols == 1 || cs >= r1)) return {true, true, cols == 1 ? r1 : cs};
  return {};
}

bool feasible_a(const Plan& p) {
  return as_mat(p.m.size, p.k.size, p.m.sa, p.k.sa).ok;
}
bool feasible_b(const Plan& p) {
  return as_mat(p.k.size, p.n.size, p.k.sb, p.n.sb).ok;
}
bool feasible_c(const Plan& p) {
  // Either C itself or C^T must be a row-major matrix with unit column stride.
  const Mat c = as_mat(p.m.size, p.n.size, p.m.sc, p.n.sc);
  return c.ok;
}

// C (m x n, strides cr/cc) = [C +] A (m x k, ar/ac) B (k x n, br/bc), BLAS for floating types.
template <typename T>
void matmul_block(std::int64_t m, std::int64_t n, std::int64_t k, const T* A, std::int64_t ar,
                  std::int64_t ac, const T* B, std::int64_t br, std::int64_t bc, T* C,
                  std::int64_t cr, std::int64_t cc, bool accumulate) {
  if constexpr (std::is_floating_point_v<T>) {
    Mat c = as_mat(m, n, cr, cc);
    if (c.trans) {
      // C^T (n x m) = B^T (n x k) A^T (k x m): swap the operands so the output is row-major.
      const T* na = B;
      const T* nb = A;
      const std::int64_t nar = bc, nac = br, nbr = ac, nbc = ar;
      std::swap(m, n);
      A = na;
      B = nb;
      ar = nar;
      ac = nac;
      br = nbr;
      bc = nbc;
      std::swap(cr, cc);
      c = as_mat(m, n, cr, cc);
    }
    const Mat a = as_mat(m, k, ar, ac), b = as_mat(k, n, br, bc);
    const auto ta = a.trans ? CblasTrans : CblasNoTrans;
    const auto tb = b.trans ? CblasTrans : CblasNoTrans;
    constexpr const char* op = "dot_general";
    const int im = blas_int(m, op, "m"), in = blas_int(n, op, "n"), ik = blas_int(k, op, "k");
    const int ia = blas_int(a.ld, op, "lda"), ib = blas_int(b.ld, op, "ldb"),
              ic = blas_int(c.ld, op, "ldc");
    blas_gemm<T>(ta, tb, im, in, ik, A, ia, B, ib, C, ic, accumulate);
  } else {
    // Integers wrap around as XLA's do: compute in the unsigned type (no signed overflow UB).
    using U = std::make_unsigned_t<T>;
    for (std::int64_t i = 0; i < m; ++i) {
      T* crow = C + i * cr;
      if (!accumulate) {
        for (std::int64_t j = 0; j < n; ++j) crow[j * cc] = T(0);
      }
      for (std::int64_t p = 0; p < k; ++p) {
        const U av = static_cast<U>(A[i * ar + p * ac]);
        const T* brow = B + p * br;
        for (std::int64_t j = 0; j < n; ++j) {
          crow[j * cc] =
              static_cast<T>(static_cast<U>(crow[j * cc]) + av * static_cast<U>(brow[j * bc]));
        }
      }
    }
  }
}

template <typename T>
void run_contraction(std::vector<Dim> dims, const T* A, const T* B, T* C) {
  // Size-1 dims play no part; a size-0 dim empties c (nothing to do) or the sum (zeros).
  std::vector<Dim> live;
  bool zero_sum = false;
  for (const Dim& d : dims) {
    if (d.size == 0) {
      if (d.ic) return;
      zero_sum = true;
    }
    if (d.size > 1) live.push_back(d);
  }
  std::int64_t c_count = 1;
  for (const Dim& d : live) {
    if (d.ic) c_count *= d.size;
  }
  if (zero_sum) {
    std::fill(C, C + c_count, T(0));
    return;
  }
  dims = live;

  std::vector<T> a_copy, b_copy, c_tmp;
  Strides c_orig;  // per dim: stride in the real C when computing into c_tmp
  T* Cw = C;
  if constexpr (std::is_floating_point_v<T>) {
    bool copied_a = false, copied_b = false, temp_c = false;
    for (int attempt = 0; attempt < 4; ++attempt) {
      Plan p = make_plan(dims);
      // Reorders one operand contiguously: dims in `first` class order, each class sorted by
      // the key, so the GEMM axes fold and the innermost has unit stride.
      auto relayout = [&](bool Dim::*in, auto rank_of) {
        std::vector<std::size_t> idx;
        for (std::size_t i = 0; i < dims.size(); ++i) {
          if (dims[i].*in) idx.push_back(i);
        }
        std::stable_sort(idx.begin(), idx.end(), [&](std::size_t x, std::size_t y) {
          return rank_of(dims[x]) < rank_of(dims[y]);
        });
        Strides ns(dims.size(), 0);
        std::int64_t acc = 1;
        for (std::size_t j = idx.size(); j-- > 0;) {
          ns[idx[j]] = acc;
          acc *= dims[idx[j]].size;
        }
        return std::make_pair(ns, acc);
      };
      if (!feasible_a(p) && !copied_a) {
        // a's order: loop dims, M dims (outer to inner as in c), K dims (as in b).
        auto [ns, total] = relayout(&Dim::ia, [](const Dim& d) {
          const int cls = (d.ic && !d.ib) ? 1 : (d.ib && !d.ic) ? 2 : 0;
          // Within a class, larger partner stride first (outer).
          const std::int64_t partner = cls == 1 ? d.sc : cls == 2 ? d.sb : 0;
          return std::make_pair(cls, -partner);
        });
        a_copy.resize(static_cast<std::size_t>(total));
        Strides src, dst;
        std::vector<std::int64_t> shape;
        for (std::size_t i = 0; i < dims.size(); ++i) {
          if (!dims[i].ia) continue;
          src.push_back(dims[i].sa);
          dst.push_back(ns[i]);
          shape.push_back(dims[i].size);
        }
        numpy::strided::strided_copy_raw(A, src, a_copy.data(), dst, shape, sizeof(T));
        for (std::size_t i = 0; i < dims.size(); ++i) dims[i].sa = ns[i];
        A = a_copy.data();
        copied_a = true;
        continue;
      }
      if (!feasible_b(p) && !copied_b) {
        auto [ns, total] = relayout(&Dim::ib, [](const Dim& d) {
          const int cls = (d.ia && !d.ic) ? 1 : (d.ic && !d.ia) ? 2 : 0;
          const std::int64_t partner = cls == 1 ? d.sa : cls == 2 ? d.sc : 0;
          return std::make_pair(cls, -partner);
        });
        b_copy.resize(static_cast<std::size_t>(total));
        Strides src, dst;
        std::vector<std::int64_t> shape;
        for (std::size_t i = 0; i < dims.size(); ++i) {
          if (!dims[i].ib) continue;
          src.push_back(dims[i].sb);
          dst.push_back(ns[i]);
          shape.push_back(dims[i].size);
        }
        numpy::strided::strided_copy_raw(B, src, b_copy.data(), dst, shape, sizeof(T));
        for (std::size_t i = 0; i < dims.size(); ++i) dims[i].sb = ns[i];
        B = b_copy.data();
        copied_b = true;
        continue;
      }
      if (!feasible_c(p) && !temp_c) {
        auto [ns, total] = relayout(&Dim::ic, [](const Dim& d) {
          const int cls = (d.ia && !d.ib) ? 1 : (d.ib && !d.ia) ? 2 : 0;
          const std::int64_t partner = cls == 1 ? d.sa : cls == 2 ? d.sb : 0;
          return std::make_pair(cls, -partner);
        });
        c_tmp.resize(static_cast<std::size_t>(total));
        c_orig.resize(dims.size());
        for (std::size_t i = 0; i < dims.size(); ++i) {
          c_orig[i] = dims[i].sc;
          dims[i].sc = ns[i];
        }
        Cw = c_tmp.data();
        temp_c = true;
        continue;
      }
      break;
    }
  }

  const Plan p = make_plan(dims);
  if constexpr (std::is_floating_point_v<T>) {
    if (!feasible_a(p) || !feasible_b(p) || !feasible_c(p)) {
      throw Error("internal: contraction planner found no GEMM layout");
    }
  }
  // Loops: those writing distinct parts of c outside, accumulating ones (c stride 0) inside.
  std::vector<Dim> loops = p.loops;
  std::stable_partition(loops.begin(), loops.end(), [](const Dim& d) { return d.ic; });
  std::size_t n_outer = 0;
  std::int64_t outer = 1, inner = 1;
  for (const Dim& d : loops) {
    if (d.ic) {
      outer *= d.size;
      ++n_outer;
    } else {
      inner *= d.size;
    }
  }
  // Runs the GEMMs of outer iterations [ob, oe); each owns a distinct block of c.
  auto run_range = [&](std::int64_t ob, std::int64_t oe) {
    std::vector<std::int64_t> idx(loops.size(), 0);
    for (std::int64_t o = ob; o < oe; ++o) {
      for (std::int64_t in = 0; in < inner; ++in) {
        std::int64_t rem_o = o, rem_i = in;
        std::int64_t oa = 0, obb = 0, oc = 0;
        for (std::size_t i = loops.size(); i-- > 0;) {
          std::int64_t& rem = i < n_outer ? rem_o : rem_i;
          const std::int64_t v = rem % loops[i].size;
          rem /= loops[i].size;
          oa += v * loops[i].sa;
          obb += v * loops[i].sb;
          oc += v * loops[i].sc;
        }
        matmul_block<T>(p.m.size, p.n.size, p.k.size, A + oa, p.m.sa, p.k.sa, B + obb, p.k.sb,
                        p.n.sb, Cw + oc, p.m.sc, p.n.sc, in != 0);
      }
    }
  };
  const double work = double(p.m.size) * double(p.n.size) * double(p.k.size) * double(inner);
  const int threads = static_cast<int>(std::min<std::int64_t>(max_threads(), outer));
  // Many small GEMMs (each below the size where OpenBLAS would thread it itself) run on OpenMP
  // threads; bigger ones keep OpenBLAS's threading, which measured better on a busy machine.
  const double per_gemm = double(p.m.size) * double(p.n.size) * double(p.k.size);
  if (threads >= 2 && per_gemm < double(1 << 18) && work * double(outer) >= double(1 << 18)) {
    // Independent GEMMs on OpenMP threads, BLAS single-threaded inside each (blas_threads.hpp).
    BlasSingleThread single;
    // Split by the team actually obtained, not the count requested (a user's parallel region or
    // OMP_DYNAMIC may give fewer threads); an exception inside is rethrown here.
    parallel_chunks(outer, threads, run_range);
  } else {
    run_range(0, outer);
  }
  if (Cw != C) {
    Strides src, dst;
    std::vector<std::int64_t> shape;
    for (std::size_t i = 0; i < dims.size(); ++i) {
      if (!dims[i].ic) continue;
      src.push_back(dims[i].sc);
      dst.push_back(c_orig[i]);
      shape.push_back(dims[i].size);
    }
    numpy::strided::strided_copy_raw(Cw, src, C, dst, shape, sizeof(T));
  }
}
}  // namespace

Array contract_raw(const Array& a, const std::vector<int>& la, const Array& b,
                   const std::vector<int>& lb, const std::vector<int>& lc, const Shape& c_shape) {
  if (a.dtype() != b.dtype()) throw Error("internal: contract_raw needs equal dtypes");
  if (static_cast<int>(la.size()) != a.ndim() || static_cast<int>(lb.size()) != b.ndim() ||
      static_cast<int>(lc.size()) != c_shape.size()) {
    throw Error("internal: contract_raw label count differs from rank");
  }
  if (a.dtype() == DType::bool_) {
    // numpy: a boolean product is "any(a and b)"; count in int32 and test for non-zero.
    return contract_raw(a.astype(DType::int32), la, b.astype(DType::int32), lb, lc, c_shape)
        .astype(DType::bool_);
  }
  int max_label = -1;
  for (const auto* l : {&la, &lb, &lc}) {
    for (int x : *l) max_label = std::max(max_label, x);
  }
  std::vector<Dim> dims(static_cast<std::size_t>(max_label + 1));
  std::vector<bool> used(dims.size(), false);
  auto add = [&](const Shape& s, const std::vector<int>& l, std::int64_t Dim::*stride,
                 bool Dim::*in) {
    const Strides st = contiguous_strides(s);
    for (std::size_t i = 0; i < l.size(); ++i) {
      if (l[i] < 0) {
        if (s[static_cast<int>(i)] != 1) throw Error("internal: label -1 on an axis of size > 1");
        continue;
      }
      Dim& d = dims[static_cast<std::size_t>(l[i])];
      if (used[static_cast<std::size_t>(l[i])] && d.size != s[static_cast<int>(i)]) {
        throw Error("internal: contract_raw label sizes disagree");
      }
      if (d.*in) throw Error("internal: contract_raw repeated label in one operand");
      used[static_cast<std::size_t>(l[i])] = true;
      d.size = s[static_cast<int>(i)];
      d.*stride = st[i];
      d.*in = true;
    }
  };
  add(a.shape(), la, &Dim::sa, &Dim::ia);
  add(b.shape(), lb, &Dim::sb, &Dim::ib);
  add(c_shape, lc, &Dim::sc, &Dim::ic);
  std::vector<Dim> live;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (used[i]) live.push_back(dims[i]);
  }
  Array out = Array::empty(c_shape, a.dtype());
  dispatch(a.dtype(), [&]<typename T>() {
    if constexpr (!std::is_same_v<T, bool>) {
      run_contraction<T>(live, a.data<T>(), b.data<T>(), out.mutable_data<T>());
    }
  });
  return out;
}
}  // namespace loom::detail
