package ovpn

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"time"

	"weft/controlwrap"
	"weft/wire"
)

// Cookies computes the session ids a UDP server hands to new clients without keeping
// any state (OpenVPN 2.6's HMAC cookie, §4, §6.2): the id is an HMAC of a time slot,
// the client's address and its session id, so only a client that really receives
// packets at its source address can complete the handshake, and spoofed resets cost
// the server one HMAC and no memory.
type Cookies struct {
	key    [32]byte
	period int64 // seconds per time slot
}

// NewCookies creates a cookie generator with a random key. handWindow is the
// handshake window (cookies stay valid for roughly 2 to 3 half-windows).
func NewCookies(rand io.Reader, handWindow time.Duration) (*Cookies, error) {
	c := &Cookies{period: int64((handWindow/time.Second + 1) / 2)}
	if c.period < 1 {
		c.period = 1
	}
	if _, err := io.ReadFull(rand, c.key[:]); err != nil {
		return nil, fmt.Errorf("cookie key: %w", err)
	}
	return c, nil
}

func (c *Cookies) id(slot int64, addr netip.AddrPort, client wire.SessionID) wire.SessionID {
	m := hmac.New(sha256.New, c.key[:])
	var b [4 + 16 + 2]byte
	binary.BigEndian.PutUint32(b[:], uint32(slot))
	a16 := addr.Addr().Unmap().As16()
	copy(b[4:], a16[:])
	binary.BigEndian.PutUint16(b[20:], addr.Port())
	m.Write(b[:])
	m.Write(client[:])
	var sid wire.SessionID
	copy(sid[:], m.Sum(nil))
	if sid.IsZero() {
		sid[7] = 1
	}
	return sid
}

// ID returns the server session id for a client at addr with session id client.
func (c *Cookies) ID(now time.Time, addr netip.AddrPort, client wire.SessionID) wire.SessionID {
	return c.id(now.Unix()/c.period, addr, client)
}

// Valid reports whether server is a cookie this server handed to that client in the
// last few time slots.
func (c *Cookies) Valid(now time.Time, addr netip.AddrPort, client, server wire.SessionID) bool {
	slot := now.Unix() / c.period
	for d := int64(-2); d <= 1; d++ {
		if hmac.Equal(server[:], func() []byte { s := c.id(slot+d, addr, client); return s[:] }()) {
			return true
		}
	}
	return false
}

// StatelessReset builds the HARD_RESET_SERVER_V2 a UDP server sends in answer to a
// client's reset (msg-id 0) without creating state: own session id = cookie, ACK of
// the client's msg 0, msg-id 0, replay-id 1. w must be a wrapper used only for these
// replies.
func StatelessReset(now time.Time, w controlwrap.Wrapper, cookie, client wire.SessionID) ([]byte, error) {
	if cs, ok := w.(controlwrap.CounterSetter); ok {
		cs.SetSendCounter(0)
	}
	cp := wire.ControlPacket{
		Opcode:          wire.OpHardResetServerV2,
		SessionID:       cookie,
		Acks:            []uint32{0},
		RemoteSessionID: client,
	}
	return w.Wrap(now, nil, cp.Append(nil))
}

// NewServerSessionFromCookie creates the server side of a session whose resets were
// exchanged statelessly: the client's reset (msg 0) was acknowledged and our reset
// (msg 0, replay-id 1) was sent and, as the client's packet proves, received. The
// caller then passes that packet to HandlePacket.
func NewServerSessionFromCookie(cfg Config, now time.Time, cookie, client wire.SessionID) (*Session, error) {
	cfg.Role = RoleServer
	s, err := NewSession(cfg, now)
	if err != nil {
		return nil, err
	}
	s.localSID = cookie
	s.remoteSID = client
	s.haveRemote = true
	if cs, ok := s.wrap.(controlwrap.CounterSetter); ok {
		cs.SetSendCounter(1)
	}
	ks := s.newKeyState(now, 0)
	ks.rcv.SetExpected(1)
	ks.snd.SetNextID(1)
	s.nextKeyID = 1
	if err := s.startTLS(ks); err != nil {
		return nil, err
	}
	return s, nil
}
