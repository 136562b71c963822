// Linked snapshots (docs/runtime.md, "Linked snapshots"): a state machine's files become
// the snapshot without a copy, read back as the bytes of the equivalent .snap file, and
// live as long as a reader or view pins them.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <random>

#include "base/file_system.h"
#include "raft/coding.h"
#include "runtime/snapshot_store.h"

namespace raft::runtime {
namespace {

namespace fsys = std::filesystem;

struct TempDir {
  explicit TempDir(const std::string& name)
      : path(fsys::temp_directory_path() / (name + "-" + std::to_string(::getpid()))) {
    fsys::remove_all(path);
    fsys::create_directories(path);
  }
  ~TempDir() { fsys::remove_all(path); }
  fsys::path path;
};

std::string RandomBytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

void WriteFile(const fsys::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string ReadAll(SnapshotView* v) {
  std::string out;
  while (out.size() < v->size()) {
    auto chunk = v->ReadAt(out.size(), 100000);  // crosses piece boundaries
    REQUIRE(chunk.ok());
    REQUIRE(!chunk->empty());
    out += *chunk;
  }
  return out;
}

ino_t Inode(const fsys::path& p) {
  struct stat st;
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_ino;
}

// A source directory of two files and the pieces around them; `body` gets the bytes.
SnapshotFiles MakeSource(const fsys::path& dir, std::string* body) {
  fsys::create_directories(dir);
  const std::string a = RandomBytes(1500000, 1), b = RandomBytes(777, 2);
  WriteFile(dir / "000001.sst", a);
  WriteFile(dir / "MANIFEST-000002", b);
  SnapshotFiles f;
  f.dir = dir.string();
  f.pieces = {
      {"head", ""}, {"", "000001.sst"}, {"between", ""}, {"", "MANIFEST-000002"}, {"end", ""}};
  *body = "head" + a + "between" + b + "end";
  return f;
}

SnapshotHeader Header(Index index, Term term) {
  SnapshotHeader h;
  h.meta = SnapshotMeta{index, term, ConfState{{1, 2, 3}, {}}};
  h.members = {MemberInfo{1, "n1", "127.0.0.1:1", "http"}};
  return h;
}

// Returns EXDEV for renames out of `from`, as across file systems.
class CrossDeviceFileSystem final : public base::ForwardingFileSystem {
 public:
  explicit CrossDeviceFileSystem(std::string from) : from_(std::move(from)) {}
  int Rename(const std::string& from, const std::string& to) override {
    return from == from_ ? EXDEV : ForwardingFileSystem::Rename(from, to);
  }

 private:
  std::string from_;
};

}  // namespace

TEST_CASE("a linked snapshot reads as its .snap file, shares the files, lives while pinned",
          "[runtime][snapshot][linked]") {
  TempDir tmp("raft-linked");
  auto store = SnapshotStore::Open((tmp.path / "snap").string());
  REQUIRE(store.ok());
  std::string body;
  SnapshotFiles files = MakeSource(tmp.path / "ckpt", &body);
  const ino_t sst = Inode(tmp.path / "ckpt" / "000001.sst");
  REQUIRE((*store)->CreateLinked(Header(42, 7), files).ok());

  // The files moved into the store: the same inode, no copy.
  const fsys::path linked = (*store)->LinkedPathOf(42, 7);
  CHECK_FALSE(fsys::exists(tmp.path / "ckpt"));
  CHECK(Inode(linked / "000001.sst") == sst);
  CHECK(fsys::exists(linked / "manifest"));
  CHECK((*store)->Exists(42, 7));
  CHECK_FALSE(fsys::exists((*store)->PathOf(42, 7)));

  // The same bytes as an ordinary .snap file of that body.
  const std::string plain = (tmp.path / "plain.snap").string();
  {
    auto w = SnapshotStore::CreateAt(plain, Header(42, 7));
    REQUIRE(w.ok());
    REQUIRE((*w)->Write(body).ok());
    REQUIRE((*w)->Commit().ok());
  }
  std::ifstream in(plain, std::ios::binary);
  const std::string expected((std::istreambuf_iterator<char>(in)), {});
  auto view = (*store)->OpenView(42, 7);
  REQUIRE(view.ok());
  REQUIRE((*view)->size() == expected.size());
  CHECK(ReadAll(view->get()) == expected);
  auto tail = (*view)->ReadAt(expected.size() - 5, 100);  // short only at the end
  REQUIRE(tail.ok());
  CHECK(*tail == expected.substr(expected.size() - 5));

  // A receiver validates it as any snapshot file.
  auto recv = (*store)->Receive(42, 7);
  REQUIRE(recv.ok());
  REQUIRE((*recv)->Write(0, expected).ok());
  REQUIRE((*recv)->Finish().ok());
  REQUIRE(SnapshotStore::Validate((*store)->PathOf(42, 7)).ok());
  fsys::remove((*store)->PathOf(42, 7));

  // A reader sees the body, checked against the CRC at its end.
  {
    auto r = (*store)->OpenReader(42, 7);
    REQUIRE(r.ok());
    CHECK((*r)->header().meta == Header(42, 7).meta);
    CHECK((*r)->header().members == Header(42, 7).members);
    std::string got(body.size() + 10, '\0');
    std::size_t n = 0;
    for (;;) {
      auto k = (*r)->Read(got.data() + n, std::min<std::size_t>(4096, got.size() - n));
      REQUIRE(k.ok());
      if (*k == 0) break;
      n += *k;
    }
    got.resize(n);
    CHECK(got == body);
  }

  // Cleanup past it while the view is open: the files stay until the view closes.
  (*store)->Cleanup(50, 7);
  CHECK(fsys::exists(linked / "000001.sst"));
  CHECK_FALSE((*store)->OpenView(42, 7).ok());  // doomed: no new reader
  CHECK(ReadAll(view->get()) == expected);
  view->reset();
  CHECK_FALSE(fsys::exists(linked));

  // Unpinned, cleanup removes it at once; the log's own snapshot is kept.
  REQUIRE((*store)->CreateLinked(Header(60, 8), MakeSource(tmp.path / "ckpt2", &body)).ok());
  (*store)->Cleanup(60, 8);
  CHECK((*store)->Exists(60, 8));
  (*store)->Cleanup(70, 8);
  CHECK_FALSE(fsys::exists((*store)->LinkedPathOf(60, 8)));
}

TEST_CASE("a linked snapshot refuses damage and bad pieces, and leaves nothing behind",
          "[runtime][snapshot][linked]") {
  TempDir tmp("raft-linked-bad");
  auto store = SnapshotStore::Open((tmp.path / "snap").string());
  REQUIRE(store.ok());
  std::string body;

  SECTION("a damaged manifest") {
    REQUIRE((*store)->CreateLinked(Header(5, 1), MakeSource(tmp.path / "c", &body)).ok());
    const fsys::path m = fsys::path((*store)->LinkedPathOf(5, 1)) / "manifest";
    std::fstream f(m, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x7f');
    f.close();
    auto v = (*store)->OpenView(5, 1);
    REQUIRE_FALSE(v.ok());
    CHECK(v.status().code() == ErrorCode::kCorruption);
    CHECK_FALSE((*store)->OpenReader(5, 1).ok());
  }
  SECTION("a file of another size than the manifest says") {
    REQUIRE((*store)->CreateLinked(Header(5, 1), MakeSource(tmp.path / "c", &body)).ok());
    fsys::resize_file(fsys::path((*store)->LinkedPathOf(5, 1)) / "000001.sst", 1000);
    auto v = (*store)->OpenView(5, 1);
    REQUIRE(v.ok());
    auto bytes = (*v)->ReadAt(0, 1 << 20);
    REQUIRE_FALSE(bytes.ok());
    CHECK(bytes.status().code() == ErrorCode::kCorruption);
  }
  SECTION("a piece naming a missing file or a bad name: refused, the directory removed") {
    SnapshotFiles f = MakeSource(tmp.path / "c", &body);
    f.pieces.push_back({"", GENERATE(std::string("missing"), std::string("../x"),
                                     std::string("manifest"), std::string("000001.sst"))});
    CHECK_FALSE((*store)->CreateLinked(Header(5, 1), f).ok());
    CHECK_FALSE((*store)->Exists(5, 1));
    CHECK_FALSE(fsys::exists(tmp.path / "c"));
    CHECK(fsys::is_empty(tmp.path / "snap"));
  }
  SECTION("a leftover .snapd.tmp directory is removed on open") {
    const fsys::path left = (*store)->LinkedPathOf(9, 1) + ".tmp";
    fsys::create_directories(left);
    WriteFile(left / "000001.sst", "partial");
    auto again = SnapshotStore::Open((tmp.path / "snap").string());
    REQUIRE(again.ok());
    CHECK_FALSE(fsys::exists(left));
  }
}

TEST_CASE("a linked snapshot on another file system is copied into a .snap file",
          "[runtime][snapshot][linked]") {
  TempDir tmp("raft-linked-xdev");
  const std::string src = (tmp.path / "ckpt").string();
  CrossDeviceFileSystem xdev(src);
  auto store = SnapshotStore::Open((tmp.path / "snap").string(), &xdev);
  REQUIRE(store.ok());
  std::string body;
  REQUIRE((*store)->CreateLinked(Header(42, 7), MakeSource(src, &body)).ok());
  CHECK_FALSE(fsys::exists(src));
  CHECK_FALSE(fsys::exists((*store)->LinkedPathOf(42, 7)));
  auto h = SnapshotStore::Validate((*store)->PathOf(42, 7));
  REQUIRE(h.ok());
  CHECK(h->meta == Header(42, 7).meta);
  auto r = (*store)->OpenReader(42, 7);
  REQUIRE(r.ok());
  std::string got(body.size(), '\0');
  std::size_t n = 0;
  while (n < got.size()) {
    auto k = (*r)->Read(got.data() + n, got.size() - n);
    REQUIRE(k.ok());
    REQUIRE(*k > 0);
    n += *k;
  }
  CHECK(got == body);
}

}  // namespace raft::runtime

namespace raft::runtime {

TEST_CASE("a linked copy replaces the received file of the same snapshot at cleanup",
          "[runtime][snapshot][linked]") {
  TempDir tmp("raft-linked-replace");
  auto store = SnapshotStore::Open((tmp.path / "snap").string());
  REQUIRE(store.ok());
  {
    auto w = (*store)->Create(Header(42, 7));
    REQUIRE(w.ok());
    REQUIRE((*w)->Write("received").ok());
    REQUIRE((*w)->Commit().ok());
  }
  (*store)->Cleanup(42, 7);
  CHECK(fsys::exists((*store)->PathOf(42, 7)));  // the log's: kept while it is the only copy
  std::string body;
  REQUIRE((*store)->CreateLinked(Header(42, 7), MakeSource(tmp.path / "ckpt", &body)).ok());
  (*store)->Cleanup(42, 7);
  CHECK_FALSE(fsys::exists((*store)->PathOf(42, 7)));
  CHECK(fsys::exists((*store)->LinkedPathOf(42, 7)));
  CHECK((*store)->Exists(42, 7));
}

}  // namespace raft::runtime

namespace raft::runtime {
namespace {

// Counts the bytes read through it.
class ReadCountingFileSystem final : public base::ForwardingFileSystem {
 public:
  std::uint64_t bytes_read = 0;
  int Pread(int fd, void* data, std::size_t n, std::uint64_t off, std::size_t* read) override {
    int err = ForwardingFileSystem::Pread(fd, data, n, off, read);
    bytes_read += *read;
    return err;
  }
};

}  // namespace

TEST_CASE("a linked snapshot reads only the files the previous one does not hold",
          "[runtime][snapshot][linked]") {
  TempDir tmp("raft-linked-crc");
  ReadCountingFileSystem fs;
  auto store = SnapshotStore::Open((tmp.path / "snap").string(), &fs);
  REQUIRE(store.ok());
  std::string body;
  REQUIRE((*store)->CreateLinked(Header(10, 1), MakeSource(tmp.path / "c1", &body)).ok());
  const fsys::path first = (*store)->LinkedPathOf(10, 1);
  // The next checkpoint: the big file shared (a hard link, as RocksDB's), a new small one.
  const fsys::path c2 = tmp.path / "c2";
  fsys::create_directories(c2);
  fsys::create_hard_link(first / "000001.sst", c2 / "000001.sst");
  WriteFile(c2 / "MANIFEST-000009", "new manifest");
  SnapshotFiles f;
  f.dir = c2.string();
  f.pieces = {{"h", ""}, {"", "000001.sst"}, {"", "MANIFEST-000009"}, {"e", ""}};
  fs.bytes_read = 0;
  REQUIRE((*store)->CreateLinked(Header(20, 1), f).ok());
  CHECK(fs.bytes_read < 1000);  // not the 1.5 MB file again
  // The combined CRC is right: a reader checks it at the end.
  std::ifstream in(first / "000001.sst", std::ios::binary);
  const std::string big((std::istreambuf_iterator<char>(in)), {});
  auto r = (*store)->OpenReader(20, 1);
  REQUIRE(r.ok());
  std::string got(big.size() + 100, '\0');
  std::size_t n = 0;
  for (;;) {
    auto k = (*r)->Read(got.data() + n, got.size() - n);
    REQUIRE(k.ok());
    if (*k == 0) break;
    n += *k;
  }
  got.resize(n);
  CHECK(got == "h" + big + "new manifest" + "e");
  // Once the snapshot the CRCs came from is removed, nothing is taken from them.
  (*store)->Cleanup(20, 1);
  const fsys::path c3 = tmp.path / "c3";
  fsys::create_directories(c3);
  fsys::create_hard_link(fsys::path((*store)->LinkedPathOf(20, 1)) / "000001.sst",
                         c3 / "000001.sst");
  (*store)->Cleanup(30, 1);  // removes 20: the cache goes with it
  f.dir = c3.string();
  f.pieces = {{"", "000001.sst"}};
  fs.bytes_read = 0;
  REQUIRE((*store)->CreateLinked(Header(30, 1), f).ok());
  CHECK(fs.bytes_read >= big.size());
}

}  // namespace raft::runtime

// ---- The layout form: a linked snapshot streamed and received as one ----

namespace raft::runtime {
namespace {

std::string ReadBody(SnapshotFileReader* r) {
  std::string got;
  std::string buf(4096, '\0');
  for (;;) {
    auto k = r->Read(buf.data(), buf.size());
    REQUIRE(k.ok());
    if (*k == 0) return got;
    got.append(buf.data(), *k);
  }
}

// A sender's store holding a linked snapshot (42, 7) with an empty file among its pieces.
struct LayoutFixture {
  TempDir tmp{"raft-layout"};
  std::unique_ptr<SnapshotStore> from, to;
  std::string body, stream;
  LayoutFixture() {
    auto a = SnapshotStore::Open((tmp.path / "from").string());
    auto b = SnapshotStore::Open((tmp.path / "to").string());
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    from = std::move(a).value();
    to = std::move(b).value();
    SnapshotFiles f = MakeSource(tmp.path / "ckpt", &body);
    WriteFile(tmp.path / "ckpt" / "EMPTY", "");
    f.pieces.push_back({"", "EMPTY"});
    REQUIRE(from->CreateLinked(Header(42, 7), f).ok());
    auto v = from->OpenView(42, 7, /*layout=*/true);
    REQUIRE(v.ok());
    REQUIRE((*v)->layout());
    stream = ReadAll(v->get());
  }
  // Feeds `bytes` in chunks of the given sizes (cycled); the first error.
  Status Feed(SnapshotReceiver* r, const std::string& bytes, std::vector<std::size_t> sizes) {
    std::size_t off = 0, i = 0;
    while (off < bytes.size()) {
      const std::size_t n = std::min(sizes[i++ % sizes.size()], bytes.size() - off);
      if (Status s = r->Write(off, std::string_view(bytes).substr(off, n)); !s.ok()) return s;
      off += n;
    }
    return Status::Ok();
  }
  std::vector<std::string> Names() const {
    std::vector<std::string> out;
    for (const auto& e : fsys::directory_iterator(tmp.path / "to"))
      out.push_back(e.path().filename().string());
    return out;
  }
};

}  // namespace

TEST_CASE("a linked snapshot crosses in layout form and is received as a linked snapshot",
          "[runtime][snapshot][linked][layout]") {
  LayoutFixture fx;
  auto sizes = GENERATE(std::vector<std::size_t>{1 << 20}, std::vector<std::size_t>{1, 3, 7},
                        std::vector<std::size_t>{4093, 1, 65536});
  auto r = fx.to->Receive(42, 7, 0, /*layout=*/true);
  REQUIRE(r.ok());
  CHECK((*r)->layout());
  REQUIRE(fx.Feed(r->get(), fx.stream, sizes).ok());
  REQUIRE((*r)->Finish().ok());
  r->reset();
  CHECK(fx.Names() == std::vector<std::string>{fsys::path(fx.to->LinkedPathOf(42, 7)).filename()});

  // The same snapshot as the sender's: its files as files, the same bytes either way.
  const fsys::path got = fx.to->LinkedPathOf(42, 7);
  CHECK(fsys::file_size(got / "000001.sst") == 1500000);
  CHECK(fsys::file_size(got / "EMPTY") == 0);
  auto a = fx.from->OpenView(42, 7);
  auto b = fx.to->OpenView(42, 7);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK_FALSE((*b)->layout());
  CHECK(ReadAll(b->get()) == ReadAll(a->get()));
  auto reader = fx.to->OpenReader(42, 7);
  REQUIRE(reader.ok());
  CHECK((*reader)->header().members == Header(42, 7).members);
  auto files = (*reader)->Files();
  REQUIRE(files.has_value());
  CHECK(files->dir == got.string());
  REQUIRE(files->pieces.size() == 6);
  CHECK(files->pieces[0].bytes == "head");
  CHECK(files->pieces[1].file == "000001.sst");
  CHECK(files->pieces[5].file == "EMPTY");
  CHECK(ReadBody(reader->get()) == fx.body);

  // Streamed on in layout form, it is the sender's stream byte for byte.
  auto again = fx.to->OpenView(42, 7, /*layout=*/true);
  REQUIRE(again.ok());
  CHECK(ReadAll(again->get()) == fx.stream);
  // A second stream of a snapshot it already holds ends well and leaves nothing more.
  auto dup = fx.to->Receive(42, 7, 0, /*layout=*/true);
  REQUIRE(dup.ok());
  REQUIRE(fx.Feed(dup->get(), fx.stream, {1 << 20}).ok());
  CHECK((*dup)->Finish().ok());
  dup->reset();
  CHECK(fx.Names().size() == 1);
}

TEST_CASE("a stream in layout form that breaks its grammar is refused and leaves nothing",
          "[runtime][snapshot][linked][layout]") {
  LayoutFixture fx;
  const std::size_t layout_len = 8 + DecodeFixed32(fx.stream.data() + 4) + 4;
  std::string bad = fx.stream;
  bool fails_at_write = true;
  std::string expect;
  Index index = 42;
  SECTION("damaged layout") {
    bad[10] ^= 1;
    expect = "layout checksum";
  }
  SECTION("not a layout") {
    bad[0] = 'X';
    expect = "bad magic";
  }
  SECTION("a damaged header") {
    bad[layout_len] = 'X';
    expect = "bad magic";
  }
  SECTION("bytes after the trailer") {
    bad += "x";
    expect = "after the trailer";
  }
  SECTION("a damaged file byte") {
    bad[layout_len + 300] ^= 1;
    fails_at_write = false;
    expect = "checksum";
  }
  SECTION("truncated") {
    bad.resize(bad.size() - 3);
    fails_at_write = false;
    expect = "truncated";
  }
  SECTION("another index than announced") {
    index = 43;
    fails_at_write = false;
    expect = "another index";
  }
  auto r = fx.to->Receive(index, 7, 0, /*layout=*/true);
  REQUIRE(r.ok());
  Status s = fx.Feed(r->get(), bad, {1000, 1});
  CHECK(s.ok() != fails_at_write);
  if (s.ok()) s = (*r)->Finish();
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().find(expect) != std::string::npos);
  r->reset();
  CHECK(fx.Names().empty());
  CHECK_FALSE(fx.to->Exists(index, 7));
}

TEST_CASE("receives in layout form left by a crash are removed on open and by cleanup",
          "[runtime][snapshot][linked][layout]") {
  LayoutFixture fx;
  auto r = fx.to->Receive(42, 7, 0, /*layout=*/true);
  REQUIRE(r.ok());
  REQUIRE((*r)->Write(0, std::string_view(fx.stream).substr(0, 100000)).ok());
  // A crash: the receiver's directory stays as it is (copied aside before the destructor).
  const std::vector<std::string> names = fx.Names();
  REQUIRE(names.size() == 1);
  CHECK(names[0].ends_with(".recv.tmp"));
  const fsys::path partial = fx.tmp.path / "to" / names[0];
  CHECK_FALSE(fsys::is_empty(partial));
  fsys::copy(partial, fx.tmp.path / "saved", fsys::copy_options::recursive);
  r->reset();
  CHECK(fx.Names().empty());

  fsys::copy(fx.tmp.path / "saved", partial, fsys::copy_options::recursive);
  fx.to->Cleanup(41, 1);  // below it: kept (it may be on its way to the log)
  CHECK(fsys::exists(partial));
  fx.to->Cleanup(50, 1);
  CHECK_FALSE(fsys::exists(partial));

  fsys::copy(fx.tmp.path / "saved", partial, fsys::copy_options::recursive);
  auto reopened = SnapshotStore::Open((fx.tmp.path / "to").string());
  REQUIRE(reopened.ok());
  CHECK(fx.Names().empty());
}

}  // namespace raft::runtime
