#include "netlab/nat.hpp"

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "netlab/netns.hpp"

namespace peerlink::netlab {
namespace {

const char* proto_name(uint8_t protocol) {
  return protocol == 6 ? "tcp" : "udp";
}

// nft matches `numgen random mod 100 < N` only for N < 100; 100 % is an unconditional drop.
std::string loss_expr(int percent) {
  return percent >= 100 ? std::string() : "numgen random mod 100 < " + std::to_string(percent);
}

}  // namespace

const char* to_string(NatType type) {
  switch (type) {
    case NatType::kNone:
      return "none";
    case NatType::kFullCone:
      return "full-cone";
    case NatType::kPortRestricted:
      return "port-restricted";
    case NatType::kSymmetric:
      return "symmetric";
    case NatType::kUdpBlocked:
      return "udp-blocked";
  }
  return "?";
}

std::ostream& operator<<(std::ostream& os, NatType type) {
  return os << to_string(type);
}

std::string nat_ruleset(const NatRules& r) {
  const std::string wan = "\"" + r.wan_if + "\"";
  const bool restricted =
      r.type == NatType::kPortRestricted || r.type == NatType::kSymmetric || r.type == NatType::kUdpBlocked;
  std::ostringstream s;
  // "add" first so that "delete" succeeds on the first load: the whole file is one atomic transaction.
  s << "add table ip netlab\n"
    << "delete table ip netlab\n"
    << "table ip netlab {\n";

  // After conntrack (-200), before DNAT (-100): a packet dropped here never confirms a conntrack entry, so
  // unsolicited inbound cannot occupy a tuple that a later outbound flow would clash with (which would
  // make masquerade pick another port, i.e. behave symmetric).
  s << "  chain prerouting_filter {\n"
    << "    type filter hook prerouting priority -150; policy accept;\n";
  if (r.type == NatType::kFullCone) {
    for (const auto& m : r.remaps) {
      bool reused = false;  // the old port may be another socket's new one
      for (const auto& o : r.remaps)
        reused = reused || (o.protocol == m.protocol && o.external_port == m.old_external_port);
      if (m.old_external_port != 0 && m.old_external_port != m.external_port && !reused)
        s << "    iifname " << wan << " ct state new meta l4proto " << proto_name(m.protocol) << " th dport "
          << m.old_external_port << " drop\n";
    }
  }
  if (restricted) s << "    iifname " << wan << " ct state new drop\n";
  s << "  }\n";

  s << "  chain prerouting_nat {\n"
    << "    type nat hook prerouting priority dstnat; policy accept;\n";
  if (r.type == NatType::kFullCone) {
    for (const auto& m : r.remaps)
      s << "    iifname " << wan << " meta l4proto " << proto_name(m.protocol) << " th dport "
        << m.external_port << " dnat to " << m.lan_ip << ":" << m.lan_port << "\n";
    if (!r.dmz_ip.empty())
      s << "    iifname " << wan << " meta l4proto { tcp, udp } dnat to " << r.dmz_ip << "\n";
  }
  s << "  }\n";

  s << "  chain postrouting_nat {\n"
    << "    type nat hook postrouting priority srcnat; policy accept;\n";
  for (const auto& m : r.remaps)
    s << "    oifname " << wan << " ip saddr " << m.lan_ip << " meta l4proto " << proto_name(m.protocol)
      << " th sport " << m.lan_port << " snat to " << r.wan_ip << ":" << m.external_port << "\n";
  switch (r.type) {
    case NatType::kFullCone:
      s << "    oifname " << wan << " snat to " << r.wan_ip << "\n";
      break;
    case NatType::kPortRestricted:
    case NatType::kUdpBlocked:
      s << "    oifname " << wan << " masquerade\n";
      break;
    case NatType::kSymmetric:
      s << "    oifname " << wan << " masquerade fully-random\n";
      break;
    case NatType::kNone:
      break;
  }
  s << "  }\n";

  s << "  chain forward_filter {\n"
    << "    type filter hook forward priority filter; policy accept;\n";
  // Only traffic through the WAN: the LAN is a switch (and lab bridges bypass netfilter anyway).
  if (r.loss_percent > 0) {
    s << "    iifname " << wan << " " << loss_expr(r.loss_percent) << " drop\n"
      << "    oifname " << wan << " " << loss_expr(r.loss_percent) << " drop\n";
  }
  if (r.type == NatType::kUdpBlocked) {
    s << "    iifname " << wan << " meta l4proto udp drop\n"
      << "    oifname " << wan << " meta l4proto udp drop\n";
  }
  s << "  }\n"
    << "}\n";
  return s.str();
}

std::string loss_ruleset(const std::string& table, const std::string& device, int percent) {
  std::ostringstream s;
  s << "add table netdev " << table << "\n"
    << "delete table netdev " << table << "\n";
  if (percent > 0) {
    s << "table netdev " << table << " {\n"
      << "  chain loss {\n"
      << "    type filter hook ingress device \"" << device << "\" priority filter; policy accept;\n"
      << "    " << loss_expr(percent) << " drop\n"
      << "  }\n"
      << "}\n";
  }
  return s.str();
}

std::vector<ConntrackEntry> read_conntrack(const std::string& netns) {
  std::string text;
  {
    NetnsScope scope(netns);
    // thread-self, not self: /proc/self/net shows the namespace of the process's main thread.
    std::ifstream in("/proc/thread-self/net/nf_conntrack");
    if (!in) throw std::runtime_error("netlab: cannot read /proc/thread-self/net/nf_conntrack in " + netns);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  std::vector<ConntrackEntry> entries;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string family, family_num, proto_name_word, proto_num;
    words >> family >> family_num >> proto_name_word >> proto_num;
    if (family != "ipv4" || (proto_num != "17" && proto_num != "6")) continue;
    ConntrackEntry e;
    e.protocol = static_cast<uint8_t>(std::stoi(proto_num));
    int srcs = 0, dsts = 0, sports = 0, dports = 0;
    std::string w;
    while (words >> w) {
      auto eq = w.find('=');
      if (eq == std::string::npos) continue;
      const std::string key = w.substr(0, eq), value = w.substr(eq + 1);
      if (key == "src") (srcs++ == 0 ? e.orig_src : e.reply_src) = value;
      if (key == "dst") (dsts++ == 0 ? e.orig_dst : e.reply_dst) = value;
      if (key == "sport")
        (sports++ == 0 ? e.orig_sport : e.reply_sport) = static_cast<uint16_t>(std::stoi(value));
      if (key == "dport")
        (dports++ == 0 ? e.orig_dport : e.reply_dport) = static_cast<uint16_t>(std::stoi(value));
    }
    entries.push_back(e);
  }
  return entries;
}

void flush_conntrack(const std::string& netns) {
  int fd;
  {
    NetnsScope scope(netns);  // a netlink socket talks to the namespace it was created in
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  }
  if (fd < 0) throw std::runtime_error(std::string("netlab: netlink socket: ") + std::strerror(errno));
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct {
    nlmsghdr nlh;
    nfgenmsg nfg;
  } req{};
  req.nlh.nlmsg_len = sizeof req;
  req.nlh.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
  req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.nlh.nlmsg_seq = 1;
  req.nfg.nfgen_family = AF_UNSPEC;  // every family, like `conntrack -F`
  req.nfg.version = NFNETLINK_V0;
  req.nfg.res_id = 0;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, &req, sizeof req, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
    std::string what = std::string("netlab: ctnetlink flush send: ") + std::strerror(errno);
    close(fd);
    throw std::runtime_error(what);
  }
  char buf[4096];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  const int recv_errno = errno;
  close(fd);
  if (n < static_cast<ssize_t>(sizeof(nlmsghdr)))
    throw std::runtime_error(std::string("netlab: ctnetlink flush: no answer: ") + std::strerror(recv_errno));
  const auto* h = reinterpret_cast<const nlmsghdr*>(buf);
  if (h->nlmsg_type != NLMSG_ERROR) throw std::runtime_error("netlab: ctnetlink flush: unexpected answer");
  const auto* err = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(h));
  if (err->error != 0)
    throw std::runtime_error(std::string("netlab: ctnetlink flush: ") + std::strerror(-err->error));
}

}  // namespace peerlink::netlab
