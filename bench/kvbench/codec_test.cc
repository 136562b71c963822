// Tests for the pure parts of kvbench: the histogram against exact percentiles, the HTTP
// response parser fed byte by byte, request writing and base64, /proc/PID/stat parsing.
// Exit status 0 = pass.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "histogram.h"
#include "http_codec.h"
#include "proc_cpu.h"
#include "workload.h"

namespace {

int failures = 0;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                                   \
    }                                                                               \
  } while (0)

void TestHistogramBuckets() {
  using kvbench::Histogram;
  // Every value maps into the bucket whose bounds contain it; buckets tile the range.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const uint64_t v = rng() >> (rng() % 64);
    const int idx = Histogram::IndexOf(v);
    CHECK(idx >= 0 && idx < Histogram::kBucketCount);
    CHECK(Histogram::LowestValueOf(idx) <= v && v <= Histogram::HighestValueOf(idx));
  }
  for (int idx = 0; idx + 1 < Histogram::kBucketCount; ++idx) {
    CHECK(Histogram::HighestValueOf(idx) + 1 == Histogram::LowestValueOf(idx + 1));
  }
  CHECK(Histogram::IndexOf(UINT64_MAX) == Histogram::kBucketCount - 1);
}

void TestHistogramPercentiles() {
  // Log-normal latencies in ns; each percentile within 1% of the exact sample.
  std::mt19937_64 rng(11);
  std::lognormal_distribution<double> dist(14.0, 1.0);  // median ~1.2 ms
  kvbench::Histogram h;
  std::vector<uint64_t> samples;
  for (int i = 0; i < 100000; ++i) {
    const auto v = static_cast<uint64_t>(dist(rng));
    samples.push_back(v);
    h.Record(v);
  }
  std::sort(samples.begin(), samples.end());
  for (double p : {50.0, 90.0, 99.0, 99.9, 100.0}) {
    auto rank = static_cast<size_t>(p / 100.0 * static_cast<double>(samples.size()) + 0.999999);
    const uint64_t exact = samples[std::max<size_t>(rank, 1) - 1];
    const uint64_t got = h.ValueAtPercentile(p);
    CHECK(got >= exact && static_cast<double>(got) <= static_cast<double>(exact) * 1.01);
  }
  CHECK(h.max() == samples.back());
  CHECK(h.min() == samples.front());
  kvbench::Histogram empty;
  CHECK(empty.ValueAtPercentile(50) == 0);
}

void TestParseFedByteByByte(const std::string& response, int status, bool keep_alive,
                            const std::string& body) {
  for (size_t n = 0; n < response.size(); ++n) {
    auto r = kvbench::ParseResponse(std::string_view(response).substr(0, n));
    CHECK(r.state == kvbench::ParseState::kIncomplete);
  }
  // Followed by the next response's start. The buffer outlives r: r.body points into it.
  const std::string buffer = response + "HTTP/1.1 200 OK\r\n";
  auto r = kvbench::ParseResponse(buffer);
  CHECK(r.state == kvbench::ParseState::kComplete);
  CHECK(r.status == status);
  CHECK(r.keep_alive == keep_alive);
  CHECK(r.consumed_bytes == response.size());
  if (!body.empty()) CHECK(r.body == body);
}

void TestParser() {
  TestParseFedByteByByte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, true, "hello");
  TestParseFedByteByByte(
      "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\nConnection: close\r\n\r\n{}", 503,
      false, "{}");
  TestParseFedByteByByte(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\n"
      "\r\n",
      200, true, "");
  TestParseFedByteByByte("HTTP/1.1 204 No Content\r\n\r\n", 204, true, "");
  TestParseFedByteByByte("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, false, "");
  using kvbench::ParseState;
  CHECK(kvbench::ParseResponse("HTTP/1.1 200 OK\r\n\r\nbody").state == ParseState::kError);
  CHECK(kvbench::ParseResponse("HTTX/1.1 200 OK\r\n\r\n").state == ParseState::kError);
  CHECK(kvbench::ParseResponse("HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n").state ==
        ParseState::kError);
  CHECK(kvbench::ParseResponse("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n").state ==
        ParseState::kError);
  CHECK(
      kvbench::ParseResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").state ==
      ParseState::kError);
}

void TestRequests() {
  std::string out, scratch;
  kvbench::AppendOp(out, scratch, kvbench::Target::kKvserver, kvbench::OpKind::kWrite, "h:1",
                    "k00000001", "vv");
  CHECK(out ==
        "PUT /kv/k00000001 HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/octet-stream\r\n"
        "Content-Length: 2\r\n\r\nvv");
  out.clear();
  kvbench::AppendOp(out, scratch, kvbench::Target::kKvserver, kvbench::OpKind::kRead, "h:1",
                    "k00000001", "");
  CHECK(out == "GET /kv/k00000001 HTTP/1.1\r\nHost: h:1\r\n\r\n");
  out.clear();
  kvbench::AppendOp(out, scratch, kvbench::Target::kEtcd, kvbench::OpKind::kWrite, "h:2", "foo",
                    "ba");
  CHECK(out ==
        "POST /v3/kv/put HTTP/1.1\r\nHost: h:2\r\nContent-Type: application/json\r\n"
        "Content-Length: 29\r\n\r\n{\"key\":\"Zm9v\",\"value\":\"YmE=\"}");
  out.clear();
  kvbench::AppendOp(out, scratch, kvbench::Target::kEtcd, kvbench::OpKind::kRead, "h:2", "f", "");
  CHECK(out.find("POST /v3/kv/range ") == 0);
  CHECK(out.size() > 14 && out.substr(out.size() - 14) == "{\"key\":\"Zg==\"}");
  std::string k;
  kvbench::KeyName(42, k);
  CHECK(k == "k00000042");
  kvbench::KeyName(42, k, /*spread=*/true);
  CHECK(k == "Kk00000042");  // 0x21 + 42
  kvbench::KeyName(12, k, /*spread=*/true);
  CHECK(k == "-k00000012");
  out.clear();
  kvbench::AppendOp(out, scratch, kvbench::Target::kKvserver, kvbench::OpKind::kRead, "h:2", k, "");
  CHECK(out.find("GET /kv/%2Dk00000012 HTTP/1.1\r\n") == 0);
  std::string b;
  kvbench::AppendBase64(b, "");
  kvbench::AppendBase64(b, "foobar");
  CHECK(b == "Zm9vYmFy");
}

void TestProcCpu() {
  // Fields after the command: state(3) ... utime(14) stime(15) cutime(16) ...
  CHECK(kvbench::CpuTicksFromStat("42 (kv server) S 1 2 3 4 5 6 7 8 9 10 250 31 7 7 20") == 281);
  CHECK(kvbench::CpuTicksFromStat("42 (a) b) S 1 2 3 4 5 6 7 8 9 10 5 6 0") == 11);
  CHECK(kvbench::CpuTicksFromStat("42 (x) S 1 2 3") == -1);
  CHECK(kvbench::CpuTicksFromStat("no parenthesis") == -1);
  std::vector<int> pids;
  const std::vector<int> expected = {12, 34, 5};
  CHECK(kvbench::ParsePidList("12,34,5", pids) && pids == expected);
  CHECK(!kvbench::ParsePidList("12,,5", pids));
  CHECK(!kvbench::ParsePidList("12,x", pids));
  CHECK(!kvbench::ParsePidList("", pids));
  CHECK(kvbench::CpuSeconds({static_cast<int>(getpid())}) >= 0);
}

}  // namespace

int main() {
  TestHistogramBuckets();
  TestHistogramPercentiles();
  TestParser();
  TestRequests();
  TestProcCpu();
  if (failures != 0) {
    std::fprintf(stderr, "kvbench_codec_test: %d failures\n", failures);
    return 1;
  }
  std::puts("kvbench_codec_test: ok");
  return 0;
}
