// A webhook receiver for the benchmarks: an HTTP/1.1 keep-alive server on loopback, on one
// thread of its own (pinned to a core when asked), that answers every POST 204 and counts
// them; with keys, it checks each delivery's Standard Webhooks signature as a receiver
// would (webhooks::Sign) and counts the ones that do not verify.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace cartwatch::bench {

class Sink {
 public:
  // Listens on 127.0.0.1:`port` (0: any) and serves on its own thread, on core `cpu`
  // (-1: anywhere). `keys`: signing keys to verify with (empty: no check).
  Sink(unsigned short port, int cpu, std::vector<std::string> keys = {});
  ~Sink();
  unsigned short port() const { return port_; }
  std::uint64_t received() const { return received_.load(); }
  std::uint64_t bad_signatures() const { return bad_.load(); }
  std::uint64_t connections() const { return connections_.load(); }
  // CPU seconds of the sink's thread.
  double cpu_seconds() const;

 private:
  void Accept();
  boost::asio::io_context ioc_{1};
  boost::asio::ip::tcp::acceptor acceptor_{ioc_};
  unsigned short port_ = 0;
  std::vector<std::string> keys_;
  std::atomic<std::uint64_t> received_{0}, bad_{0}, connections_{0};
  std::thread thread_;
};

}  // namespace cartwatch::bench
