// /metrics formatting (prom_format.h) and the /proc parsing behind process_* metrics
// (process_stats.h).
#include "prom_format.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>

#include "process_stats.h"

namespace kv {
namespace {

TEST_CASE("prom values: integers exactly, other values round-trip", "[kvserver][metrics]") {
  CHECK(FormatPromValue(1234567.0) == "1234567");                    // was 1.23457e+06
  CHECK(FormatPromValue(9007199254740993.0) == "9007199254740992");  // nearest double
  CHECK(FormatPromValue(std::uint64_t{18446744073709551615u}) == "18446744073709551615");
  CHECK(FormatPromValue(0.0) == "0");
  CHECK(FormatPromValue(-3.0) == "-3");
  CHECK(FormatPromValue(0.001) == "0.001");
  CHECK(FormatPromValue(1.5) == "1.5");
  CHECK(FormatPromValue(std::nan("")) == "NaN");
  CHECK(FormatPromValue(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(FormatPromValue(-std::numeric_limits<double>::infinity()) == "-Inf");
  // Beyond int64: still exact, in the shortest form.
  CHECK(std::strtod(FormatPromValue(1e300).c_str(), nullptr) == 1e300);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> dist(-1e12, 1e12);
  for (int i = 0; i < 10000; ++i) {
    double v = dist(rng);
    if (i % 2 == 0) v = std::round(v);
    std::string s = FormatPromValue(v);
    INFO(s);
    REQUIRE(std::strtod(s.c_str(), nullptr) == v);
    if (v == std::round(v)) REQUIRE(s.find_first_not_of("-0123456789") == std::string::npos);
  }
}

TEST_CASE("prom writer: headers, escaped labels, histograms", "[kvserver][metrics]") {
  std::string out;
  PromWriter w(&out);
  w.Gauge("a_bytes", "Bytes.", 1234567.0);
  w.Header("b_total", "counter", "Things.");
  w.Sample("b_total", {{"peer", "x\"y\\z\nw"}, {"code", "200"}}, std::uint64_t{3});
  const std::uint64_t counts[] = {1, 0, 2};
  w.Histogram("c_seconds", "Latency.", {0.001, 0.5}, counts, 0.25);
  CHECK(out ==
        "# HELP a_bytes Bytes.\n# TYPE a_bytes gauge\na_bytes 1234567\n"
        "# HELP b_total Things.\n# TYPE b_total counter\n"
        "b_total{peer=\"x\\\"y\\\\z\\nw\",code=\"200\"} 3\n"
        "# HELP c_seconds Latency.\n# TYPE c_seconds histogram\n"
        "c_seconds_bucket{le=\"0.001\"} 1\nc_seconds_bucket{le=\"0.5\"} 1\n"
        "c_seconds_bucket{le=\"+Inf\"} 3\nc_seconds_sum 0.25\nc_seconds_count 3\n");

  // A labelled series: its labels come before "le", and on _sum and _count.
  out.clear();
  w.HistogramSamples("d_seconds", {{"route", "/kv"}}, {0.5}, counts, 1.5);
  CHECK(out ==
        "d_seconds_bucket{route=\"/kv\",le=\"0.5\"} 1\n"
        "d_seconds_bucket{route=\"/kv\",le=\"+Inf\"} 1\n"
        "d_seconds_sum{route=\"/kv\"} 1.5\nd_seconds_count{route=\"/kv\"} 1\n");
}

TEST_CASE("/proc/<pid>/stat: fields counted after the last ')'", "[kvserver][metrics]") {
  // A command name with spaces and parentheses; utime 14, stime 15, starttime 22, rss 24.
  std::string line =
      "4242 (kv (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 123456 "
      "987654321 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
  auto f = ParseProcStat(line);
  REQUIRE(f);
  CHECK(f->utime_ticks == 250);
  CHECK(f->stime_ticks == 75);
  CHECK(f->starttime_ticks == 123456);
  CHECK(f->rss_pages == 2048);
  CHECK_FALSE(ParseProcStat("4242 (kv) S 1 2 3"));
  CHECK_FALSE(ParseProcStat("no parenthesis at all"));
  CHECK(ParseBootTime("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n") == 1700000000u);
  CHECK_FALSE(ParseBootTime("cpu 1 2 3\n"));
}

TEST_CASE("process stats of this test process", "[kvserver][metrics]") {
  auto p = ReadProcessStats();
  REQUIRE(p);
  CHECK(p->resident_bytes > 1000000);  // a running C++ test binary
  CHECK(p->open_fds >= 3);
  CHECK(p->max_fds >= p->open_fds);
  CHECK(p->cpu_seconds >= 0);
  double now = static_cast<double>(std::time(nullptr));
  CHECK(p->start_time_seconds <= now + 1);
  CHECK(p->start_time_seconds > now - 3600);  // started within the hour
}

}  // namespace
}  // namespace kv
