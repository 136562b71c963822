// Writing the Prometheus text exposition format (version 0.0.4) for /metrics. Values are
// exact: an integral value prints as an integer (1234567, never 1.23457e+06), any other
// as the shortest decimal that reads back as the same double.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kv {

// A sample value: integral values with |v| < 2^63 as integers; NaN as "NaN", infinities
// as "+Inf"/"-Inf"; otherwise the shortest round-trip form (std::to_chars).
std::string FormatPromValue(double v);
std::string FormatPromValue(std::uint64_t v);

// A label value with \, " and newline escaped.
std::string EscapePromLabel(std::string_view v);

using PromLabels = std::vector<std::pair<std::string_view, std::string>>;

// Appends to `out`. Names and label names are the caller's constants (not checked);
// label values are escaped here. Help text may not contain a newline.
class PromWriter {
 public:
  explicit PromWriter(std::string* out) : out_(out) {}
  // "# HELP name help\n# TYPE name type\n"; type is counter, gauge or histogram.
  void Header(std::string_view name, std::string_view type, std::string_view help);
  // "name{labels} value\n".
  void Sample(std::string_view name, const PromLabels& labels, double v);
  void Sample(std::string_view name, const PromLabels& labels, std::uint64_t v);
  // Header + one unlabelled sample.
  void Gauge(std::string_view name, std::string_view help, double v);
  void Gauge(std::string_view name, std::string_view help, std::uint64_t v);
  void Counter(std::string_view name, std::string_view help, std::uint64_t v);
  void Counter(std::string_view name, std::string_view help, double v);
  // A histogram from per-bucket counts: `counts` has bounds.size() + 1 entries (the last
  // is above every bound); cumulative _bucket lines, +Inf, _sum and _count.
  void Histogram(std::string_view name, std::string_view help, const std::vector<double>& bounds,
                 const std::uint64_t* counts, double sum);
  // The same lines without the header, each with `labels` before "le": one series of a
  // labelled histogram (write the Header once, then one call per label set).
  void HistogramSamples(std::string_view name, const PromLabels& labels,
                        const std::vector<double>& bounds, const std::uint64_t* counts, double sum);

 private:
  void Labels(const PromLabels& labels);
  std::string* out_;
};

}  // namespace kv
