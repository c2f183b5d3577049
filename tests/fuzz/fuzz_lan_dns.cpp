// mDNS messages from anyone on the LAN: read by the LAN beacon's DNS codec, then as peers' announcements
// (with and without a network key). Whatever reads must write back (when it fits) and read again to the same
// message; nothing may crash, loop or allocate without bound.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "lan_beacon/beacon_records.hpp"
#include "lan_beacon/dns_message.hpp"

using namespace peerlink::lan::dns;
using peerlink::lan::Heard;
using peerlink::lan::Verdict;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string why;
  std::optional<Message> m = parse(data, size, &why);
  if (!m) {
    FUZZ_CHECK(!why.empty());
    return 0;
  }
  for (const std::vector<Record>* section : {&m->answers, &m->authorities, &m->additionals}) {
    for (const Record& r : *section) {
      // A printed name is at most twice its bytes (every label byte escaped) plus a dot per label.
      FUZZ_CHECK(to_text(r.name).size() <= 2 * kMaxNameBytes + 1);
      FUZZ_CHECK(to_text(r.target).size() <= 2 * kMaxNameBytes + 1);
      if (r.kind() == Type::kTxt) (void)txt_value(r.strings, "k");
    }
  }
  static const Name service = {"_chat", "_udp", "local"};
  for (const std::vector<uint8_t>& network_key : {std::vector<uint8_t>{}, std::vector<uint8_t>(32, 7)}) {
    for (const Heard& h : peerlink::lan::read_announcements(service, *m, network_key)) {
      if (h.verdict != Verdict::kOk) continue;
      FUZZ_CHECK(!h.instance.empty());
      FUZZ_CHECK(h.announcement.display_name.size() <= peerlink::lan::kMaxDisplayName);
      FUZZ_CHECK(h.announcement.aliases.size() <= peerlink::lan::kMaxAliases);
    }
  }
  std::optional<std::vector<uint8_t>> wire = serialize(*m);
  if (!wire) return 0;  // it can be larger written out (names it compressed into unknown records' RDATA)
  std::optional<Message> again = parse(wire->data(), wire->size(), &why);
  FUZZ_CHECK(again && *again == *m);
  return 0;
}
