// Uses the installed XMPP plugin: options are checked, and a plugin is made (nothing touches the network
// until a Host starts it). Prints "xmpp ok".
#include <peerlink/xmpp.hpp>

#include <iostream>

int main() {
  peerlink::XmppOptions bad;
  bad.jid = "no-domain@";
  if (bad.validate()) {
    std::cerr << "a JID without a domain was accepted\n";
    return 1;
  }
  peerlink::XmppOptions o;
  o.jid = "alice@example.org";
  o.password = "secret";
  peerlink::XmppSignaling plugin(o);
  if (plugin.scheme() != "xmpp" || plugin.status().state != peerlink::XmppState::kIdle) return 1;
  std::cout << "xmpp ok\n";
  return 0;
}
