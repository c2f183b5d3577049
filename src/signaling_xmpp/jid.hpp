// JIDs (RFC 7622) as the plugin compares them: "local@domain/resource". Local part and domain are
// compared case-insensitively (ASCII lower-cased when parsed); the resource byte for byte. Full stringprep
// / PRECIS normalisation of non-ASCII names is left to the server: such names must be written the way the
// server returns them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace peerlink::xmpp {

struct Jid {
  std::string local;     // may be empty (a server's JID)
  std::string domain;    // never empty
  std::string resource;  // empty for a bare JID

  // nullopt (and *why, if given) when text is not a JID: an empty or too long part (1023 bytes each), a
  // character the local part or domain may not hold, control characters.
  static std::optional<Jid> parse(std::string_view text, std::string* why = nullptr);

  bool is_full() const { return !resource.empty(); }
  std::string bare() const;  // "local@domain" (or "domain")
  std::string full() const;  // bare() + "/resource" when there is one
  bool operator==(const Jid& o) const {
    return local == o.local && domain == o.domain && resource == o.resource;
  }
};

}  // namespace peerlink::xmpp
