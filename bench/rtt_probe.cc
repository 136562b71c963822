// rtt_probe: the network floor. A thread echoes on a loopback TCP connection (Nagle off);
// the main thread sends --bytes (default 64) and waits for the echo, --count times after
// --warmup rounds, and prints "p50_ms X p90_ms X p99_ms X max_ms X count N". Two threads,
// blocking sockets: each round trip includes the wake-ups a request to a server pays.
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "kvbench/flags.h"
#include "kvbench/histogram.h"

using asio::ip::tcp;

int main(int argc, char** argv) {
  kvbench::Flags flags(argc, argv, {"help", "h"});
  if (flags.Has("help") || flags.Has("h")) {
    std::puts(
        "usage: rtt_probe [--count N (default 10000)] [--warmup N (default 1000)] "
        "[--bytes B (default 64)]");
    return 0;
  }
  const int64_t count = flags.Int("count", 10000);
  const int64_t warmup = flags.Int("warmup", 1000);
  const int64_t bytes = flags.Int("bytes", 64);
  if (!flags.ok() || !flags.Unused().empty() || count < 1 || warmup < 0 || bytes < 1) {
    std::fprintf(stderr, "rtt_probe: bad flags (try --help) %s\n", flags.error().c_str());
    return 2;
  }
  try {
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto endpoint = acceptor.local_endpoint();
    const auto total = static_cast<size_t>(count + warmup);
    const auto size = static_cast<size_t>(bytes);
    std::thread echo([&] {
      tcp::socket peer(io);
      acceptor.accept(peer);
      peer.set_option(tcp::no_delay(true));
      std::string buf(size, '\0');
      for (size_t i = 0; i < total; ++i) {
        asio::read(peer, asio::buffer(buf));
        asio::write(peer, asio::buffer(buf));
      }
    });
    tcp::socket client(io);
    client.connect(endpoint);
    client.set_option(tcp::no_delay(true));
    std::string out(size, 'p'), in(size, '\0');
    kvbench::Histogram h;
    for (size_t i = 0; i < total; ++i) {
      const auto start = std::chrono::steady_clock::now();
      asio::write(client, asio::buffer(out));
      asio::read(client, asio::buffer(in));
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
      if (i >= static_cast<size_t>(warmup)) h.Record(static_cast<uint64_t>(ns));
    }
    echo.join();
    std::printf("p50_ms %.4f p90_ms %.4f p99_ms %.4f max_ms %.4f count %llu\n",
                h.ValueAtPercentile(50) / 1e6, h.ValueAtPercentile(90) / 1e6,
                h.ValueAtPercentile(99) / 1e6, h.max() / 1e6,
                static_cast<unsigned long long>(h.count()));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rtt_probe: %s\n", e.what());
    return 1;
  }
  return 0;
}
