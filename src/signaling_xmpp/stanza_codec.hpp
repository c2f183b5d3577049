// What the plugin writes to and reads from the XMPP stream: stanzas as text out, libstrophe's parsed
// stanzas in. Every reader is a pure function of one stanza (fuzzed by tests/fuzz/fuzz_xmpp_stanza.cpp)
// and tolerates anything: missing attributes, wrong namespaces, junk children, huge text.
//
// Signaling blobs travel as IQ-set to the peer's full JID:
//   <iq type='set' to='bob@example.org/game' id='pl5'><signal xmlns='urn:x-peerlink:signaling:1'>
//     base64 of the blob</signal></iq>
// answered with an empty result, or an error (bad-request for a blob that does not decode).
#pragma once

#include <strophe.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace peerlink::xmpp {

inline constexpr char kSignalNs[] = "urn:x-peerlink:signaling:1";
inline constexpr char kCapsNode[] = "urn:x-peerlink:client";
inline constexpr char kDiscoInfoNs[] = "http://jabber.org/protocol/disco#info";
inline constexpr char kCapsNs[] = "http://jabber.org/protocol/caps";
inline constexpr char kPingNs[] = "urn:xmpp:ping";
inline constexpr char kRosterNs[] = "jabber:iq:roster";
inline constexpr char kExtDiscoNs[] = "urn:xmpp:extdisco:2";
inline constexpr char kStanzaErrorNs[] = "urn:ietf:params:xml:ns:xmpp-stanzas";

// XML character data / attribute value escaping (& < > ' ").
std::string xml_escape(std::string_view text);

// --- writing (each returns one complete stanza) ---
std::string signal_iq(const std::string& to, const std::string& id, const uint8_t* blob, size_t size);
std::string result_iq(const std::string& to, const std::string& id);
// type: "cancel", "modify", "wait", "auth"; condition: an RFC 6120 stanza error condition.
std::string error_iq(const std::string& to, const std::string& id, const char* type, const char* condition);
std::string ping_iq(const std::string& to, const std::string& id);
std::string roster_get_iq(const std::string& id);
std::string disco_info_get_iq(const std::string& to, const std::string& id, const std::string& node);
// Our own disco#info: identity client/pc "peerlink", the features in our_features().
std::string disco_info_result_iq(const std::string& to, const std::string& id, const std::string& node);
std::string services_get_iq(const std::string& to, const std::string& id);
std::string credentials_get_iq(const std::string& to, const std::string& id, const std::string& type,
                               const std::string& host, uint16_t port);
// Initial presence: negative priority (never chosen for chat messages to the bare JID), with entity caps.
std::string initial_presence(int priority);
std::string unavailable_presence();

// --- entity capabilities (XEP-0115) ---
struct DiscoIdentity {
  std::string category, type, lang, name;
};
struct DiscoInfo {
  std::vector<DiscoIdentity> identities;
  std::vector<std::string> features;
  bool has_forms = false;  // data forms we do not hash: the ver cannot be verified
  bool has_feature(std::string_view feature) const;
};
// The verification string: base64(SHA-1(identities and features, sorted)), without forms.
std::string caps_ver(const DiscoInfo& info);
// Ours (what disco_info_result_iq advertises) and its ver.
const DiscoInfo& our_disco_info();
const std::string& our_caps_ver();

// --- reading ---
// The IQ's <signal/> payload. kNotSignal: no child in our namespace.
enum class SignalDecode : uint8_t { kOk, kNotSignal, kEmpty, kTooLarge, kBadBase64 };
const char* to_string(SignalDecode d);
SignalDecode decode_signal(xmpp_stanza_t* iq, size_t max_blob, std::vector<uint8_t>& blob);

struct StanzaError {
  std::string type;       // cancel, modify, wait, auth (or empty)
  std::string condition;  // "service-unavailable", ... (or "undefined-condition" if none is named)
  std::string text;       // the optional human-readable text, at most 200 bytes
};
StanzaError parse_stanza_error(xmpp_stanza_t* stanza);

struct PresenceInfo {
  enum Kind : uint8_t { kAvailable, kUnavailable, kOther } kind = kOther;  // kOther: subscribe, error, ...
  int priority = 0;                                                        // -128..127
  std::string caps_node, caps_hash, caps_ver;  // from <c xmlns='http://jabber.org/protocol/caps'/>
};
PresenceInfo parse_presence(xmpp_stanza_t* presence);

// A disco#info result's <query/> (nullopt if the stanza has none).
std::optional<DiscoInfo> parse_disco_info(xmpp_stanza_t* iq);

struct RosterItem {
  std::string jid;           // as sent (the caller parses it)
  std::string subscription;  // none, to, from, both, remove
};
// Items of a roster result or push; nullopt if the stanza has no jabber:iq:roster query.
std::optional<std::vector<RosterItem>> parse_roster(xmpp_stanza_t* iq);

// XEP-0215 services (or credentials) result.
struct ExternalService {
  std::string type;       // "stun", "turn", "turns", ...
  std::string transport;  // "udp", "tcp" (or empty)
  std::string host;
  uint16_t port = 0;  // 0: not given
  std::string username, password;
  bool restricted = false;
  std::optional<std::chrono::system_clock::time_point> expires;
};
// nullopt if the stanza has no <services/> or <credentials/> of extdisco:2; services without a type or
// host, or with a bad port, are left out.
std::optional<std::vector<ExternalService>> parse_services(xmpp_stanza_t* iq);
// XEP-0082 date-time ("2026-12-04T17:44:28Z", with optional fraction and offset).
std::optional<std::chrono::system_clock::time_point> parse_xmpp_datetime(std::string_view text);

}  // namespace peerlink::xmpp
