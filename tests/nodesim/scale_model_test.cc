// The scaling model's machine accounting (scale_model.h, sim_world.h's machine model),
// with fixed costs per item so that every run replays exactly.
#include "scale_model.h"

#include <catch2/catch.hpp>

namespace raft::nodesim {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

ScaleModelOptions Fixed(int machines) {
  ScaleModelOptions o;
  o.machines = machines;
  o.measure_cpu = false;
  o.fixed_item = microseconds(10);
  o.clients_per_machine = 128;
  o.warmup = milliseconds(300);
  o.window = milliseconds(500);
  return o;
}

TEST_CASE("scale model: each machine's CPU and disk bound its own work", "[scale]") {
  ScaleModelOptions o = Fixed(1);
  o.ranges_per_machine = 1;
  const ScaleModelResult r = RunScaleModel(o);
  INFO(r.error);
  REQUIRE(r.error.empty());
  CHECK(r.failed == 0);
  REQUIRE(r.writes > 0);
  // One range on one machine: its disk lane makes at most one fdatasync per latency.
  CHECK(r.fsyncs_per_machine_second <= 1e6 / static_cast<double>(o.sync_latency.count()) + 1);
  CHECK(r.cpu_utilization > 0.5);  // 128 clients keep it busy
  CHECK(r.max_cpu_utilization <= 1.0);
  // The front end's cost alone bounds it: 2 cores / http_us.
  CHECK(r.writes_per_second <= 2e6 / static_cast<double>(o.http_us.count()));
}

TEST_CASE("scale model: machines run in parallel, so twice the machines do about twice the writes",
          "[scale]") {
  const ScaleModelResult three = RunScaleModel(Fixed(3));
  const ScaleModelResult six = RunScaleModel(Fixed(6));
  INFO(three.error << six.error);
  REQUIRE(three.error.empty());
  REQUIRE(six.error.empty());
  CHECK(three.ranges == 12);
  CHECK(six.ranges == 24);
  CHECK(three.max_cpu_utilization <= 1.0);
  CHECK(six.max_cpu_utilization <= 1.0);
  // Every range has its leader at home and 2/3 (then 5/6) of the writes are forwarded.
  CHECK(three.forwarded == Approx(2.0 / 3).margin(0.05));
  CHECK(six.forwarded == Approx(5.0 / 6).margin(0.05));
  CHECK(six.writes_per_second >= 1.6 * three.writes_per_second);
  CHECK(six.writes_per_second <= 2.1 * three.writes_per_second);
}

TEST_CASE("scale model: a fixed-cost run replays exactly", "[scale]") {
  const ScaleModelResult a = RunScaleModel(Fixed(3));
  const ScaleModelResult b = RunScaleModel(Fixed(3));
  CHECK(a.writes == b.writes);
  CHECK(a.frames_per_write == b.frames_per_write);
}

}  // namespace
}  // namespace raft::nodesim
