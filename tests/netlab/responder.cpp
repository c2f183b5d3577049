#include "netlab/responder.hpp"

#include "netlab/netns.hpp"
#include "netlab/stun.hpp"

namespace peerlink::netlab {
namespace {

UdpSocket bind_in(const std::string& netns, const std::string& ip, uint16_t port) {
  NetnsScope scope(netns);
  return UdpSocket(ip, port);
}

}  // namespace

StunResponder::StunResponder(const std::string& netns, const std::string& ip, uint16_t port)
    : address_{ip, port}, socket_(bind_in(netns, ip, port)) {
  address_ = socket_.local();
  thread_ = std::thread([this] { run(); });
}

StunResponder::~StunResponder() {
  stop_ = true;
  thread_.join();
}

std::vector<Endpoint> StunResponder::seen() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return seen_;
}

void StunResponder::run() {
  while (!stop_) {
    auto d = socket_.receive(std::chrono::milliseconds(20));
    if (!d) continue;
    auto req = stun::decode(d->data);
    if (!req || req->type != stun::kBindingRequest) continue;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      seen_.push_back(d->from);
    }
    stun::Message resp;
    resp.type = stun::kBindingSuccess;
    resp.txid = req->txid;
    resp.add(stun::kXorMappedAddress, stun::encode_xor_address(d->from));
    socket_.send_to(d->from, stun::encode(resp));
  }
}

}  // namespace peerlink::netlab
