// Hand-written histories for the KV linearizability checker: every "ok" case has a sibling
// that differs in one detail and must be rejected, so no test passes by accepting everything.
#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "lin_checker.h"
#include "lin_test_util.h"

namespace raft::lin {
namespace {

using test::Cas;
using test::Del;
using test::Get;
using test::kAbsent;
using test::Put;
using test::Unknown;

TEST_CASE("empty history is linearizable", "[lin]") {
  CheckResult r = CheckHistory({});
  CHECK(r.ok());
  CHECK(r.keys_checked == 0);
  CHECK(r.explanation.empty());
}

TEST_CASE("sequential history of every operation kind", "[lin]") {
  History h = {
      Get(1, 0, 1, "x", kAbsent),
      Put(1, 2, 3, "x", "a"),
      Get(1, 4, 5, "x", "a"),
      Cas(1, 6, 7, "x", "a", "b", true),
      Get(1, 8, 9, "x", "b"),
      Cas(1, 10, 11, "x", "a", "c", false),
      Cas(1, 12, 13, "x", kAbsent, "c", false),
      Del(1, 14, 15, "x"),
      Get(1, 16, 17, "x", kAbsent),
      Cas(1, 18, 19, "x", kAbsent, "d", true),
      Get(1, 20, 21, "x", "d"),
  };
  CheckResult r = CheckHistory(h);
  INFO(r.ToString());
  CHECK(r.ok());
  CHECK(r.keys_checked == 1);

  SECTION("a wrong read anywhere is caught") {
    h[8] = Get(1, 16, 17, "x", "b");  // after the Delete
    CHECK(CheckHistory(h).verdict == Verdict::kNotLinearizable);
  }
  SECTION("a Cas reporting the wrong outcome is caught") {
    h[5] = Cas(1, 10, 11, "x", "a", "c", true);  // value is "b", cannot swap
    CHECK(CheckHistory(h).verdict == Verdict::kNotLinearizable);
  }
  SECTION("a Cas that fails although it should succeed is caught") {
    h[3] = Cas(1, 6, 7, "x", "a", "b", false);
    CHECK(CheckHistory(h).verdict == Verdict::kNotLinearizable);
  }
}

TEST_CASE("concurrent writes linearizable in exactly one order", "[lin]") {
  // Put a and Put b overlap; later reads see b, so a must come first.
  History h = {Put(1, 0, 10, "x", "a"), Put(2, 0, 10, "x", "b"), Get(3, 11, 12, "x", "b"),
               Get(3, 13, 14, "x", "b")};
  CHECK(CheckHistory(h).ok());
  h[3] = Get(3, 13, 14, "x", "a");  // no write after the first read: the value cannot change
  CHECK(CheckHistory(h).verdict == Verdict::kNotLinearizable);
}

TEST_CASE("concurrent Cas on an absent key: only one can win", "[lin]") {
  History h = {Cas(1, 0, 10, "x", kAbsent, "a", true), Cas(2, 0, 10, "x", kAbsent, "b", false),
               Get(3, 11, 12, "x", "a")};
  CHECK(CheckHistory(h).ok());
  SECTION("both winning is impossible") {
    h[1] = Cas(2, 0, 10, "x", kAbsent, "b", true);
    CHECK(CheckHistory(h).verdict == Verdict::kNotLinearizable);
  }
  SECTION("the read must see the winner") {
    h[2] = Get(3, 11, 12, "x", "b");
    CHECK(CheckHistory(h).verdict == Verdict::kNotLinearizable);
  }
}

TEST_CASE("reads concurrent with a write: no new-old inversion", "[lin]") {
  // c2's read completes before c3's starts; both overlap the Put.
  History ok = {Put(1, 0, 10, "x", "a"), Get(2, 1, 2, "x", kAbsent), Get(3, 3, 4, "x", "a")};
  CHECK(CheckHistory(ok).ok());
  History bad = {Put(1, 0, 10, "x", "a"), Get(2, 1, 2, "x", "a"), Get(3, 3, 4, "x", kAbsent)};
  CHECK(CheckHistory(bad).verdict == Verdict::kNotLinearizable);
}

TEST_CASE("stale read after a completed write", "[lin]") {
  History h = {Put(1, 0, 1, "x", "a"), Put(1, 2, 3, "x", "b"), Get(2, 4, 5, "x", "a")};
  CheckResult r = CheckHistory(h);
  REQUIRE(r.verdict == Verdict::kNotLinearizable);
  CHECK(r.key == "x");
  CHECK(r.longest_prefix == std::vector<std::size_t>{0, 1});
  INFO(r.explanation);
  CHECK(r.explanation.find("at most 2 of 3") != std::string::npos);
  CHECK(r.explanation.find("then the value is \"b\"") != std::string::npos);
  CHECK(r.explanation.find("would read \"b\"") != std::string::npos);
  CHECK(r.ToString().find("NotLinearizable on key \"x\"") == 0);
}

TEST_CASE("two readers observe concurrent writes in opposite orders", "[lin]") {
  History h = {
      Put(1, 0, 20, "x", "a"), Put(2, 0, 20, "x", "b"),  // overlap each other and every read
      Get(3, 1, 2, "x", "a"),  Get(3, 3, 4, "x", "b"),   // c3 sees a, then b
      Get(4, 1, 2, "x", "b"),  Get(4, 3, 4, "x", "a"),   // c4 sees b, then a
  };
  CHECK(CheckHistory(h).verdict == Verdict::kNotLinearizable);
  h[5] = Get(4, 3, 4, "x", "b");  // both agree: a then b
  CHECK(CheckHistory(h).ok());
}

TEST_CASE("Cas succeeding against a value never written", "[lin]") {
  History h = {Put(1, 0, 1, "x", "a"), Cas(2, 2, 3, "x", "z", "b", true)};
  CHECK(CheckHistory(h).verdict == Verdict::kNotLinearizable);
  h.push_back(Put(3, 0, 5, "x", "z"));  // now a concurrent writer of "z" exists
  CHECK(CheckHistory(h).ok());
}

TEST_CASE("read of a value never written", "[lin]") {
  History h = {Put(1, 0, 1, "x", "a"), Get(2, 2, 3, "x", "ghost")};
  CheckResult r = CheckHistory(h);
  REQUIRE(r.verdict == Verdict::kNotLinearizable);
  CHECK(r.explanation.find("Get(\"x\") = \"ghost\"  -- would read \"a\"") != std::string::npos);
  History on_empty = {Get(1, 0, 1, "x", "ghost")};
  CHECK(CheckHistory(on_empty).verdict == Verdict::kNotLinearizable);
}

TEST_CASE("unknown outcomes may take effect late or never", "[lin][unknown]") {
  History base = {Put(1, 0, 1, "x", "a"), Get(2, 5, 6, "x", "b")};
  CHECK(CheckHistory(base).verdict == Verdict::kNotLinearizable);

  SECTION("an unknown Put invoked before the read makes it legal") {
    base.push_back(Unknown(3, 2, Input::Put("x", "b")));
    CHECK(CheckHistory(base).ok());
  }
  SECTION("an unknown Put invoked after the read does not") {
    base.push_back(Unknown(3, 7, Input::Put("x", "b")));
    CHECK(CheckHistory(base).verdict == Verdict::kNotLinearizable);
  }
  SECTION("an unknown Cas can take effect, if its expectation holds") {
    base.push_back(Unknown(3, 2, Input::Cas("x", "a", "b")));
    CHECK(CheckHistory(base).ok());
    base.back() = Unknown(3, 2, Input::Cas("x", "q", "b"));
    CHECK(CheckHistory(base).verdict == Verdict::kNotLinearizable);
  }
  SECTION("an unknown Put may take effect between two later reads") {
    base = {Put(1, 0, 1, "x", "a"), Unknown(3, 2, Input::Put("x", "b")), Get(2, 5, 6, "x", "a"),
            Get(2, 7, 8, "x", "b")};
    CHECK(CheckHistory(base).ok());
    std::swap(base[2].output, base[3].output);  // b then a: the Put cannot be undone
    CHECK(CheckHistory(base).verdict == Verdict::kNotLinearizable);
  }
  SECTION("an unknown Put may never take effect") {
    base = {Put(1, 0, 1, "x", "a"), Unknown(3, 2, Input::Put("x", "b")), Get(2, 5, 6, "x", "a")};
    CHECK(CheckHistory(base).ok());
  }
  SECTION("an unknown Delete can explain a read of absent") {
    base = {Put(1, 0, 1, "x", "a"), Unknown(3, 2, Input::Delete("x")), Get(2, 5, 6, "x", kAbsent)};
    CHECK(CheckHistory(base).ok());
    base[1].invoke_tick = 7;
    CHECK(CheckHistory(base).verdict == Verdict::kNotLinearizable);
  }
  SECTION("a chain of unknown ops: Put b, then Cas b -> c, explains a read of c") {
    base = {Put(1, 0, 1, "x", "a"), Unknown(3, 2, Input::Put("x", "b")),
            Unknown(4, 3, Input::Cas("x", "b", "c")), Get(2, 5, 6, "x", "c")};
    CHECK(CheckHistory(base).ok());
    base[2].input.expected = std::string("a");  // Cas a -> c also works: it can run before the Put
    CHECK(CheckHistory(base).ok());
    base[2].input.expected = std::string("z");  // nothing ever holds "z"
    CHECK(CheckHistory(base).verdict == Verdict::kNotLinearizable);
  }
  SECTION("an unknown write can clobber the value a failed Cas expected") {
    base = {Put(1, 0, 1, "x", "a"), Unknown(3, 2, Input::Put("x", "b")),
            Cas(2, 5, 6, "x", "a", "c", false), Get(2, 7, 8, "x", "b")};
    CHECK(CheckHistory(base).ok());
    base.erase(base.begin() + 1);
    base.pop_back();
    CHECK(CheckHistory(base).verdict == Verdict::kNotLinearizable);
  }
  SECTION("unknown Gets constrain nothing") {
    base.push_back(Unknown(3, 0, Input::Get("x")));
    CHECK(CheckHistory(base).verdict == Verdict::kNotLinearizable);
    CHECK(CheckHistory({Unknown(3, 0, Input::Get("x"))}).keys_checked == 0);
  }
}

TEST_CASE("equal stamps count as concurrent, strictly earlier as preceding", "[lin]") {
  History h = {Put(1, 0, 5, "x", "a"), Get(2, 5, 6, "x", kAbsent)};
  CHECK(CheckHistory(h).ok());
  h[1] = Get(2, 6, 7, "x", kAbsent);
  CHECK(CheckHistory(h).verdict == Verdict::kNotLinearizable);
}

TEST_CASE("keys are checked independently and the failing key is named", "[lin]") {
  History h = {Put(1, 0, 1, "x", "a"), Put(1, 0, 1, "y", "a"), Put(2, 2, 3, "y", "b"),
               Get(2, 4, 5, "x", "a"), Get(3, 6, 7, "y", "a"), Get(3, 8, 9, "z", kAbsent)};
  CheckResult r = CheckHistory(h);
  REQUIRE(r.verdict == Verdict::kNotLinearizable);
  CHECK(r.key == "y");
  CHECK(r.longest_prefix == std::vector<std::size_t>{1, 2});  // indices into h
  h[4] = Get(3, 6, 7, "y", "b");
  r = CheckHistory(h);
  CHECK(r.ok());
  CHECK(r.keys_checked == 3);
}

TEST_CASE("same value written twice on different keys does not alias", "[lin]") {
  History h = {Put(1, 0, 1, "x", "v"), Get(2, 2, 3, "y", "v")};
  CHECK(CheckHistory(h).verdict == Verdict::kNotLinearizable);
}

TEST_CASE("a completion before the invocation is an invalid history", "[lin]") {
  History h = {Put(1, 0, 1, "x", "a"), Get(2, 5, 4, "x", "a")};
  CheckResult r = CheckHistory(h);
  CHECK(r.verdict == Verdict::kInvalidHistory);
  CHECK(r.explanation.find("operation 1") != std::string::npos);
}

TEST_CASE("HistoryRecorder: pending becomes unknown, discarded disappears", "[lin][recorder]") {
  HistoryRecorder rec;
  auto put_a = rec.Invoke(1, 0, Input::Put("x", "a"));
  auto put_b = rec.Invoke(2, 1, Input::Put("x", "b"));  // reply lost: unknown
  auto put_c = rec.Invoke(3, 1, Input::Put("x", "c"));  // rejected: never proposed
  rec.Complete(put_a, 2, Output::Ack());
  rec.Discard(put_c);
  auto get = rec.Invoke(1, 3, Input::Get("x"));
  rec.Complete(get, 4, Output::Value("b"));
  CHECK(rec.pending_count() == 1);
  History h = rec.history();
  REQUIRE(h.size() == 3);
  CHECK_FALSE(h[1].known());
  CHECK(h[1].input == Input::Put("x", "b"));
  CHECK(DescribeOperation(h[1]) == "c2 [1,?] Put(\"x\", \"b\") = ?");
  CHECK(DescribeOperation(h[2]) == "c1 [3,4] Get(\"x\") = \"b\"");
  CHECK(CheckHistory(h).ok());
  (void)put_b;

  HistoryRecorder rec2;  // same run, but the read saw the discarded write: a bug
  rec2.Discard(rec2.Invoke(3, 1, Input::Put("x", "c")));
  rec2.Complete(rec2.Invoke(1, 3, Input::Get("x")), 4, Output::Value("c"));
  CHECK(CheckHistory(rec2.history()).verdict == Verdict::kNotLinearizable);
}

}  // namespace
}  // namespace raft::lin
