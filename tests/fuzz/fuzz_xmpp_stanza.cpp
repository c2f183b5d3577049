// Stanzas from the XMPP server (anyone's, relayed): parsed by libstrophe as the plugin's stream would be,
// then through every reader of the plugin (signaling payload, errors, presence, disco#info and caps, roster,
// XEP-0215 services) and the JID parser. Decoded blobs must be non-empty, within kMaxSignalingBlob, and
// survive re-encoding; nothing may crash, leak or allocate without bound.
#include <strophe.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "signaling_xmpp/base64.hpp"
#include "signaling_xmpp/jid.hpp"
#include "signaling_xmpp/stanza_codec.hpp"

namespace {

using namespace peerlink::xmpp;

xmpp_ctx_t* context() {
  static xmpp_ctx_t* ctx = [] {
    xmpp_initialize();
    return xmpp_ctx_new(nullptr, nullptr);
  }();
  return ctx;
}

void check_signal(xmpp_stanza_t* s) {
  std::vector<uint8_t> blob;
  if (decode_signal(s, 1200, blob) != SignalDecode::kOk) return;
  FUZZ_CHECK(!blob.empty() && blob.size() <= 1200);
  const std::string again = signal_iq("a@b/c", "id", blob.data(), blob.size());
  xmpp_stanza_t* parsed = xmpp_stanza_new_from_string(context(), again.c_str());
  FUZZ_CHECK(parsed);
  std::vector<uint8_t> back;
  FUZZ_CHECK(decode_signal(parsed, 1200, back) == SignalDecode::kOk && back == blob);
  xmpp_stanza_release(parsed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (std::optional<std::vector<uint8_t>> bytes = base64_decode(text)) {
    FUZZ_CHECK(base64_encode(bytes->data(), bytes->size()) == text);
  }
  if (std::optional<Jid> jid = Jid::parse(text)) {
    FUZZ_CHECK(!jid->domain.empty());
    FUZZ_CHECK(Jid::parse(jid->full()).has_value());
  }
  xmpp_stanza_t* s = xmpp_stanza_new_from_string(context(), text.c_str());
  if (!s) return 0;
  check_signal(s);
  const StanzaError e = parse_stanza_error(s);
  FUZZ_CHECK(!e.condition.empty() && e.text.size() <= 200);
  const PresenceInfo p = parse_presence(s);
  FUZZ_CHECK(p.priority >= -128 && p.priority <= 127);
  if (std::optional<DiscoInfo> info = parse_disco_info(s)) (void)caps_ver(*info);
  (void)parse_roster(s);
  if (auto services = parse_services(s)) FUZZ_CHECK(services->size() <= 32);
  if (const char* from = xmpp_stanza_get_from(s)) (void)Jid::parse(from);
  xmpp_stanza_release(s);
  return 0;
}
