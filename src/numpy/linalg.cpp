// jnp.matmul, jnp.dot, jnp.einsum: label bookkeeping in front of the contraction engine
// (src/lax/contract.hpp), which also supplies their VJPs.
#include "loom/numpy/linalg.hpp"

#include <algorithm>
#include <array>
#include <string>

#include "detail/dispatch.hpp"
#include "lax/contract.hpp"
#include "loom/numpy/creation.hpp"

namespace loom::numpy {

using detail::describe;

Array matmul(const Array& a0, const Array& b0) {
  detail::check_valid(a0, "matmul");
  detail::check_valid(b0, "matmul");
  if (a0.ndim() == 0 || b0.ndim() == 0) {
    throw Error("matmul: operands must have at least one dimension, got " + describe(a0) + " and " +
                describe(b0));
  }
  const DType dt = detail::promote_for("matmul", a0, b0);
  const Array a = a0.astype(dt), b = b0.astype(dt);
  const int ra = a.ndim(), rb = b.ndim();
  const bool a_vec = ra == 1, b_vec = rb == 1;
  const std::int64_t k = a.shape()[ra - 1];
  const std::int64_t kb = b_vec ? b.shape()[0] : b.shape()[rb - 2];
  if (k != kb) {
    throw Error("matmul: inner dimensions differ: a " + a0.shape().str() + " has " +
                std::to_string(k) + " columns but b " + b0.shape().str() + " has " +
                std::to_string(kb) + " rows");
  }
  const int ba = a_vec ? 0 : ra - 2, bb = b_vec ? 0 : rb - 2;
  const int nb = std::max(ba, bb);
  const int lm = nb, lk = nb + 1, ln = nb + 2;
  std::vector<int> la, lb, lc;
  Shape c_shape;
  for (int i = 0; i < nb; ++i) {
    const std::int64_t sa = i >= nb - ba ? a.shape()[i - (nb - ba)] : 1;
    const std::int64_t sb = i >= nb - bb ? b.shape()[i - (nb - bb)] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      throw Error("matmul: batch dimensions of " + a0.shape().str() + " and " + b0.shape().str() +
                  " cannot be broadcast together (" + std::to_string(sa) + " vs " +
                  std::to_string(sb) + ")");
    }
    const std::int64_t s = std::max(sa, sb);
    c_shape.push_back(s);
    lc.push_back(i);
    if (i >= nb - ba) la.push_back(sa == s ? i : -1);
    if (i >= nb - bb) lb.push_back(sb == s ? i : -1);
  }
  if (!a_vec) {
    la.push_back(lm);
    lc.push_back(lm);
    c_shape.push_back(a.shape()[ra - 2]);
  }
  la.push_back(lk);
  lb.push_back(lk);
  if (!b_vec) {
    lb.push_back(ln);
    lc.push_back(ln);
    c_shape.push_back(b.shape()[rb - 1]);
  }
  return detail::contract(a, la, b, lb, lc, c_shape);
}

Array dot(const Array& a0, const Array& b0) {
  detail::check_valid(a0, "dot");
  detail::check_valid(b0, "dot");
  const DType dt = detail::promote_for("dot", a0, b0);
  const Array a = a0.astype(dt), b = b0.astype(dt);
  const int ra = a.ndim(), rb = b.ndim();
  std::vector<int> la, lb, lc;
  Shape c_shape;
  if (ra == 0 || rb == 0) {
    // A scalar operand: dot is multiplication by it.
    for (int i = 0; i < std::max(ra, rb); ++i) {
      (ra == 0 ? lb : la).push_back(i);
      lc.push_back(i);
      c_shape.push_back((ra == 0 ? b : a).shape()[i]);
    }
    return detail::contract(a, la, b, lb, lc, c_shape);
  }
  // numpy.dot: sum over a's last axis and b's second-to-last (its only axis when 1-D).
  const int bk = rb == 1 ? 0 : rb - 2;
  if (a.shape()[ra - 1] != b.shape()[bk]) {
    throw Error("dot: shapes " + a0.shape().str() + " and " + b0.shape().str() + " not aligned: " +
                std::to_string(a.shape()[ra - 1]) + " (dim " + std::to_string(ra - 1) +
                ") != " + std::to_string(b.shape()[bk]) + " (dim " + std::to_string(bk) + ")");
  }
  if (ra + rb - 2 > Shape::kMaxRank) throw Error("dot: result would exceed loom's maximum rank");
  int next = 0;
  const int lk = 100;
  for (int i = 0; i < ra - 1; ++i) {
    la.push_back(next);
    lc.push_back(next++);
    c_shape.push_back(a.shape()[i]);
  }
  la.push_back(lk);
  for (int i = 0; i < rb; ++i) {
    if (i == bk) {
      lb.push_back(lk);
      continue;
    }
    lb.push_back(next);
    lc.push_back(next++);
    c_shape.push_back(b.shape()[i]);
  }
  return detail::contract(a, la, b, lb, lc, c_shape);
}

namespace {

// Label ids: 'A'..'Z' -> 0..25, 'a'..'z' -> 26..51, ellipsis axes -> 52 + position.
constexpr int kEllipsisBase = 52;

int letter_id(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return 26 + (c - 'a');
  return -1;
}

struct Term {
  std::vector<int> letters;  // letter ids, with -2 standing for "..."
  bool has_ellipsis = false;
};

Term parse_term(const std::string& s, const std::string& subscripts) {
  Term t;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '.') {
      if (s.compare(i, 3, "...") != 0 || t.has_ellipsis) {
        throw Error("einsum: invalid ellipsis in subscripts \"" + subscripts +
                    "\" (use at most one \"...\" per operand)");
      }
      t.has_ellipsis = true;
      t.letters.push_back(-2);
      i += 2;
      continue;
    }
    const int id = letter_id(s[i]);
    if (id < 0) {
      throw Error("einsum: invalid subscript character '" + std::string(1, s[i]) + "' in \"" +
                  subscripts + "\" (expected letters a-z, A-Z or \"...\")");
    }
    t.letters.push_back(id);
  }
  return t;
}

char letter_char(int id) {
  return static_cast<char>(id < 26 ? 'A' + id : 'a' + (id - 26));
}

// Sums x over the labels in `drop` (a contraction with a vector of ones), keeping `keep` order.
Array reduce_labels(const Array& x, const std::vector<int>& lx, const std::vector<int>& drop,
                    const std::vector<int>& keep, const std::vector<std::int64_t>& sizes) {
  Shape ones_shape, out_shape;
  for (int l : drop) ones_shape.push_back(sizes[static_cast<std::size_t>(l)]);
  for (int l : keep) out_shape.push_back(sizes[static_cast<std::size_t>(l)]);
  return detail::contract(x, lx, ones(ones_shape, x.dtype()), drop, keep, out_shape);
}

}  // namespace

Array einsum(const std::string& subscripts_in, const std::vector<Array>& operands) {
  std::string subscripts;
  for (char c : subscripts_in) {
    if (c != ' ') subscripts += c;
  }
  if (operands.empty()) throw Error("einsum: at least one operand is required");
  for (const Array& x : operands) detail::check_valid(x, "einsum");
  const std::size_t arrow = subscripts.find("->");
  const std::string lhs = subscripts.substr(0, arrow);
  std::vector<Term> terms;
  {
    std::size_t start = 0;
    while (true) {
      const std::size_t comma = lhs.find(',', start);
      terms.push_back(parse_term(lhs.substr(start, comma - start), subscripts_in));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (terms.size() != operands.size()) {
    throw Error("einsum: subscripts \"" + subscripts_in + "\" name " +
                std::to_string(terms.size()) + " operands but " + std::to_string(operands.size()) +
                " were given");
  }
  // Expand each term to one label per axis; ellipsis axes align to the right across operands.
  std::vector<int> ell_rank(terms.size(), 0);
  int max_ell = 0;
  for (std::size_t t = 0; t < terms.size(); ++t) {
    const int named = static_cast<int>(terms[t].letters.size()) - (terms[t].has_ellipsis ? 1 : 0);
    const int nd = operands[t].ndim();
    if (terms[t].has_ellipsis ? named > nd : named != nd) {
      throw Error("einsum: operand " + std::to_string(t) + " " + describe(operands[t]) + " has " +
                  std::to_string(nd) + " dimensions but its subscripts in \"" + subscripts_in +
                  "\" name " + std::to_string(named));
    }
    ell_rank[t] = terms[t].has_ellipsis ? nd - named : 0;
    max_ell = std::max(max_ell, ell_rank[t]);
  }
  std::vector<std::int64_t> sizes(static_cast<std::size_t>(kEllipsisBase + max_ell), -1);
  std::vector<int> count(sizes.size(), 0);
  std::vector<std::vector<int>> labels(terms.size());
  for (std::size_t t = 0; t < terms.size(); ++t) {
    int axis = 0;
    for (int id : terms[t].letters) {
      if (id == -2) {
        for (int j = 0; j < ell_rank[t]; ++j) {
          labels[t].push_back(kEllipsisBase + max_ell - ell_rank[t] + j);
          ++axis;
        }
        continue;
      }
      if (std::find(labels[t].begin(), labels[t].end(), id) != labels[t].end()) {
        throw Error("einsum: subscript '" + std::string(1, letter_char(id)) +
                    "' repeats within operand " + std::to_string(t) + " in \"" + subscripts_in +
                    "\" (diagonals are not supported)");
      }
      labels[t].push_back(id);
      ++axis;
    }
    for (std::size_t i = 0; i < labels[t].size(); ++i) {
      const int l = labels[t][i];
      const std::int64_t s = operands[t].shape()[static_cast<int>(i)];
      auto& known = sizes[static_cast<std::size_t>(l)];
      ++count[static_cast<std::size_t>(l)];
      if (known == -1 || (l >= kEllipsisBase && known == 1)) {
        known = s;
      } else if (s != known && !(l >= kEllipsisBase && s == 1)) {
        const std::string name = l >= kEllipsisBase ? std::string("an ellipsis axis")
                                                    : "'" + std::string(1, letter_char(l)) + "'";
        throw Error("einsum: size of " + name + " differs between operands in \"" + subscripts_in +
                    "\": " + std::to_string(known) + " vs " + std::to_string(s) + " (operand " +
                    std::to_string(t) + " " + describe(operands[t]) + ")");
      }
    }
  }
  // Broadcast ellipsis axes of size 1 take no part.
  for (std::size_t t = 0; t < terms.size(); ++t) {
    for (std::size_t i = 0; i < labels[t].size(); ++i) {
      const int l = labels[t][i];
      if (l >= kEllipsisBase && operands[t].shape()[static_cast<int>(i)] == 1 &&
          sizes[static_cast<std::size_t>(l)] != 1) {
        labels[t][i] = -1;
      }
    }
  }
  // The output labels.
  std::vector<int> out;
  if (arrow != std::string::npos) {
    const Term o = parse_term(subscripts.substr(arrow + 2), subscripts_in);
    for (int id : o.letters) {
      if (id == -2) {
        for (int j = 0; j < max_ell; ++j) out.push_back(kEllipsisBase + j);
        continue;
      }
      if (sizes[static_cast<std::size_t>(id)] == -1) {
        throw Error("einsum: output subscript '" + std::string(1, letter_char(id)) + "' in \"" +
                    subscripts_in + "\" does not appear in any operand");
      }
      if (std::find(out.begin(), out.end(), id) != out.end()) {
        throw Error("einsum: output subscript '" + std::string(1, letter_char(id)) +
                    "' repeats in \"" + subscripts_in + "\"");
      }
      out.push_back(id);
    }
  } else {
    // Implicit mode (numpy): ellipsis axes, then letters used exactly once, in ASCII order.
    for (int j = 0; j < max_ell; ++j) out.push_back(kEllipsisBase + j);
    std::vector<std::pair<char, int>> once;
    for (int id = 0; id < kEllipsisBase; ++id) {
      if (count[static_cast<std::size_t>(id)] == 1) once.emplace_back(letter_char(id), id);
    }
    std::sort(once.begin(), once.end());
    for (const auto& [c, id] : once) out.push_back(id);
  }
  for (auto& s : sizes) {
    if (s == -1) s = 1;
  }
  DType dt = operands[0].dtype();
  for (std::size_t t = 1; t < operands.size(); ++t) {
    dt = detail::promote_for("einsum", Array::scalar(0, dt), operands[t]);
  }
  auto present = [](const std::vector<int>& v, int l) {
    return std::find(v.begin(), v.end(), l) != v.end();
  };
  auto strip = [](std::vector<int> v) {
    v.erase(std::remove(v.begin(), v.end(), -1), v.end());
    return v;
  };
  auto shape_of = [&](const std::vector<int>& ls) {
    Shape s;
    for (int l : ls) s.push_back(sizes[static_cast<std::size_t>(l)]);
    return s;
  };

  Array cur = operands[0].astype(dt);
  std::vector<int> lcur = labels[0];
  if (operands.size() == 1) {
    std::vector<int> drop;
    for (int l : strip(lcur)) {
      if (!present(out, l)) drop.push_back(l);
    }
    if (!drop.empty()) return reduce_labels(cur, lcur, drop, out, sizes);
    // A pure permutation (possibly dropping or adding size-1 broadcast axes).
    std::vector<int> perm;
    for (int l : out) {
      perm.push_back(static_cast<int>(std::find(lcur.begin(), lcur.end(), l) - lcur.begin()));
    }
    if (perm.size() == lcur.size()) return detail::permute(cur, perm);
    return reduce_labels(cur, lcur, {}, out, sizes);
  }
  for (std::size_t t = 1; t < operands.size(); ++t) {
    const Array next = operands[t].astype(dt);
    const std::vector<int>& lnext = labels[t];
    // Labels still needed after this step.
    std::vector<int> needed = out;
    for (std::size_t u = t + 1; u < operands.size(); ++u) {
      for (int l : labels[u]) {
        if (l >= 0) needed.push_back(l);
      }
    }
    // Sum labels private to cur first (a GEMV with ones), so the contraction sees none.
    std::vector<int> drop, keep;
    for (int l : strip(lcur)) {
      (present(lnext, l) || present(needed, l) ? keep : drop).push_back(l);
    }
    if (!drop.empty()) {
      cur = reduce_labels(cur, lcur, drop, keep, sizes);
      lcur = keep;
    }
    Array rhs = next;
    std::vector<int> lrhs = lnext;
    drop.clear();
    keep.clear();
    for (int l : strip(lnext)) {
      (present(lcur, l) || present(needed, l) ? keep : drop).push_back(l);
    }
    if (!drop.empty()) {
      rhs = reduce_labels(rhs, lrhs, drop, keep, sizes);
      lrhs = keep;
    }
    std::vector<int> lres;
    if (t + 1 == operands.size()) {
      lres = out;
    } else {
      for (int l : strip(lcur)) {
        if (present(needed, l)) lres.push_back(l);
      }
      for (int l : strip(lrhs)) {
        if (present(needed, l) && !present(lres, l)) lres.push_back(l);
      }
    }
    cur = detail::contract(cur, lcur, rhs, lrhs, lres, shape_of(lres));
    lcur = lres;
  }
  return cur;
}

}  // namespace loom::numpy
