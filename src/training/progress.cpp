// Progress bar, metrics CSV and SVG plot (see loom/training/progress.hpp).
#include "loom/training/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "loom/error.hpp"

namespace loom::training {

namespace {

bool is_terminal(std::ostream& out) {
  if (&out == &std::cout) return isatty(STDOUT_FILENO) != 0;
  if (&out == &std::cerr) return isatty(STDERR_FILENO) != 0;
  return false;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// Writes `text` to `path` through a temporary file and a rename.
void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot write \"" + tmp + "\"");
    f << text;
    if (!f.flush()) throw Error("cannot write \"" + tmp + "\"");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw Error("cannot rename \"" + tmp + "\" to \"" + path + "\"");
  }
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<long long>(std::llround(seconds));
  const long long h = s / 3600, m = (s / 60) % 60;
  s %= 60;
  char buf[48];
  if (h > 0)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", h, m, s);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", m, s);
  return buf;
}

// ---- ProgressBar ---------------------------------------------------------------------------

ProgressBar::ProgressBar(std::ostream& out, std::string label, std::int64_t total_steps,
                         std::int64_t examples_per_step, bool force_terminal)
    : out_(out),
      label_(std::move(label)),
      total_(std::max<std::int64_t>(total_steps, 1)),
      examples_per_step_(examples_per_step),
      terminal_(force_terminal || is_terminal(out)),
      start_(std::chrono::steady_clock::now()) {}

double ProgressBar::examples_per_second() const {
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return secs > 0 ? double(done_ * examples_per_step_) / secs : 0.0;
}

std::string ProgressBar::render(std::int64_t done,
                                const std::vector<std::pair<std::string, double>>& metrics) const {
  constexpr int kWidth = 24;
  const double frac = std::min(1.0, double(done) / double(total_));
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<std::size_t>(filled), '=');
  if (filled < kWidth) bar += '>';
  bar.resize(kWidth, ' ');
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = secs > 0 ? double(done) / secs : 0.0;
  std::string s = label_ + " [" + bar + "] " + std::to_string(done) + "/" + std::to_string(total_);
  for (const auto& [name, value] : metrics) s += "  " + name + " " + fixed(value, 4);
  s += "  " + fixed(rate * double(examples_per_step_), 0) + " ex/s";
  s += done < total_ ? "  ETA " + format_duration(rate > 0 ? double(total_ - done) / rate : -1)
                     : "  " + format_duration(secs);
  return s;
}

void ProgressBar::update(std::int64_t done,
                         const std::vector<std::pair<std::string, double>>& metrics) {
  done_ = done;
  last_metrics_ = metrics;
  if (terminal_) {
    out_ << "\r\033[K" << render(done, metrics) << std::flush;
    return;
  }
  const int decile = static_cast<int>(10 * done / total_);
  if (decile != last_decile_ && decile < 10) {
    last_decile_ = decile;
    out_ << render(done, metrics) << "\n" << std::flush;
  }
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (terminal_)
    out_ << "\r\033[K" << render(done_, last_metrics_) << "\n" << std::flush;
  else
    out_ << render(done_, last_metrics_) << "\n" << std::flush;
}

// ---- MetricsLog ----------------------------------------------------------------------------

MetricsLog::MetricsLog(std::vector<std::string> columns) : columns_(std::move(columns)) {
  if (columns_.empty()) throw Error("MetricsLog: at least one column is needed");
}

void MetricsLog::add(std::vector<double> row) {
  if (row.size() != columns_.size()) {
    throw Error("MetricsLog.add: a row of " + std::to_string(row.size()) + " values for " +
                std::to_string(columns_.size()) + " columns");
  }
  rows_.push_back(std::move(row));
}

std::size_t MetricsLog::index_of(const std::string& column) const {
  auto it = std::find(columns_.begin(), columns_.end(), column);
  if (it == columns_.end()) throw Error("MetricsLog: no column \"" + column + "\"");
  return static_cast<std::size_t>(it - columns_.begin());
}

void MetricsLog::truncate_after(const std::string& column, double value) {
  const std::size_t i = index_of(column);
  rows_.erase(std::remove_if(rows_.begin(), rows_.end(),
                             [&](const std::vector<double>& r) { return r[i] > value; }),
              rows_.end());
}

void MetricsLog::write_csv(const std::string& path) const {
  std::ostringstream s;
  for (std::size_t i = 0; i < columns_.size(); ++i) s << (i ? "," : "") << columns_[i];
  s << "\n";
  char buf[64];
  for (const auto& row : rows_) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      std::snprintf(buf, sizeof buf, "%.9g", row[i]);
      s << (i ? "," : "") << buf;
    }
    s << "\n";
  }
  write_atomically(path, s.str());
}

MetricsLog MetricsLog::read_csv(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error("MetricsLog.read_csv: cannot open \"" + path + "\"");
  std::string line;
  if (!std::getline(f, line)) throw Error("MetricsLog.read_csv: \"" + path + "\" is empty");
  std::vector<std::string> columns;
  std::stringstream header(line);
  for (std::string c; std::getline(header, c, ',');) columns.push_back(c);
  MetricsLog log(columns);
  for (int lineno = 2; std::getline(f, line); ++lineno) {
    if (line.empty()) continue;
    std::vector<double> row;
    std::stringstream cells(line);
    for (std::string c; std::getline(cells, c, ',');) {
      char* end = nullptr;
      row.push_back(std::strtod(c.c_str(), &end));
      if (end == c.c_str() || *end != '\0') {
        throw Error("MetricsLog.read_csv: \"" + path + "\" line " + std::to_string(lineno) +
                    ": \"" + c + "\" is not a number");
      }
    }
    if (row.size() != columns.size()) {
      throw Error("MetricsLog.read_csv: \"" + path + "\" line " + std::to_string(lineno) + " has " +
                  std::to_string(row.size()) + " values for " + std::to_string(columns.size()) +
                  " columns");
    }
    log.add(std::move(row));
  }
  return log;
}

namespace {
// A "nice" tick step (1, 2 or 5 times a power of ten) for a span.
double nice_step(double span, int target_ticks) {
  const double raw = span / std::max(1, target_ticks);
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= raw) return m * p;
  }
  return 10 * p;
}
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", std::abs(v) < 1e-12 ? 0.0 : v);
  return buf;
}
}  // namespace

void MetricsLog::write_svg(const std::string& path, const std::string& x_column,
                           const std::vector<std::vector<std::string>>& panels) const {
  constexpr double kPanelW = 420, kPanelH = 300, kLeft = 60, kRight = 20, kTop = 56, kBottom = 50;
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"};
  const std::size_t xi = index_of(x_column);
  const double width = kPanelW * double(panels.size());
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << kPanelH
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (std::size_t p = 0; p < panels.size(); ++p) {
    const double ox = kPanelW * double(p);
    const double pw = kPanelW - kLeft - kRight, ph = kPanelH - kTop - kBottom;
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (const auto& row : rows_) {
      xmin = std::min(xmin, row[xi]);
      xmax = std::max(xmax, row[xi]);
      for (const auto& c : panels[p]) {
        const double v = row[index_of(c)];
        if (std::isfinite(v)) {
          ymin = std::min(ymin, v);
          ymax = std::max(ymax, v);
        }
      }
    }
    if (!std::isfinite(xmin)) xmin = 0, xmax = 1;
    if (!std::isfinite(ymin)) ymin = 0, ymax = 1;
    // A constant (or one-point) series still gets a visible span, whatever its magnitude.
    auto widen = [](double& lo, double& hi) {
      const double min_span = std::max(1e-6, 1e-3 * std::max(std::abs(lo), std::abs(hi)));
      if (!(hi - lo >= min_span)) {
        const double mid = lo / 2 + hi / 2;
        lo = mid - min_span / 2;
        hi = mid + min_span / 2;
      }
    };
    widen(xmin, xmax);
    widen(ymin, ymax);
    const double pad = (ymax - ymin) * 0.08;
    ymin -= pad;
    ymax += pad;
    auto X = [&](double x) { return ox + kLeft + (x - xmin) / (xmax - xmin) * pw; };
    auto Y = [&](double y) { return kTop + (1 - (y - ymin) / (ymax - ymin)) * ph; };
    std::string title;
    for (const auto& c : panels[p]) title += (title.empty() ? "" : " / ") + c;
    s << "<text x=\"" << ox + kLeft + pw / 2 << "\" y=\"22\" text-anchor=\"middle\" "
      << "font-size=\"14\">" << title << "</text>\n";
    s << "<rect x=\"" << ox + kLeft << "\" y=\"" << kTop << "\" width=\"" << pw << "\" height=\""
      << ph << "\" fill=\"none\" stroke=\"#444\"/>\n";
    // Ticks by integer count (a float step below one ulp of the values could never advance).
    const double ys = nice_step(ymax - ymin, 5);
    const double y0 = std::ceil(ymin / ys) * ys;
    for (int k = 0; k <= 50 && y0 + k * ys <= ymax; ++k) {
      const double y = y0 + k * ys;
      s << "<line x1=\"" << ox + kLeft << "\" x2=\"" << ox + kLeft + pw << "\" y1=\"" << Y(y)
        << "\" y2=\"" << Y(y) << "\" stroke=\"#ddd\"/>\n"
        << "<text x=\"" << ox + kLeft - 6 << "\" y=\"" << Y(y) + 4 << "\" text-anchor=\"end\">"
        << num(y) << "</text>\n";
    }
    const double xs = nice_step(xmax - xmin, 6);
    const double x0 = std::ceil(xmin / xs) * xs;
    for (int k = 0; k <= 50 && x0 + k * xs <= xmax * (1 + 1e-12) + 1e-12; ++k) {
      const double x = x0 + k * xs;
      s << "<text x=\"" << X(x) << "\" y=\"" << kTop + ph + 18 << "\" text-anchor=\"middle\">"
        << num(x) << "</text>\n";
    }
    s << "<text x=\"" << ox + kLeft + pw / 2 << "\" y=\"" << kPanelH - 12
      << "\" text-anchor=\"middle\">" << x_column << "</text>\n";
    for (std::size_t k = 0; k < panels[p].size(); ++k) {
      const std::size_t ci = index_of(panels[p][k]);
      const char* color = colors[k % 5];
      std::string points;
      for (const auto& row : rows_) {
        if (std::isfinite(row[ci])) points += num(X(row[xi])) + "," + num(Y(row[ci])) + " ";
      }
      s << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\" points=\""
        << points << "\"/>\n";
      for (const auto& row : rows_) {
        if (std::isfinite(row[ci])) {
          s << "<circle cx=\"" << X(row[xi]) << "\" cy=\"" << Y(row[ci]) << "\" r=\"3\" fill=\""
            << color << "\"/>\n";
        }
      }
      // The legend sits in a row between the title and the plot, so it never hides a curve.
      const double lx = ox + kLeft + 150 * double(k), ly = 38;
      s << "<line x1=\"" << lx << "\" x2=\"" << lx + 20 << "\" y1=\"" << ly << "\" y2=\"" << ly
        << "\" stroke=\"" << color << "\" stroke-width=\"2\"/>\n"
        << "<text x=\"" << lx + 26 << "\" y=\"" << ly + 4 << "\">" << panels[p][k] << "</text>\n";
    }
  }
  s << "</svg>\n";
  write_atomically(path, s.str());
}

}  // namespace loom::training
