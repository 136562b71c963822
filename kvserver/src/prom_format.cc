#include "prom_format.h"

#include <charconv>
#include <cmath>

namespace kv {

std::string FormatPromValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // 2^63: the integral doubles below it convert to int64 exactly.
  if (v == std::trunc(v) && std::fabs(v) < 9223372036854775808.0)
    return std::to_string(static_cast<std::int64_t>(v));
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);  // 64 bytes hold any double's shortest form
}

std::string FormatPromValue(std::uint64_t v) { return std::to_string(v); }

std::string EscapePromLabel(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void PromWriter::Header(std::string_view name, std::string_view type, std::string_view help) {
  out_->append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ");
  out_->append(name).append(" ").append(type).append("\n");
}

void PromWriter::Labels(const PromLabels& labels) {
  if (labels.empty()) return;
  out_->push_back('{');
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out_->push_back(',');
    first = false;
    out_->append(k).append("=\"").append(EscapePromLabel(v)).append("\"");
  }
  out_->push_back('}');
}

void PromWriter::Sample(std::string_view name, const PromLabels& labels, double v) {
  out_->append(name);
  Labels(labels);
  out_->append(" ").append(FormatPromValue(v)).append("\n");
}

void PromWriter::Sample(std::string_view name, const PromLabels& labels, std::uint64_t v) {
  out_->append(name);
  Labels(labels);
  out_->append(" ").append(FormatPromValue(v)).append("\n");
}

void PromWriter::Gauge(std::string_view name, std::string_view help, double v) {
  Header(name, "gauge", help);
  Sample(name, {}, v);
}

void PromWriter::Gauge(std::string_view name, std::string_view help, std::uint64_t v) {
  Header(name, "gauge", help);
  Sample(name, {}, v);
}

void PromWriter::Counter(std::string_view name, std::string_view help, std::uint64_t v) {
  Header(name, "counter", help);
  Sample(name, {}, v);
}

void PromWriter::Counter(std::string_view name, std::string_view help, double v) {
  Header(name, "counter", help);
  Sample(name, {}, v);
}

void PromWriter::Histogram(std::string_view name, std::string_view help,
                           const std::vector<double>& bounds, const std::uint64_t* counts,
                           double sum) {
  Header(name, "histogram", help);
  HistogramSamples(name, {}, bounds, counts, sum);
}

void PromWriter::HistogramSamples(std::string_view name, const PromLabels& labels,
                                  const std::vector<double>& bounds, const std::uint64_t* counts,
                                  double sum) {
  std::string bucket(name);
  bucket += "_bucket";
  PromLabels with_le = labels;
  with_le.emplace_back("le", "");
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i <= bounds.size(); ++i) {
    cum += counts[i];
    with_le.back().second = i < bounds.size() ? FormatPromValue(bounds[i]) : "+Inf";
    Sample(bucket, with_le, cum);
  }
  Sample(std::string(name) + "_sum", labels, sum);
  Sample(std::string(name) + "_count", labels, cum);
}

}  // namespace kv
