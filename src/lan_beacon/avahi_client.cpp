#include "avahi_client.hpp"

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/thread-watch.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cstring>

namespace peerlink::lan {

struct AvahiService::State {
  AvahiThreadedPoll* poll = nullptr;
  AvahiClient* client = nullptr;
  AvahiEntryGroup* group = nullptr;
  AvahiServiceBrowser* browser = nullptr;
  std::string type, instance;
  uint16_t port = 0;
  std::vector<std::string> txt;
  int wake_fd = -1;
  std::mutex mutex;  // guards news
  std::vector<AvahiNews> news;

  void push(AvahiNews n) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (news.size() < 4096) news.push_back(std::move(n));
    }
    const uint64_t one = 1;
    (void)!write(wake_fd, &one, sizeof one);
  }
  void fail(const std::string& what, int error) {
    AvahiNews n;
    n.kind = AvahiNews::kFailed;
    n.detail = what + ": " + avahi_strerror(error);
    push(std::move(n));
  }

  // On avahi's thread (or inside avahi_client_new): (re)publishes the service.
  void publish(AvahiClient* c) {
    if (!group && !(group = avahi_entry_group_new(c, on_group, this))) {
      fail("avahi_entry_group_new", avahi_client_errno(c));
      return;
    }
    avahi_entry_group_reset(group);
    AvahiStringList* list = nullptr;
    for (auto it = txt.rbegin(); it != txt.rend(); ++it)  // the list is built by prepending
      list = avahi_string_list_add_arbitrary(list, reinterpret_cast<const uint8_t*>(it->data()), it->size());
    for (int attempt = 0; attempt < 8; ++attempt) {
      const int r = avahi_entry_group_add_service_strlst(group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC,
                                                         AvahiPublishFlags(0), instance.c_str(), type.c_str(),
                                                         nullptr, nullptr, port, list);
      if (r == AVAHI_ERR_COLLISION) {
        rename();
        continue;
      }
      if (r < 0) fail("publishing " + instance, r);
      if (r == 0 && avahi_entry_group_commit(group) < 0)
        fail("committing " + instance, avahi_client_errno(c));
      break;
    }
    avahi_string_list_free(list);
  }
  void rename() {
    char* alternative = avahi_alternative_service_name(instance.c_str());
    instance = alternative;
    avahi_free(alternative);
  }

  static void on_group(AvahiEntryGroup* g, AvahiEntryGroupState state, void* self) {
    auto* s = static_cast<State*>(self);
    if (state == AVAHI_ENTRY_GROUP_COLLISION) {  // another host has the name: take the next one
      s->rename();
      s->publish(avahi_entry_group_get_client(g));
    } else if (state == AVAHI_ENTRY_GROUP_FAILURE) {
      s->fail("the service's entry group", avahi_client_errno(avahi_entry_group_get_client(g)));
    }
  }

  static void on_client(AvahiClient* c, AvahiClientState state, void* self) {
    auto* s = static_cast<State*>(self);
    switch (state) {
      case AVAHI_CLIENT_S_RUNNING:
        s->publish(c);
        if (!s->browser) {
          s->browser = avahi_service_browser_new(c, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, s->type.c_str(),
                                                 nullptr, AvahiLookupFlags(0), on_browse, s);
          if (!s->browser) s->fail("avahi_service_browser_new", avahi_client_errno(c));
        }
        break;
      case AVAHI_CLIENT_S_COLLISION:
      case AVAHI_CLIENT_S_REGISTERING:
        if (s->group) avahi_entry_group_reset(s->group);
        break;
      case AVAHI_CLIENT_FAILURE:
        s->fail("avahi-daemon", avahi_client_errno(c));
        break;
      case AVAHI_CLIENT_CONNECTING:
        break;
    }
  }

  static void on_browse(AvahiServiceBrowser* b, AvahiIfIndex interface, AvahiProtocol protocol,
                        AvahiBrowserEvent event, const char* name, const char* type, const char* domain,
                        AvahiLookupResultFlags, void* self) {
    auto* s = static_cast<State*>(self);
    if (event == AVAHI_BROWSER_NEW) {
      // The resolver frees itself in on_resolve; one of the address family the service was seen on.
      if (!avahi_service_resolver_new(avahi_service_browser_get_client(b), interface, protocol, name, type,
                                      domain, protocol, AvahiLookupFlags(0), on_resolve, s))
        s->fail("avahi_service_resolver_new", avahi_client_errno(avahi_service_browser_get_client(b)));
    } else if (event == AVAHI_BROWSER_REMOVE) {
      AvahiNews n;
      n.kind = AvahiNews::kRemoved;
      n.interface_index = interface;
      n.protocol = protocol;
      n.instance = name;
      s->push(std::move(n));
    } else if (event == AVAHI_BROWSER_FAILURE) {
      s->fail("browsing " + s->type, avahi_client_errno(avahi_service_browser_get_client(b)));
    }
  }

  static void on_resolve(AvahiServiceResolver* r, AvahiIfIndex interface, AvahiProtocol protocol,
                         AvahiResolverEvent event, const char* name, const char*, const char*, const char*,
                         const AvahiAddress* address, uint16_t port, AvahiStringList* txt,
                         AvahiLookupResultFlags, void* self) {
    auto* s = static_cast<State*>(self);
    if (event == AVAHI_RESOLVER_FOUND && address) {
      AvahiNews n;
      n.interface_index = interface;
      n.protocol = protocol;
      n.instance = name;
      n.port = port;
      if (address->proto == AVAHI_PROTO_INET) {
        std::array<uint8_t, 4> ip{};
        std::memcpy(ip.data(), &address->data.ipv4.address, 4);
        n.address = Address::ipv4(ip, 0);
      } else {
        std::array<uint8_t, 16> ip{};
        in6_addr a6{};
        std::memcpy(ip.data(), address->data.ipv6.address, 16);
        std::memcpy(&a6, address->data.ipv6.address, 16);
        n.address = Address::ipv6(ip, 0, IN6_IS_ADDR_LINKLOCAL(&a6) ? static_cast<uint32_t>(interface) : 0);
      }
      for (AvahiStringList* l = txt; l; l = avahi_string_list_get_next(l))
        n.txt.emplace_back(reinterpret_cast<const char*>(avahi_string_list_get_text(l)),
                           avahi_string_list_get_size(l));
      s->push(std::move(n));
    }
    avahi_service_resolver_free(r);
  }
};

AvahiService::AvahiService() : state_(std::make_unique<State>()) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  state_->wake_fd = wake_fd_;
}

AvahiService::~AvahiService() {
  if (state_->poll) avahi_threaded_poll_stop(state_->poll);
  if (state_->client) avahi_client_free(state_->client);  // frees the group (goodbye) and the browser
  if (state_->poll) avahi_threaded_poll_free(state_->poll);
  if (wake_fd_ >= 0) close(wake_fd_);
}

bool AvahiService::start(const std::string& type, const std::string& instance, uint16_t port,
                         const std::vector<std::string>& txt, std::string* why) {
  State& s = *state_;
  s.type = type;
  s.instance = instance;
  s.port = port;
  s.txt = txt;
  if (wake_fd_ < 0 || !(s.poll = avahi_threaded_poll_new())) {
    if (why) *why = "cannot make avahi's event loop";
    return false;
  }
  int error = 0;
  // Fails at once when avahi-daemon is not on the system bus (or there is no bus).
  s.client =
      avahi_client_new(avahi_threaded_poll_get(s.poll), AvahiClientFlags(0), State::on_client, &s, &error);
  if (!s.client) {
    if (why) *why = std::string("avahi-daemon: ") + avahi_strerror(error);
    return false;
  }
  if (avahi_threaded_poll_start(s.poll) < 0) {
    if (why) *why = "cannot start avahi's thread";
    return false;
  }
  return true;
}

std::vector<AvahiNews> AvahiService::take() {
  uint64_t count = 0;
  (void)!read(wake_fd_, &count, sizeof count);
  std::lock_guard<std::mutex> lock(state_->mutex);
  std::vector<AvahiNews> out;
  out.swap(state_->news);
  return out;
}

}  // namespace peerlink::lan
