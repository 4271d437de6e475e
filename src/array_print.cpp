// Array printing: NumPy's repr inside JAX's Array(...) wrapper (see loom/array.hpp, str()).
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <string>
#include <vector>

#include "loom/array.hpp"

namespace loom {

// ---- printing -----------------------------------------------------------------------------
//
// NumPy's array2string with its default options (precision 8, floatmode "maxprec", linewidth 75,
// threshold 1000, edgeitems 3), inside JAX's Array(...) wrapper (jax/_src/array.py __repr__).

namespace {

constexpr int kPrecision = 8;
constexpr std::size_t kLineWidth = 75;
constexpr std::int64_t kThreshold = 1000, kEdge = 3;

// Shortest round-trip decimal digits of |v| (float32 or float64): v = d.ddd x 10^exp.
struct Digits {
  std::string digits;
  int exp = 0;
};
Digits shortest(double v, bool f32) {
  char buf[64];
  const double a = std::fabs(v);
  auto r = f32 ? std::to_chars(buf, buf + sizeof buf, static_cast<float>(a),
                               std::chars_format::scientific)
               : std::to_chars(buf, buf + sizeof buf, a, std::chars_format::scientific);
  std::string s(buf, r.ptr);
  const auto e = s.find('e');
  Digits d;
  for (std::size_t i = 0; i < e; ++i)
    if (s[i] != '.') d.digits += s[i];
  d.exp = std::atoi(s.c_str() + e + 1);
  return d;
}

// printf of the exact value, `p` digits after the point ('f' or 'e').
std::string printf_exact(double v, int p, char conv) {
  char fmt[8] = {'%', '.', '*', conv, 0};
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, p, std::fabs(v));
  return buf;
}

std::string strip_zeros(std::string frac) {
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  return frac;
}

// Positional (int part with sign, fraction digits) of the shortest digits, at most kPrecision
// fraction digits (the exact value rounded when the shortest form needs more).
std::pair<std::string, std::string> positional(double v, bool f32) {
  const std::string sign = std::signbit(v) ? "-" : "";
  const Digits d = shortest(v, f32);
  const int n = static_cast<int>(d.digits.size());
  if (v == 0) return {sign + "0", ""};
  if (n - 1 - d.exp <= kPrecision) {
    if (d.exp >= 0) {
      std::string ip = d.digits.substr(0, std::size_t(std::min(n, d.exp + 1)));
      ip += std::string(std::size_t(std::max(0, d.exp + 1 - n)), '0');
      return {sign + ip, n > d.exp + 1 ? d.digits.substr(std::size_t(d.exp + 1)) : ""};
    }
    return {sign + "0", std::string(std::size_t(-d.exp - 1), '0') + d.digits};
  }
  const std::string s = printf_exact(v, kPrecision, 'f');
  const auto dot = s.find('.');
  return {sign + s.substr(0, dot), strip_zeros(s.substr(dot + 1))};
}

// Scientific mantissa fraction digits (shortest, at most kPrecision) and exponent.
struct Sci {
  std::string sign, lead, frac;
  int exp = 0;
};
Sci scientific(double v, bool f32, int min_frac) {
  Sci out{std::signbit(v) ? "-" : "", "0", "", 0};
  if (v == 0) {
    out.frac = std::string(std::size_t(min_frac), '0');
    return out;
  }
  const Digits d = shortest(v, f32);
  const int frac_len = static_cast<int>(d.digits.size()) - 1;
  if (frac_len <= kPrecision && frac_len >= min_frac) {
    out.lead = d.digits.substr(0, 1);
    out.frac = d.digits.substr(1);
    out.exp = d.exp;
    return out;
  }
  // Fewer digits than wanted: more digits of the exact value; more than kPrecision: rounded.
  const int p = frac_len > kPrecision ? kPrecision : min_frac;
  const std::string s = printf_exact(v, p, 'e');
  const auto e = s.find('e');
  out.lead = s.substr(0, 1);
  out.frac = p > 0 ? s.substr(2, e - 2) : "";
  if (frac_len > kPrecision) out.frac = strip_zeros(out.frac);
  out.exp = std::atoi(s.c_str() + e + 1);
  return out;
}

std::string exp_str(int exp, std::size_t digits) {
  std::string e = std::to_string(std::abs(exp));
  if (e.size() < digits) e.insert(0, digits - e.size(), '0');
  return (exp < 0 ? "e-" : "e+") + e;
}

// Formats the displayed values as NumPy's FloatingFormat / IntegerFormat / BoolFormat do.
std::vector<std::string> format_values(const std::vector<double>& v, DType dtype, bool scalar) {
  std::vector<std::string> cells(v.size());
  if (dtype == DType::bool_) {
    for (std::size_t i = 0; i < v.size(); ++i)
      cells[i] = v[i] != 0 ? (scalar ? "True" : " True") : "False";
    return cells;
  }
  if (!is_floating(dtype)) {
    std::size_t w = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      cells[i] = std::to_string(static_cast<long long>(v[i]));
      w = std::max(w, cells[i].size());
    }
    for (auto& c : cells) c.insert(0, w - c.size(), ' ');
    return cells;
  }
  const bool f32 = dtype == DType::float32;
  bool any_finite = false, exp_format = false, neg_inf = false, non_finite = false;
  double max_val = 0, min_val = 0;
  for (double x : v) {
    if (!std::isfinite(x)) {
      non_finite = true;
      neg_inf = neg_inf || (std::isinf(x) && x < 0);
      continue;
    }
    any_finite = true;
    const double a = std::fabs(x);
    if (a == 0) continue;
    if (max_val == 0 || a > max_val) max_val = a;
    if (min_val == 0 || a < min_val) min_val = a;
  }
  if (max_val != 0) {
    const double ratio = f32 ? double(float(max_val) / float(min_val)) : max_val / min_val;
    exp_format = max_val >= 1e8 || min_val < 0.0001 || ratio > 1000.0;
  }
  std::size_t pad_left = 0, pad_right = 0;
  if (!any_finite) {
    // nothing to measure
  } else if (exp_format) {
    std::size_t precision = 0, exp_size = 2;
    for (double x : v) {
      if (!std::isfinite(x)) continue;
      const Sci s = scientific(x, f32, 0);
      precision = std::max(precision, s.frac.size());
      exp_size = std::max(exp_size, std::to_string(std::abs(s.exp)).size());
      pad_left = std::max(pad_left, s.sign.size() + 1);
    }
    pad_right = exp_size + 2 + precision;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) continue;
      const Sci s = scientific(v[i], f32, static_cast<int>(precision));
      std::string c = s.sign + s.lead + "." + s.frac + exp_str(s.exp, exp_size);
      cells[i] = std::string(pad_left - s.sign.size() - 1, ' ') + c;
    }
  } else {
    std::vector<std::pair<std::string, std::string>> parts(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) continue;
      parts[i] = positional(v[i], f32);
      pad_left = std::max(pad_left, parts[i].first.size());
      pad_right = std::max(pad_right, parts[i].second.size());
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) continue;
      const auto& [ip, fp] = parts[i];
      cells[i] = std::string(pad_left - ip.size(), ' ') + ip + "." + fp +
                 std::string(pad_right - fp.size(), ' ');
    }
  }
  if (non_finite) {
    const std::size_t offset = pad_right + 1, inf_len = 3 + (neg_inf ? 1 : 0);
    const std::size_t old_left = pad_left;
    if (3 > offset) pad_left = std::max(pad_left, 3 - offset);
    if (inf_len > offset) pad_left = std::max(pad_left, inf_len - offset);
    const std::size_t width = pad_left + pad_right + 1;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (std::isfinite(v[i])) {
        cells[i].insert(0, pad_left - old_left, ' ');  // the finite values align with nan/inf
        continue;
      }
      const std::string r = std::isnan(v[i]) ? "nan" : (v[i] < 0 ? "-inf" : "inf");
      cells[i] = std::string(width > r.size() ? width - r.size() : 0, ' ') + r;
    }
  }
  return cells;
}

// NumPy's _formatArray: nested brackets, rows wrapped at the line width, "..." when summarized.
struct Printer {
  const Shape& shape;
  bool summarize;
  std::vector<std::string> cells;  // displayed elements, in traversal order
  std::size_t next = 0;

  // Calls f(flat offset) for each displayed element, in order.
  template <typename F>
  void visit(int axis, std::int64_t offset, F&& f) const {
    if (axis == shape.size()) return f(offset);
    std::int64_t stride = 1;
    for (int i = axis + 1; i < shape.size(); ++i) stride *= shape[i];
    const std::int64_t n = shape[axis];
    const bool cut = summarize && 2 * kEdge < n;
    for (std::int64_t i = 0; i < n; ++i) {
      if (cut && i == kEdge) i = n - kEdge;
      visit(axis + 1, offset + i * stride, f);
    }
  }

  static void extend(std::string& s, std::string& line, const std::string& word, std::size_t width,
                     const std::string& prefix) {
    if (line.size() + word.size() > width && line.size() > prefix.size()) {
      const auto end = line.find_last_not_of(' ');
      s += line.substr(0, end == std::string::npos ? 0 : end + 1) + "\n";
      line = prefix;
    }
    line += word;
  }

  std::string rec(int axis, const std::string& hanging, std::size_t width) {
    if (axis == shape.size()) return cells[next++];
    const std::string next_hanging = hanging + " ";
    const std::size_t next_width = width - 1;
    const std::int64_t n = shape[axis];
    const bool cut = summarize && 2 * kEdge < n;
    const std::int64_t leading = cut ? kEdge : 0, trailing = cut ? kEdge : n;
    const int left = shape.size() - axis;
    std::string s;
    if (left == 1) {
      const std::size_t elem_width = width - 1;
      std::string line = hanging;
      for (std::int64_t i = 0; i < leading; ++i) {
        extend(s, line, rec(axis + 1, next_hanging, next_width), elem_width, hanging);
        line += ", ";
      }
      if (cut) {
        extend(s, line, "...", elem_width, hanging);
        line += ", ";
      }
      for (std::int64_t i = trailing; i > 1; --i) {
        extend(s, line, rec(axis + 1, next_hanging, next_width), elem_width, hanging);
        line += ", ";
      }
      extend(s, line, rec(axis + 1, next_hanging, next_width), elem_width, hanging);
      s += line;
    } else {
      const std::string line_sep = "," + std::string(std::size_t(left - 1), '\n');
      for (std::int64_t i = 0; i < leading; ++i)
        s += hanging + rec(axis + 1, next_hanging, next_width) + line_sep;
      if (cut) s += hanging + "..." + line_sep;
      for (std::int64_t i = trailing; i > 1; --i)
        s += hanging + rec(axis + 1, next_hanging, next_width) + line_sep;
      s += hanging + rec(axis + 1, next_hanging, next_width);
    }
    return "[" + s.substr(hanging.size()) + "]";
  }
};

}  // namespace

std::string Array::str() const {
  if (!valid()) return "Array(<empty>)";
  const std::string prefix = "Array(";
  const std::string dtype_str = "dtype=" + std::string(dtype_name(dtype_)) + ")";
  std::string body;
  if (size() == 0) {
    body = "[], shape=" + shape_.str();
  } else {
    Printer p{shape_, size() > kThreshold, {}, 0};
    const std::vector<double> all = to_vector<double>();
    std::vector<double> shown;
    p.visit(0, 0, [&](std::int64_t off) { shown.push_back(all[static_cast<std::size_t>(off)]); });
    p.cells = format_values(shown, dtype_, ndim() == 0);
    // The suffix "," is taken off the line width; continuation lines align after "Array([".
    body = p.rec(0, std::string(prefix.size() + 1, ' '), kLineWidth - 1);
  }
  const auto nl = body.rfind('\n');
  const std::size_t last_line_len =
      (nl == std::string::npos ? body.size() + 1 : body.size() - nl) + 1;
  const std::string sep =
      last_line_len + dtype_str.size() + 1 > kLineWidth ? std::string(prefix.size(), ' ') : " ";
  return prefix + body + "," + sep + dtype_str;
}

std::ostream& operator<<(std::ostream& os, const Array& array) {
  return os << array.str();
}

}  // namespace loom
