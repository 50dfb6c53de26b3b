package handlers

import (
	"net/netip"
	"time"
)

// EventKind names a lifecycle event of a client or server.
type EventKind string

// Lifecycle events.
const (
	EventConnecting   EventKind = "connecting"
	EventConnected    EventKind = "connected"
	EventAddress      EventKind = "address-assigned"
	EventReconnecting EventKind = "reconnecting"
	EventPeerUp       EventKind = "peer-up"
	EventPeerDown     EventKind = "peer-down"
	EventClosed       EventKind = "closed"
	EventRenegotiated EventKind = "renegotiated"
	EventAuthFailed   EventKind = "auth-failed"
)

// Event is delivered to ClientParams.OnEvent and ServerParams.OnEvent. Hooks run on
// the reactor and must not block.
type Event struct {
	Kind   EventKind
	Time   time.Time
	Remote string         // the server (client side) or the client's real address
	Peer   string         // common name of a server's client
	Addrs  []netip.Prefix // tunnel addresses (address-assigned, peer-up)
	Reason string
	// DHCPOptions are the pushed dhcp-option arguments (client, connected).
	DHCPOptions [][]string
	// Handshake is the time from the first packet to the data keys (connected, peer-up).
	Handshake time.Duration
}
