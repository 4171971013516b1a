// cartwatch-webhook-sink: a webhook receiver for benchmarks (bench/sink.h) on
// 127.0.0.1:PORT, answering every POST 204, until SIGTERM or SIGINT; then prints how many
// deliveries it received (and how many failed the signature check, with --secret).
//   cartwatch-webhook-sink --port 18099 [--secret whsec_...] [--cpu 1]
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/sink.h"
#include "webhooks/signature.h"

int main(int argc, char** argv) {
  int port = 0, cpu = -1;
  std::vector<std::string> keys;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--port") port = std::atoi(argv[i + 1]);
    else if (arg == "--cpu") cpu = std::atoi(argv[i + 1]);
    else if (arg == "--secret") {
      auto key = cartwatch::webhooks::SecretKey(argv[i + 1]);
      if (!key) {
        std::fprintf(stderr, "--secret must be whsec_<base64>\n");
        return 2;
      }
      keys.push_back(*key);
    }
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  cartwatch::bench::Sink sink(static_cast<unsigned short>(port), cpu, keys);
  std::printf("cartwatch-webhook-sink: listening on 127.0.0.1:%u\n", sink.port());
  std::fflush(stdout);
  int received = 0;
  sigwait(&signals, &received);
  std::printf("received %llu  bad signatures %llu  connections %llu\n",
              static_cast<unsigned long long>(sink.received()),
              static_cast<unsigned long long>(sink.bad_signatures()),
              static_cast<unsigned long long>(sink.connections()));
  return 0;
}
