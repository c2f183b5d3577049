// throughput and msgrate: one connection, the client sending as fast as the Host takes messages.
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "baselines.hpp"
#include "bench_output.hpp"
#include "host_common.hpp"
#include "host_scenarios.hpp"
#include "measure.hpp"

namespace peerlink::bench {

namespace {

constexpr auto kBackoff = std::chrono::microseconds(200);

struct StreamResult {
  SinkResult received;        // during the measured window, at the server
  uint64_t sent = 0;          // messages the Host accepted
  uint64_t delivered = 0;     // messages the server received in all
  uint64_t order_errors = 0;  // sequence numbers out of place at the server
  uint64_t backoffs = 0;      // kLimitExceeded answers
  ConnectionStatus status;    // the client's, at the end of the window

  bool verified() const { return delivered == sent && order_errors == 0; }
};

// Sends numbered reliable messages of message_size bytes, `batch` at a time (1: Host::send, more:
// Host::send_batch), through a warm-up and `seconds`, then waits for the server to have them all. With
// keep_queued, sends only while fewer bytes than that are queued (accepted, not yet acknowledged); without,
// until the Host refuses (HostConfig::send_buffer_bytes).
StreamResult measure_host_stream(const NetworkPath& path, size_t message_size, size_t batch, double seconds,
                                 size_t keep_queued = 0) {
  ServerProcess server(path, "host-sink", {"--size", std::to_string(message_size)}, seconds + 120);
  Host host(bench_host_config(path.client_ip));
  ConnectionHandle c = connect_and_wait(host, server_address(path, server.ready()),
                                        key_from_hex(server.ready().field("key")), 10);

  std::vector<uint8_t> payload(message_size * batch, 0x5a);
  std::vector<OutgoingMessage> messages(batch);
  std::vector<SendResult> results(batch);
  for (size_t i = 0; i < batch; ++i)
    messages[i] = {c, payload.data() + i * message_size, message_size, send_flags::kReliable, 0};

  StreamResult r;
  SinkWindow window(server, seconds);
  while (window.running()) {
    for (size_t i = 0; i < batch; ++i)
      put_sequence(payload.data() + i * message_size, r.sent + i);
    size_t taken = 0;
    SendResult refusal = SendResult::kOk;
    if (keep_queued > 0 && host.status(c)->queued_bytes >= keep_queued) {
      refusal = SendResult::kLimitExceeded;  // the application's own limit: back off the same way
    } else if (batch == 1) {
      refusal = host.send(c, payload.data(), message_size, send_flags::kReliable);
      taken = refusal == SendResult::kOk ? 1 : 0;
    } else {
      host.send_batch(messages.data(), batch, results.data());
      while (taken < batch && results[taken] == SendResult::kOk)
        ++taken;
      if (taken < batch) refusal = results[taken];
      for (size_t i = taken; i < batch; ++i) {
        if (results[i] == SendResult::kOk)
          throw std::runtime_error("send_batch took message " + std::to_string(i) +
                                   " after refusing message " + std::to_string(taken) + " (" +
                                   to_string(refusal) + ")");
      }
    }
    r.sent += taken;
    if (refusal == SendResult::kLimitExceeded) {
      ++r.backoffs;
      std::this_thread::sleep_for(kBackoff);
    } else if (refusal != SendResult::kOk) {
      throw std::runtime_error(std::string("send: ") + to_string(refusal));
    }
  }
  r.received = window.finish();
  if (auto st = host.status(c)) r.status = *st;
  // Everything the Host accepted must arrive, in order.
  server.send("expect count=" + std::to_string(r.sent) + " timeout=30");
  ControlMessage total = server.expect("total", 40);
  r.delivered = total.u64("messages");
  r.order_errors = total.u64("errors");
  return r;
}

void add_stream_details(Figure& f, const StreamResult& r, const NetworkPath& path) {
  f.add("path", path.name)
      .add("seconds", r.received.seconds)
      .add_count("messages_sent", r.sent)
      .add_count("messages_delivered", r.delivered)
      .add("verified", r.verified() ? "complete and in order" : "FAILED")
      .add_count("backoffs", r.backoffs)
      .add_count("packets_sent", r.status.packets_sent)
      .add_count("packets_lost", r.status.packets_lost)
      .add_count("packets_retransmitted", r.status.packets_retransmitted)
      .add_count("rtt_us", uint64_t(r.status.rtt.value_or(std::chrono::microseconds(0)).count()))
      .add_count("rtt_min_us", uint64_t(r.status.rtt_min.count()))
      .add_count("rtt_variance_us", uint64_t(r.status.rtt_variance.count()))
      .add_count("cwnd_bytes", r.status.congestion_window_bytes)
      .add_count("bytes_in_flight", r.status.bytes_in_flight)
      .add_count("packet_size", r.status.packet_size);
}

void check(const StreamResult& r) {
  if (!r.verified())
    throw std::runtime_error(std::to_string(r.delivered) + " of " + std::to_string(r.sent) +
                             " messages delivered, " + std::to_string(r.order_errors) + " out of order");
}

}  // namespace

void run_throughput(const HostBenchOptions& o) {
  constexpr size_t kMessage = 64 * 1024;
  BlastResult udp = measure_udp_blast(o.path, 1200, o.seconds);
  SinkResult tcp = measure_tcp_stream(o.path, kMessage, o.seconds);
  StreamResult host = measure_host_stream(o.path, kMessage, 1, o.seconds, kKeepQueued);
  // The same sender filling the Host's whole send buffer instead (96 MiB by default).
  StreamResult filling = measure_host_stream(o.path, kMessage, 1, o.seconds);
  const char* kept = "keeps at most 4 MiB queued, as TCP's socket buffer here";
  double value = host.received.megabytes_per_second();

  Figure vs_udp{"throughput", value, "MB/s", {}};
  vs_udp.compare("raw UDP blast 1200 B", udp.received.megabytes_per_second());
  add_stream_details(vs_udp, host, o.path);
  vs_udp.add("sender", kept)
      .add_count("message_size", kMessage)
      .add("baseline_sender_MB/s", double(udp.datagrams_sent) * 1200 / udp.send_seconds / 1e6)
      .add("target_ratio", 0.75);
  vs_udp.print();

  Figure vs_tcp{"throughput", value, "MB/s", {}};
  vs_tcp.compare("kernel TCP", tcp.megabytes_per_second());
  add_stream_details(vs_tcp, host, o.path);
  vs_tcp.add("sender", kept).add_count("message_size", kMessage).add("target_ratio", 0.75);
  vs_tcp.print();

  Figure fill{"throughput", filling.received.megabytes_per_second(), "MB/s", {}};
  fill.compare("kernel TCP", tcp.megabytes_per_second());
  add_stream_details(fill, filling, o.path);
  fill.add("sender", "fills the Host's send buffer (HostConfig::send_buffer_bytes, 96 MiB)")
      .add_count("message_size", kMessage);
  fill.print();
  check(host);
  check(filling);
}

void run_msgrate(const HostBenchOptions& o) {
  constexpr size_t kMessage = 64;
  constexpr size_t kBatch = 256;
  BlastResult udp = measure_udp_blast(o.path, kMessage, o.seconds);
  StreamResult host = measure_host_stream(o.path, kMessage, kBatch, o.seconds);

  Figure f{"msgrate", host.received.messages_per_second(), "messages/s", {}};
  f.compare("raw UDP blast 64 B", udp.received.messages_per_second());
  add_stream_details(f, host, o.path);
  f.add_count("message_size", kMessage)
      .add_count("batch", kBatch)
      .add("baseline_sender_per_s", double(udp.datagrams_sent) / udp.send_seconds)
      .add("target", 1e6);
  f.print();
  check(host);
}

}  // namespace peerlink::bench
