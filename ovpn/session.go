// Package ovpn is weft's OpenVPN 2.x session engine. It is pure (sans-IO): it takes
// packets and the current time, and returns packets to send on the link, packets to
// deliver to the tunnel device, events, and the time it next needs to be called. It
// never touches a socket, a goroutine or the clock, so it is deterministic and can be
// driven by tests, fuzzers and simulations as well as by the reactor.
//
// A Session is one OpenVPN session (one pair of session ids) with its key states
// (key_id 0 first, then 1..7 wrapping to 1 on every renegotiation), each with its own
// reliability layer, TLS session and data-channel keys.
package ovpn

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"weft/compress"
	"weft/controlwrap"
	"weft/datachan"
	"weft/reliable"
	"weft/tlsengine"
	"weft/wire"
)

// Role is the TLS role of this end of the session.
type Role uint8

// Roles.
const (
	RoleClient Role = iota
	RoleServer
)

// Config holds everything a Session needs. Durations of zero take OpenVPN's defaults.
type Config struct {
	Role Role
	// TLS is the engine and TLSConfig the local identity and peer checks.
	TLS       tlsengine.Engine
	TLSConfig *tlsengine.Config
	// Wrapper protects control packets (none, tls-auth or tls-crypt); one per session.
	Wrapper controlwrap.Wrapper
	// DataCiphers lists acceptable data ciphers in preference order.
	DataCiphers []datachan.Cipher
	// Fallback is used when the peer negotiates no cipher (data-ciphers-fallback).
	Fallback *datachan.Cipher
	// DisableEKM stops the client from announcing TLS keying-material export, so the
	// legacy PRF derivation is used (weft's `key-derivation prf`).
	DisableEKM bool
	// Pull makes a client ask for and wait for PUSH_REPLY.
	Pull bool
	// Options is the OCC options string sent in key method 2.
	Options string
	// Compression is the local compression configuration (comp-lzo, compress,
	// allow-compression); a client merges what the server pushes.
	Compression compress.Spec
	// PeerInfoExtra is appended to the generated peer-info (KEY=VALUE lines).
	PeerInfoExtra string
	Username      string
	Password      string
	// TCP selects TCP semantics (no OCC exit messages).
	TCP bool

	TLSTimeout   time.Duration // default 2 s
	HandWindow   time.Duration // default 60 s
	TranWindow   time.Duration // default 3600 s
	RenegSec     time.Duration // default 3600 s; negative disables
	RenegBytes   int64         // 0: off
	RenegPackets int64         // 0: off
	Ping         time.Duration
	PingRestart  time.Duration
	PingExit     time.Duration
	ReplayWindow int           // default 64
	ReplayExpire time.Duration // default 15 s
	// ControlMTU bounds control packets on the wire (OpenVPN's tls-mtu, 1250).
	ControlMTU int
	// ExplicitExitNotify is the number of OCC exit messages to send on close (UDP,
	// when cc-exit was not negotiated).
	ExplicitExitNotify int

	// Authorize (server) decides whether a client may connect once its key method 2
	// message arrived, and returns the options to push to it; the engine appends
	// peer-id, cipher and protocol-flags. An error is sent as AUTH_FAILED.
	Authorize func(ci *ClientInfo) ([]string, error)
	// PeerID (server) is the peer-id assigned to this client (-1: none).
	PeerID int32

	Rand   io.Reader
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.TLSTimeout == 0 {
		c.TLSTimeout = 2 * time.Second
	}
	if c.HandWindow == 0 {
		c.HandWindow = 60 * time.Second
	}
	if c.TranWindow == 0 {
		c.TranWindow = time.Hour
	}
	if c.RenegSec == 0 {
		c.RenegSec = time.Hour
	}
	if c.ReplayWindow == 0 {
		c.ReplayWindow = 64
	}
	if c.ReplayExpire == 0 {
		c.ReplayExpire = 15 * time.Second
	}
	if c.ControlMTU == 0 {
		c.ControlMTU = 1250
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if len(c.DataCiphers) == 0 {
		c.DataCiphers = []datachan.Cipher{datachan.AES256GCM, datachan.AES128GCM, datachan.ChaCha20Poly1305}
	}
}

// EventKind names what happened in a session.
type EventKind int

// Event kinds.
const (
	// EventConnected: the first data keys are installed; Pushed holds the server's
	// options (client) or nil.
	EventConnected EventKind = iota + 1
	// EventRenegotiated: a new key is ready (KeyID).
	EventRenegotiated
	// EventRestart: the session is over and should be replaced by a new one
	// (ping-restart, RESTART from the server, TLS failure, hand-window timeout).
	EventRestart
	// EventHalt: the peer told us to stop (HALT), or ping-exit fired.
	EventHalt
	// EventAuthFailed: the server refused us (AUTH_FAILED); do not retry blindly.
	EventAuthFailed
	// EventFatal: a local configuration or negotiation error; retrying will not help.
	EventFatal
	// EventExit: the peer announced it is going away (EXIT or OCC exit).
	EventExit
)

func (k EventKind) String() string {
	switch k {
	case EventConnected:
		return "connected"
	case EventRenegotiated:
		return "renegotiated"
	case EventRestart:
		return "restart"
	case EventHalt:
		return "halt"
	case EventAuthFailed:
		return "auth-failed"
	case EventFatal:
		return "fatal"
	case EventExit:
		return "exit"
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// Event is something the driver of a session must act on.
type Event struct {
	Kind   EventKind
	Reason string
	KeyID  uint8
	Pushed *Pushed
}

// ClientInfo describes an authenticated client to the server's Authorize hook.
type ClientInfo struct {
	CommonName   string
	Certificates []*x509.Certificate
	Username     string
	Password     string
	PeerInfo     PeerInfo
	// Options is the client's OCC options string.
	Options string
}

// Stats counts what a session did.
type Stats struct {
	LinkIn, LinkOut         uint64 // packets
	LinkInBytes, LinkOutBy  uint64
	TunIn, TunOut           uint64 // packets from and to the tunnel device
	DropAuth, DropReplay    uint64 // data packets that failed authentication / replay
	DropMalformed           uint64
	DropControlAuth         uint64 // control packets failing tls-auth/tls-crypt
	DropNoKey               uint64 // data packets for a key we do not have
	DropSessionID           uint64
	ControlRetransmits      uint64
	Renegotiations          uint64
	HandshakeTime           time.Duration
	ReplayWarnings          uint64
	DataPacketsBeforeKeying uint64
}

type ksState uint8

const (
	ksInitial   ksState = iota
	ksPreStart          // own reset sent
	ksStart             // own reset ACKed; TLS runs
	ksActive            // key method 2 exchanged both ways and all our packets ACKed
	ksGenerated         // data keys installed
	ksError
)

type keyState struct {
	id       uint8
	state    ksState
	snd      *reliable.Sender
	rcv      *reliable.Receiver
	tls      tlsengine.Session
	early    [][]byte // ciphertext that arrived before TLS started
	tlsOut   []byte
	plain    []byte
	local    KeySource
	remote   *KeyMethod2
	km2Sent  bool
	start    time.Time
	readyAt  time.Time
	retireAt time.Time // zero while in use
	data     *datachan.Keys
	sendOK   bool
	ctr      keyCounters
}

// Session is one OpenVPN session.
type Session struct {
	cfg  Config
	log  *slog.Logger
	wrap controlwrap.Wrapper

	localSID, remoteSID wire.SessionID
	haveRemote          bool

	keys      []*keyState // newest first
	nextKeyID uint8

	started     time.Time
	connected   bool
	closed      bool
	pushed      *Pushed
	pushAccum   *Pushed
	pushReqAt   time.Time
	cipher      datachan.Cipher
	ekm         bool
	peerID      int32
	ccExit      bool
	ping        time.Duration
	pingRestart time.Duration
	pingExit    time.Duration
	dp          DataPath
	exitSent    bool
	peerInfoIn  PeerInfo
	compWarning string
	pushSent    bool
	pushOpts    []string
	authErr     string
	client      *ClientInfo

	out    [][]byte
	tun    [][]byte
	events []Event
	stats  Stats
	maxCtl int
}

// NewSession creates a session and, for a client, queues its hard reset.
func NewSession(cfg Config, now time.Time) (*Session, error) {
	cfg.defaults()
	if cfg.TLS == nil || cfg.TLSConfig == nil {
		return nil, errors.New("ovpn: a TLS engine and TLS config are required")
	}
	if cfg.Wrapper == nil {
		cfg.Wrapper = controlwrap.NewNone()
	}
	s := &Session{
		cfg:         cfg,
		log:         cfg.Logger,
		wrap:        cfg.Wrapper,
		started:     now,
		peerID:      -1,
		ping:        cfg.Ping,
		pingRestart: cfg.PingRestart,
		pingExit:    cfg.PingExit,
	}
	s.dp.lastRecv.Store(now.UnixNano())
	s.dp.lastSent.Store(now.UnixNano())
	if _, err := io.ReadFull(cfg.Rand, s.localSID[:]); err != nil {
		return nil, fmt.Errorf("ovpn: session id: %w", err)
	}
	if s.localSID.IsZero() {
		s.localSID[7] = 1
	}
	// Room for a TLS chunk: control MTU less IPv6+UDP, opcode, session id, up to four
	// ACKs with the peer session id, the message id, and the wrapping.
	s.maxCtl = cfg.ControlMTU - 48 - 1 - 8 - (1 + 4*reliable.MaxPiggyback + 8) - 4 - s.wrap.Overhead()
	if s.maxCtl < 256 {
		s.maxCtl = 256
	}
	if cfg.Role == RoleServer {
		s.peerID = cfg.PeerID
	}
	if cfg.Role == RoleClient {
		ks := s.newKeyState(now, 0)
		ks.snd.Queue(uint8(wire.OpHardResetClientV2), nil)
		ks.state = ksPreStart
		s.nextKeyID = 1
		s.process(now)
	}
	return s, nil
}

// LocalSessionID returns this end's session id.
func (s *Session) LocalSessionID() wire.SessionID { return s.localSID }

// Connected reports whether data keys are installed and the session carries traffic.
func (s *Session) Connected() bool { return s.connected }

// Pushed returns the options the server pushed (nil before the PUSH_REPLY).
func (s *Session) Pushed() *Pushed { return s.pushed }

// Cipher returns the negotiated data cipher.
func (s *Session) Cipher() datachan.Cipher { return s.cipher }

// Stats returns a copy of the session's counters. Call it on the session's shard;
// other goroutines combine a snapshot with DataPath().Merge.
func (s *Session) Stats() Stats {
	return s.dp.Merge(s.stats)
}

// CompressionWarning returns the VORACLE warning when this session sends compressed
// data ("" otherwise); the driver logs it once.
func (s *Session) CompressionWarning() string { return s.compWarning }

// ControlStats returns the counters kept on the session's shard, without the data
// path's (combine them with DataPath().Merge).
func (s *Session) ControlStats() Stats { return s.stats }

// DataPath returns the session's concurrent data path.
func (s *Session) DataPath() *DataPath { return &s.dp }

// Outgoing returns the packets to send on the link and empties the queue. The slices
// stay valid until the next call into the session.
func (s *Session) Outgoing() [][]byte {
	o := s.out
	s.out = s.out[:0]
	return o
}

// Delivered returns the decrypted IP packets for the tunnel device and empties the queue.
func (s *Session) Delivered() [][]byte {
	t := s.tun
	s.tun = s.tun[:0]
	return t
}

// Events returns what happened since the last call.
func (s *Session) Events() []Event {
	e := s.events
	s.events = nil
	return e
}

func (s *Session) newKeyState(now time.Time, id uint8) *keyState {
	ks := &keyState{
		id:    id,
		snd:   reliable.NewSender(s.cfg.TLSTimeout),
		rcv:   reliable.NewReceiver(),
		start: now,
	}
	s.keys = append([]*keyState{ks}, s.keys...)
	// Keep the newest key, the one in use and a lame duck; older ones go.
	if len(s.keys) > 3 {
		for _, old := range s.keys[3:] {
			old.close()
		}
		s.keys = s.keys[:3]
		s.publish()
	}
	return ks
}

func (ks *keyState) close() {
	if ks.tls != nil {
		ks.tls.Close()
	}
	ks.state = ksError
}

func (s *Session) keyByID(id uint8) *keyState {
	for _, k := range s.keys {
		if k.id == id && k.state != ksError {
			return k
		}
	}
	return nil
}

func (s *Session) emit(e Event) { s.events = append(s.events, e) }

// fail ends the session with a restart-type event.
func (s *Session) fail(kind EventKind, reason string) {
	if s.closed {
		return
	}
	s.closed = true
	s.dp.set.Store(nil)
	s.emit(Event{Kind: kind, Reason: reason})
}

// HandlePacket processes one packet received from the link.
func (s *Session) HandlePacket(now time.Time, pkt []byte) {
	if s.closed || len(pkt) == 0 {
		return
	}
	op, _ := wire.SplitHeader(pkt[0])
	if op.IsData() {
		s.handleData(now, pkt)
		return
	}
	s.stats.LinkIn++
	s.stats.LinkInBytes += uint64(len(pkt))
	if !op.IsControl() {
		s.stats.DropMalformed++
		return
	}
	plain, err := s.wrap.Unwrap(now, pkt)
	if err != nil {
		s.stats.DropControlAuth++
		s.log.Debug("control packet dropped", "err", err)
		return
	}
	cp, err := wire.ParseControl(plain)
	if err != nil {
		s.stats.DropMalformed++
		s.log.Debug("malformed control packet", "err", err)
		return
	}
	s.handleControl(now, &cp)
	s.process(now)
}

func (s *Session) handleControl(now time.Time, cp *wire.ControlPacket) {
	switch cp.Opcode {
	case wire.OpHardResetClientV2, wire.OpHardResetClientV3:
		if s.cfg.Role == RoleClient {
			s.stats.DropMalformed++
			return
		}
	case wire.OpHardResetServerV2:
		if s.cfg.Role == RoleServer {
			s.stats.DropMalformed++
			return
		}
	case wire.OpControlWKCV1:
		s.stats.DropMalformed++
		return
	}
	if len(cp.Acks) > 0 && cp.RemoteSessionID != s.localSID {
		s.stats.DropSessionID++
		return
	}
	isReset := cp.Opcode == wire.OpHardResetServerV2 || cp.Opcode == wire.OpHardResetClientV2
	if s.haveRemote && cp.SessionID != s.remoteSID {
		// A client may see a new server session id while its first key has not started
		// TLS yet (the server's stateless reset changes with time); accept it then.
		k0 := s.keyByID(0)
		if !(isReset && cp.KeyID == 0 && k0 != nil && k0.state <= ksPreStart && !s.connected) {
			s.stats.DropSessionID++
			return
		}
	}
	if isReset && cp.KeyID == 0 {
		if !s.haveRemote || cp.SessionID != s.remoteSID {
			s.remoteSID = cp.SessionID
			s.haveRemote = true
		}
	}
	if !s.haveRemote {
		s.stats.DropSessionID++
		return
	}
	s.dp.touchRecv(now)

	ks := s.keyByID(cp.KeyID)
	if cp.Opcode == wire.OpHardResetClientV2 && cp.KeyID == 0 && ks == nil && s.cfg.Role == RoleServer {
		ks = s.newKeyState(now, 0)
		ks.snd.Queue(uint8(wire.OpHardResetServerV2), nil)
		ks.state = ksPreStart
		s.nextKeyID = 1
	}
	if cp.Opcode == wire.OpSoftResetV1 && (len(s.keys) == 0 || s.keys[0].id != cp.KeyID) {
		// The peer starts a renegotiation.
		cur := s.newestGenerated()
		if cur == nil || cur != s.keys[0] {
			s.log.Debug("soft reset ignored: no active key", "key_id", cp.KeyID)
			return
		}
		if cp.KeyID != s.nextKeyID {
			s.log.Warn("peer renegotiates with an unexpected key id", "key_id", cp.KeyID, "want", s.nextKeyID)
		}
		ks = s.startRenegotiation(now, cp.KeyID)
	}
	if ks == nil {
		s.stats.DropNoKey++
		return
	}
	if ks != s.keys[0] && cp.Opcode != wire.OpAckV1 {
		// Only the newest key state takes control messages; ACKs for older ones are
		// still useful.
		s.stats.DropNoKey++
		return
	}
	for _, a := range cp.Acks {
		ks.snd.Ack(a)
	}
	if cp.Opcode == wire.OpAckV1 {
		return
	}
	res := ks.rcv.Receive(reliable.Message{ID: cp.MsgID, Opcode: uint8(cp.Opcode), Payload: cp.Payload})
	if res == reliable.Accepted && (isReset || cp.Opcode == wire.OpSoftResetV1) {
		ks.snd.Burst(now)
	}
}

func (s *Session) newestGenerated() *keyState {
	for _, k := range s.keys {
		if k.state == ksGenerated {
			return k
		}
	}
	return nil
}

func (s *Session) startRenegotiation(now time.Time, id uint8) *keyState {
	ks := s.newKeyState(now, id)
	ks.snd.Queue(uint8(wire.OpSoftResetV1), nil)
	ks.state = ksPreStart
	s.nextKeyID = id%7 + 1
	s.stats.Renegotiations++
	s.log.Info("renegotiating data channel key", "key_id", id)
	return ks
}

// Renegotiate starts a renegotiation now (as reneg-sec would).
func (s *Session) Renegotiate(now time.Time) {
	if s.closed || len(s.keys) == 0 || s.keys[0].state != ksGenerated {
		return
	}
	s.startRenegotiation(now, s.nextKeyID)
	s.process(now)
}

// process advances every key state and emits the resulting packets.
func (s *Session) process(now time.Time) {
	if s.closed {
		return
	}
	for _, ks := range s.keys {
		if ks.state == ksError {
			continue
		}
		s.processKey(now, ks)
		if s.closed {
			// Still acknowledge what arrived (an EXIT, a RESTART) so the peer
			// does not retransmit it.
			break
		}
	}
	for _, ks := range s.keys {
		if ks.state != ksError {
			s.flushKey(now, ks)
		}
	}
}

func (s *Session) processKey(now time.Time, ks *keyState) {
	if ks.state == ksPreStart && ks.snd.Acked(0) {
		if err := s.startTLS(ks); err != nil {
			s.keyFailed(ks, err.Error())
			return
		}
	}
	for {
		m, ok := ks.rcv.Next()
		if !ok {
			break
		}
		switch wire.Opcode(m.Opcode) {
		case wire.OpControlV1:
			if ks.tls == nil {
				ks.early = append(ks.early, m.Payload)
				continue
			}
			if err := ks.tls.PutCiphertext(m.Payload); err != nil {
				s.keyFailed(ks, "TLS handshake failed: "+err.Error())
				return
			}
		default:
			// Reset packets carry no TLS data (early-negotiation TLVs are ignored).
		}
	}
	if ks.tls == nil {
		return
	}
	if ks.tls.HandshakeComplete() && !ks.km2Sent && s.cfg.Role == RoleClient {
		if err := s.sendKeyMethod(ks); err != nil {
			s.keyFailed(ks, err.Error())
			return
		}
	}
	ks.plain = append(ks.plain, ks.tls.ReadPlaintext()...)
	if ks.remote == nil && len(ks.plain) > 0 {
		m, n, err := ParseKeyMethod2(ks.plain, s.cfg.Role == RoleServer)
		switch {
		case errors.Is(err, ErrIncomplete):
		case err != nil:
			s.keyFailed(ks, "TLS Error: "+err.Error())
			return
		default:
			ks.remote = m
			ks.plain = ks.plain[n:]
			if s.cfg.Role == RoleServer && !ks.km2Sent {
				if err := s.sendKeyMethod(ks); err != nil {
					s.keyFailed(ks, err.Error())
					return
				}
				if ks.id == 0 {
					s.peerInfoIn = ParsePeerInfo(m.PeerInfo)
					s.authorize(ks, m)
					if s.closed {
						return
					}
				}
			}
		}
	}
	if ks.remote != nil {
		for {
			i := bytes.IndexByte(ks.plain, 0)
			if i < 0 {
				break
			}
			msg := strings.TrimRight(string(ks.plain[:i]), "\r\n")
			ks.plain = ks.plain[i+1:]
			if msg != "" {
				s.handleMessage(now, ks, msg)
				if s.closed {
					return
				}
			}
		}
	}
	if err := ks.tls.Err(); err != nil && ks.state < ksGenerated {
		s.keyFailed(ks, "TLS handshake failed: "+err.Error())
		return
	}
	s.packetize(ks)
	if ks.state == ksStart && ks.km2Sent && ks.remote != nil && ks.snd.Pending() == 0 {
		ks.state = ksActive
		s.keyActive(now, ks)
		if ks.tls != nil {
			s.packetize(ks)
		}
	}
}

// packetize cuts the TLS output of ks into control messages as the send window allows.
func (s *Session) packetize(ks *keyState) {
	ks.tlsOut = append(ks.tlsOut, ks.tls.TakeCiphertext()...)
	for len(ks.tlsOut) > 0 && ks.snd.CanSend() {
		n := min(len(ks.tlsOut), s.maxCtl)
		chunk := append([]byte(nil), ks.tlsOut[:n]...)
		ks.tlsOut = ks.tlsOut[n:]
		ks.snd.Queue(uint8(wire.OpControlV1), chunk)
	}
	if len(ks.tlsOut) == 0 {
		ks.tlsOut = nil
	}
}

func (s *Session) startTLS(ks *keyState) error {
	sess, err := s.cfg.TLS.NewSession(s.cfg.TLSConfig)
	if err != nil {
		return fmt.Errorf("TLS setup: %w", err)
	}
	ks.tls = sess
	ks.state = ksStart
	for _, b := range ks.early {
		if err := sess.PutCiphertext(b); err != nil {
			return fmt.Errorf("TLS handshake failed: %w", err)
		}
	}
	ks.early = nil
	return nil
}

func (s *Session) sendKeyMethod(ks *keyState) error {
	if _, err := io.ReadFull(s.cfg.Rand, ks.local.PreMaster[:]); err != nil {
		return fmt.Errorf("random: %w", err)
	}
	if _, err := io.ReadFull(s.cfg.Rand, ks.local.Random1[:]); err != nil {
		return fmt.Errorf("random: %w", err)
	}
	if _, err := io.ReadFull(s.cfg.Rand, ks.local.Random2[:]); err != nil {
		return fmt.Errorf("random: %w", err)
	}
	m := &KeyMethod2{Source: ks.local, Options: s.cfg.Options}
	if s.cfg.Role == RoleClient {
		m.Username, m.Password = s.cfg.Username, s.cfg.Password
		m.PeerInfo = s.peerInfo()
	}
	b := AppendKeyMethod2(nil, m, s.cfg.Role == RoleClient)
	if len(b) > MaxKeyMethodLen {
		return fmt.Errorf("key method 2 message of %d bytes exceeds %d", len(b), MaxKeyMethodLen)
	}
	if err := ks.tls.WritePlaintext(b); err != nil {
		return fmt.Errorf("TLS write: %w", err)
	}
	ks.km2Sent = true
	return nil
}

// peerInfo builds the client's peer-info block (§8.3). It announces only what weft
// implements.
func (s *Session) peerInfo() string {
	proto := IVProtoDataV2 | IVProtoRequestPush | IVProtoCCExit
	if !s.cfg.DisableEKM {
		proto |= IVProtoTLSKeyExport
	}
	var names []string
	gcm128, gcm256 := false, false
	for _, c := range s.cfg.DataCiphers {
		names = append(names, c.String())
		gcm128 = gcm128 || c == datachan.AES128GCM
		gcm256 = gcm256 || c == datachan.AES256GCM
	}
	var b strings.Builder
	fmt.Fprintf(&b, "IV_VER=2.6.14\nIV_PLAT=linux\nIV_TCPNL=1\nIV_MTU=1600\n")
	if gcm128 && gcm256 {
		b.WriteString("IV_NCP=2\n")
	}
	fmt.Fprintf(&b, "IV_CIPHERS=%s\nIV_PROTO=%d\n", strings.Join(names, ":"), proto)
	for _, l := range compress.PeerInfo(s.cfg.Compression) {
		b.WriteString(l + "\n")
	}
	b.WriteString("IV_GUI_VER=weft\n")
	if s.cfg.PeerInfoExtra != "" {
		b.WriteString(strings.TrimRight(s.cfg.PeerInfoExtra, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

// keyActive runs when key method 2 is done both ways for ks.
func (s *Session) keyActive(now time.Time, ks *keyState) {
	if ks.id == 0 && s.cfg.Role == RoleClient && s.cfg.Pull && !s.connected {
		if s.pushed == nil && s.pushReqAt.IsZero() {
			s.pushReqAt = now.Add(time.Second)
		}
		return
	}
	if ks.id == 0 && s.cfg.Role == RoleServer {
		if pi := s.peerInfoIn; pi != nil {
			if proto, _ := strconv.Atoi(pi["IV_PROTO"]); proto&IVProtoRequestPush != 0 {
				s.sendPushReply(now, ks)
			}
		}
		return
	}
	if ks.id == 0 && s.cfg.Role == RoleClient && !s.cfg.Pull {
		s.fail(EventFatal, "peer-to-peer TLS mode is not supported yet (use `client` or `pull`)")
		return
	}
	s.generateKeys(now, ks)
}

func (s *Session) generateKeys(now time.Time, ks *keyState) {
	var k2 datachan.Key2
	if s.ekm {
		b, err := ks.tls.ExportKeyingMaterial(datachan.EKMLabel, nil, len(k2))
		if err != nil {
			s.keyFailed(ks, "TLS keying material export failed: "+err.Error())
			return
		}
		copy(k2[:], b)
	} else {
		var c, sv KeySource
		var cSID, sSID [8]byte
		if s.cfg.Role == RoleClient {
			c, sv = ks.local, ks.remote.Source
			cSID, sSID = s.localSID, s.remoteSID
		} else {
			c, sv = ks.remote.Source, ks.local
			cSID, sSID = s.remoteSID, s.localSID
		}
		k2 = datachan.PRFKeys(c.PreMaster, c.Random1, sv.Random1, c.Random2, sv.Random2, cSID, sSID)
	}
	keys, err := datachan.NewKeys(s.cipher, &k2, s.cfg.Role == RoleServer, s.cfg.ReplayWindow, s.cfg.ReplayExpire)
	clear(k2[:])
	if err != nil {
		s.keyFailed(ks, "data channel keys: "+err.Error())
		return
	}
	ks.data = keys
	ks.state = ksGenerated
	ks.readyAt = now
	if ks.id == 0 {
		ks.sendOK = true
	}
	ver, suite := ks.tls.Version()
	s.log.Info("data channel key ready", "key_id", ks.id, "cipher", s.cipher.String(), "ekm", s.ekm, "tls", ver, "suite", suite)
	if !s.connected {
		s.connected = true
		s.publish()
		s.stats.HandshakeTime = now.Sub(s.started)
		s.emit(Event{Kind: EventConnected, Pushed: s.pushed})
		return
	}
	s.publish()
	s.emit(Event{Kind: EventRenegotiated, KeyID: ks.id})
}

func (s *Session) keyFailed(ks *keyState, reason string) {
	ks.close()
	if !s.connected || ks.id == 0 {
		s.fail(EventRestart, reason)
		return
	}
	s.log.Warn("key renegotiation failed", "key_id", ks.id, "reason", reason)
}

// handleMessage dispatches one control-channel text message.
func (s *Session) handleMessage(now time.Time, ks *keyState, msg string) {
	switch {
	case strings.HasPrefix(msg, "PUSH_REPLY"):
		if s.cfg.Role != RoleClient || s.pushed != nil {
			return
		}
		if s.pushAccum == nil {
			s.pushAccum = NewPushed()
		}
		body := strings.TrimPrefix(strings.TrimPrefix(msg, "PUSH_REPLY"), ",")
		more, err := ApplyPushOptions(s.pushAccum, body)
		if err != nil {
			s.fail(EventFatal, "bad PUSH_REPLY: "+err.Error())
			return
		}
		if !more {
			s.finishPush(now)
		}
	case strings.HasPrefix(msg, "AUTH_FAILED"):
		reason := strings.TrimPrefix(strings.TrimPrefix(msg, "AUTH_FAILED"), ",")
		if reason == "" {
			reason = "the server refused this client (no reason given)"
		}
		s.fail(EventAuthFailed, "AUTH_FAILED: "+reason)
	case strings.HasPrefix(msg, "RESTART"):
		s.fail(EventRestart, "server requested restart ("+msg+")")
	case strings.HasPrefix(msg, "HALT"):
		s.fail(EventHalt, "server requested halt ("+msg+")")
	case msg == "PUSH_REQUEST":
		if s.cfg.Role == RoleServer && ks.id == 0 && ks.state >= ksActive {
			s.sendPushReply(now, ks)
		}
	case msg == "EXIT":
		s.fail(EventExit, "peer sent EXIT")
	case strings.HasPrefix(msg, "INFO"), strings.HasPrefix(msg, "AUTH_PENDING"):
		s.log.Info("server message", "msg", msg)
	default:
		s.log.Debug("unhandled control message", "msg", msg)
	}
}

func (s *Session) finishPush(now time.Time) {
	p := s.pushAccum
	s.pushAccum = nil
	cipher, err := s.chooseCipher(p.Cipher)
	if err != nil {
		s.fail(EventFatal, err.Error())
		return
	}
	s.cipher = cipher
	s.ekm = p.EKM && !s.cfg.DisableEKM
	s.peerID = p.PeerID
	s.ccExit = p.CCExit
	if p.Ping >= 0 {
		s.ping = time.Duration(p.Ping) * time.Second
	}
	if p.PingRestart >= 0 {
		s.pingRestart = time.Duration(p.PingRestart) * time.Second
	}
	if p.PingExit >= 0 {
		s.pingExit = time.Duration(p.PingExit) * time.Second
	}
	spec, err := s.cfg.Compression.Merge(p.Compression)
	if err == nil {
		err = s.dp.setFraming(spec)
	}
	if err != nil {
		s.fail(EventFatal, "compression: "+err.Error())
		return
	}
	s.compWarning = spec.Warning()
	s.pushed = p
	for _, ig := range p.Ignored {
		s.log.Debug("pushed option ignored", "option", ig)
	}
	ks := s.keyByID(0)
	if ks == nil || ks.state == ksError {
		s.fail(EventRestart, "key 0 lost before PUSH_REPLY")
		return
	}
	s.generateKeys(now, ks)
}

// authorize (server) runs the Authorize hook for key 0's client.
func (s *Session) authorize(ks *keyState, m *KeyMethod2) {
	ci := &ClientInfo{Username: m.Username, Password: m.Password, PeerInfo: s.peerInfoIn, Options: m.Options}
	if certs := ks.tls.PeerCertificates(); len(certs) > 0 {
		ci.Certificates = certs
		ci.CommonName = certs[0].Subject.CommonName
	}
	s.client = ci
	if s.cfg.Authorize == nil {
		return
	}
	opts, err := s.cfg.Authorize(ci)
	if err != nil {
		s.authErr = err.Error()
		return
	}
	s.pushOpts = opts
}

// Client returns what the server knows about its client (nil before key method 2).
func (s *Session) Client() *ClientInfo { return s.client }

// SendRestart (server) tells the client to reconnect ("RESTART"; with next set,
// "RESTART,[N]" asks it to try its next remote).
func (s *Session) SendRestart(now time.Time, next bool) {
	if s.closed || len(s.keys) == 0 || s.keys[0].tls == nil {
		return
	}
	msg := "RESTART"
	if next {
		msg = "RESTART,[N]"
	}
	s.writeMessage(s.keys[0], msg)
	s.process(now)
}

// sendPushReply (server) negotiates the data cipher with the client, pushes its
// options and installs the key_id 0 data keys (§14, §13.2).
func (s *Session) sendPushReply(now time.Time, ks *keyState) {
	if s.pushSent {
		return
	}
	s.pushSent = true
	if s.authErr != "" {
		s.writeMessage(ks, "AUTH_FAILED,"+s.authErr)
		s.log.Warn("client refused", "reason", s.authErr)
		s.emit(Event{Kind: EventAuthFailed, Reason: s.authErr})
		return
	}
	pi := s.peerInfoIn
	proto, _ := strconv.Atoi(pi["IV_PROTO"])
	var clientCiphers []string
	if v := pi["IV_CIPHERS"]; v != "" {
		clientCiphers = strings.Split(v, ":")
	} else if n, _ := strconv.Atoi(pi["IV_NCP"]); n >= 2 {
		clientCiphers = []string{"AES-256-GCM", "AES-128-GCM"}
	}
	var chosen *datachan.Cipher
	for _, c := range s.cfg.DataCiphers {
		for _, n := range clientCiphers {
			if strings.EqualFold(n, c.String()) {
				chosen = &c
				break
			}
		}
		if chosen != nil {
			break
		}
	}
	if chosen == nil && len(clientCiphers) == 0 && s.client != nil {
		// Poor man's NCP: a client without cipher information offers the cipher
		// of its OCC options string.
		for _, f := range strings.Split(s.client.Options, ",") {
			if name, ok := strings.CutPrefix(f, "cipher "); ok {
				if c, err := datachan.ParseCipher(name); err == nil {
					for _, d := range s.cfg.DataCiphers {
						if d == c {
							chosen = &c
						}
					}
				}
			}
		}
	}
	if chosen == nil && len(clientCiphers) == 0 && s.cfg.Fallback != nil {
		chosen = s.cfg.Fallback
	}
	if chosen == nil {
		s.writeMessage(ks, "AUTH_FAILED,Data channel cipher negotiation failed (no shared cipher)")
		s.log.Warn("client has no cipher in common", "client_ciphers", strings.Join(clientCiphers, ":"))
		s.emit(Event{Kind: EventAuthFailed, Reason: "no shared cipher"})
		return
	}
	s.cipher = *chosen
	s.ekm = proto&IVProtoTLSKeyExport != 0 && !s.cfg.DisableEKM
	s.ccExit = proto&IVProtoCCExit != 0
	opts := append([]string(nil), s.pushOpts...)
	usesLZO := s.client != nil && strings.Contains(s.client.Options+",", ",comp-lzo,")
	var lines []string
	for k, v := range pi {
		lines = append(lines, k+"="+v)
	}
	spec, push := s.cfg.Compression.Migrate(usesLZO, lines)
	if push != "" {
		opts = append(opts, push)
	}
	if err := s.dp.setFraming(spec); err != nil {
		s.writeMessage(ks, "AUTH_FAILED,compression configuration error")
		s.emit(Event{Kind: EventAuthFailed, Reason: "compression: " + err.Error()})
		return
	}
	s.compWarning = spec.Warning()
	if s.peerID >= 0 && proto&IVProtoDataV2 != 0 {
		opts = append(opts, fmt.Sprintf("peer-id %d", s.peerID))
	} else {
		s.peerID = -1
	}
	opts = append(opts, "cipher "+s.cipher.String())
	switch {
	case s.ekm && s.ccExit:
		opts = append(opts, "protocol-flags cc-exit tls-ekm")
	case s.ekm:
		opts = append(opts, "key-derivation tls-ekm")
	case s.ccExit:
		opts = append(opts, "protocol-flags cc-exit")
	}
	s.generateKeys(now, ks)
	s.writeMessage(ks, "PUSH_REPLY,"+strings.Join(opts, ","))
}

// chooseCipher validates the pushed cipher against our list (§14).
func (s *Session) chooseCipher(pushed string) (datachan.Cipher, error) {
	if pushed != "" {
		c, err := datachan.ParseCipher(pushed)
		if err != nil {
			return 0, fmt.Errorf("server pushed cipher %q which weft does not support: %w", pushed, err)
		}
		for _, d := range s.cfg.DataCiphers {
			if d == c {
				return c, nil
			}
		}
		return 0, fmt.Errorf("server pushed cipher %s, which is not in data-ciphers", c)
	}
	if ks := s.keyByID(0); ks != nil && ks.remote != nil {
		for _, f := range strings.Split(ks.remote.Options, ",") {
			if name, ok := strings.CutPrefix(f, "cipher "); ok {
				if c, err := datachan.ParseCipher(name); err == nil {
					for _, d := range s.cfg.DataCiphers {
						if d == c {
							return c, nil
						}
					}
				}
			}
		}
	}
	if s.cfg.Fallback != nil {
		return *s.cfg.Fallback, nil
	}
	return 0, errors.New("no shared cipher: the server pushed no cipher and data-ciphers-fallback is not set")
}

// flushKey emits due control packets and ACKs of one key state.
func (s *Session) flushKey(now time.Time, ks *keyState) {
	before := ks.snd.Retransmits()
	msgs := ks.snd.Due(now, nil)
	s.stats.ControlRetransmits += ks.snd.Retransmits() - before
	for _, m := range msgs {
		cp := wire.ControlPacket{
			Opcode:    wire.Opcode(m.Opcode),
			KeyID:     ks.id,
			SessionID: s.localSID,
			MsgID:     m.ID,
			Payload:   m.Payload,
		}
		if s.haveRemote {
			cp.Acks = ks.rcv.TakeAcks(nil, reliable.MaxPiggyback, true)
			cp.RemoteSessionID = s.remoteSID
		}
		s.sendControl(now, &cp)
	}
	if ks.rcv.HasAcks() && s.haveRemote {
		max := reliable.MaxAckPacket
		if s.wrap.Overhead() == 0 && !s.ekm {
			max = reliable.MaxPiggyback // SoftEther quirk (§6.1)
		}
		cp := wire.ControlPacket{
			Opcode:          wire.OpAckV1,
			KeyID:           ks.id,
			SessionID:       s.localSID,
			Acks:            ks.rcv.TakeAcks(nil, max, false),
			RemoteSessionID: s.remoteSID,
		}
		s.sendControl(now, &cp)
	}
}

func (s *Session) sendControl(now time.Time, cp *wire.ControlPacket) {
	plain := cp.Append(nil)
	pkt, err := s.wrap.Wrap(now, nil, plain)
	if err != nil {
		s.log.Warn("control packet wrap failed", "err", err)
		return
	}
	s.queueLink(now, pkt)
}

func (s *Session) queueLink(now time.Time, pkt []byte) {
	s.out = append(s.out, pkt)
	s.stats.LinkOut++
	s.stats.LinkOutBy += uint64(len(pkt))
	s.dp.lastSent.Store(now.UnixNano())
}

// publish makes the data path use the current keys. It first adopts a send-key switch
// the data path made on its own (the peer used the new key).
func (s *Session) publish() {
	if cur := s.dp.set.Load(); cur != nil && cur.send != nil {
		for _, k := range s.keys {
			if k.id == cur.sendID && k.data == cur.send {
				k.sendOK = true
			}
		}
	}
	if s.closed || !s.connected {
		s.dp.set.Store(nil)
		return
	}
	ks := &keySet{peerID: s.peerID}
	for _, k := range s.keys { // newest first
		if k.state != ksGenerated || k.data == nil {
			continue
		}
		if ks.recv[k.id] == nil {
			ks.recv[k.id], ks.recvCtr[k.id] = k.data, &k.ctr
		}
		if ks.send == nil {
			if k.sendOK {
				ks.send, ks.sendID, ks.sendCtr = k.data, k.id, &k.ctr
			} else if ks.pending == nil {
				ks.pending, ks.pendingID, ks.pendingCtr = k.data, k.id, &k.ctr
			}
		}
	}
	if ks.send == nil && ks.pending != nil {
		ks.send, ks.sendID, ks.sendCtr = ks.pending, ks.pendingID, ks.pendingCtr
		ks.pending = nil
	}
	s.dp.set.Store(ks)
}

// updateSendKey switches sending to the newest key once the peer surely has it.
func (s *Session) updateSendKey(now time.Time) {
	changed := false
	for _, k := range s.keys {
		if k.state == ksGenerated && !k.sendOK && !now.Before(k.start.Add(s.switchWait())) {
			k.sendOK = true
			changed = true
		}
	}
	if changed {
		s.publish()
	}
}

// switchWait is how long after a renegotiation starts the new key is used for sending
// even if the peer has not yet sent data on it: min(hand-window, reneg-sec/2), as
// OpenVPN does; by then the peer has certainly installed the key.
func (s *Session) switchWait() time.Duration {
	wait := s.cfg.HandWindow
	if s.cfg.RenegSec > 0 && s.cfg.RenegSec/2 < wait {
		wait = s.cfg.RenegSec / 2
	}
	return max(wait, time.Second)
}

// SendIP encrypts one IP packet from the tunnel device for the peer.
func (s *Session) SendIP(now time.Time, pkt []byte) {
	s.sendData(now, pkt, true)
}

func (s *Session) sendData(now time.Time, payload []byte, count bool) {
	if s.closed || !s.connected {
		if count {
			s.stats.DataPacketsBeforeKeying++
		}
		return
	}
	out, err := s.dp.seal(now, make([]byte, 0, len(payload)+datachan.Overhead(s.peerID)+16), payload)
	if err != nil {
		if !errors.Is(err, ErrNoKey) {
			s.Renegotiate(now)
		}
		return
	}
	if count {
		s.dp.tunIn.Add(1)
	}
	s.out = append(s.out, out)
}

func (s *Session) handleData(now time.Time, pkt []byte) {
	plain, kind, err := s.dp.Decrypt(now, make([]byte, 0, len(pkt)), pkt)
	if err != nil {
		return
	}
	switch kind {
	case DataIP:
		s.tun = append(s.tun, plain)
	case DataControl:
		s.handleOCC(now, plain[len(occMagic):])
	}
}

// Tick runs timers: retransmissions, keepalive, renegotiation and timeouts.
func (s *Session) Tick(now time.Time) {
	if s.closed {
		return
	}
	for _, ks := range s.keys {
		if ks.state != ksGenerated && ks.state != ksError && now.Sub(ks.start) >= s.cfg.HandWindow {
			s.keyFailed(ks, fmt.Sprintf("TLS key negotiation failed to occur within %d seconds (check your network connectivity)", int(s.cfg.HandWindow/time.Second)))
			if s.closed {
				return
			}
		}
		if ks.state == ksGenerated && !ks.retireAt.IsZero() && !now.Before(ks.retireAt) {
			ks.close()
			s.publish()
		}
	}
	lastRecv, lastSent := s.dp.recvTime(), s.dp.sentTime()
	if s.pingExit > 0 && s.connected && now.Sub(lastRecv) >= s.pingExit {
		s.fail(EventHalt, fmt.Sprintf("inactivity timeout (--ping-exit), exiting after %s", s.pingExit))
		return
	}
	if s.pingRestart > 0 && now.Sub(lastRecv) >= s.pingRestart {
		s.fail(EventRestart, fmt.Sprintf("inactivity timeout (--ping-restart), restarting after %s", s.pingRestart))
		return
	}
	if !s.pushReqAt.IsZero() && s.pushed == nil && !now.Before(s.pushReqAt) {
		if ks := s.keyByID(0); ks != nil && ks.tls != nil {
			s.writeMessage(ks, "PUSH_REQUEST")
		}
		s.pushReqAt = now.Add(5 * time.Second)
	}
	if s.connected {
		s.updateSendKey(now)
		s.checkRenegotiation(now)
		if s.ping > 0 && now.Sub(lastSent) >= s.ping {
			s.sendData(now, pingMagic[:], false)
		}
	}
	s.process(now)
}

func (s *Session) checkRenegotiation(now time.Time) {
	if len(s.keys) == 0 || s.keys[0].state != ksGenerated {
		return
	}
	cur := s.keys[0]
	switch {
	case s.cfg.RenegSec > 0 && now.Sub(cur.readyAt) >= s.cfg.RenegSec:
	case s.cfg.RenegBytes > 0 && cur.ctr.bytes.Load() >= s.cfg.RenegBytes:
	case s.cfg.RenegPackets > 0 && cur.ctr.packets.Load() >= s.cfg.RenegPackets:
	case s.dp.needReneg.Swap(false):
	case cur.data.SendPID() >= datachan.PIDWrapTrigger:
	default:
		return
	}
	// Retire the previous keys after the transition window.
	for _, k := range s.keys[1:] {
		if k.retireAt.IsZero() {
			k.retireAt = now.Add(s.cfg.TranWindow)
		}
	}
	s.startRenegotiation(now, s.nextKeyID)
}

// writeMessage sends a NUL-terminated control-channel text message as one TLS record.
func (s *Session) writeMessage(ks *keyState, msg string) {
	b := append([]byte(msg), 0)
	if err := ks.tls.WritePlaintext(b); err != nil {
		s.log.Warn("control message not sent", "msg", msg, "err", err)
	}
}

// NextDeadline returns when Tick must next run.
func (s *Session) NextDeadline() time.Time {
	if s.closed {
		return time.Time{}
	}
	var t time.Time
	take := func(c time.Time) {
		if !c.IsZero() && (t.IsZero() || c.Before(t)) {
			t = c
		}
	}
	for _, ks := range s.keys {
		if ks.state == ksError {
			continue
		}
		if d, ok := ks.snd.NextDeadline(); ok {
			if d.IsZero() {
				d = ks.start
			}
			take(d)
		}
		if ks.state != ksGenerated {
			take(ks.start.Add(s.cfg.HandWindow))
		}
		if !ks.retireAt.IsZero() {
			take(ks.retireAt)
		}
	}
	if s.pingRestart > 0 {
		take(s.dp.recvTime().Add(s.pingRestart))
	}
	if s.pingExit > 0 && s.connected {
		take(s.dp.recvTime().Add(s.pingExit))
	}
	if !s.pushReqAt.IsZero() && s.pushed == nil {
		take(s.pushReqAt)
	}
	if s.connected {
		if s.ping > 0 {
			take(s.dp.sentTime().Add(s.ping))
		}
		if len(s.keys) > 0 && s.keys[0].state == ksGenerated && s.cfg.RenegSec > 0 {
			take(s.keys[0].readyAt.Add(s.cfg.RenegSec))
		}
		// Re-evaluate the send key when the switch-over deadline passes.
		for _, k := range s.keys {
			if k.state == ksGenerated && !k.sendOK {
				take(k.start.Add(s.switchWait()))
			}
		}
	}
	return t
}

// Close starts a graceful shutdown: it sends the exit notification the peer expects
// (EXIT over the control channel when cc-exit was negotiated, else OCC exit messages on
// UDP). It returns how long the caller should keep driving the session so the
// notification can be delivered (zero: nothing to wait for).
func (s *Session) Close(now time.Time) time.Duration {
	if s.closed || !s.connected || s.exitSent {
		s.closed = true
		return 0
	}
	s.exitSent = true
	if s.ccExit {
		if ks := s.keys[0]; ks.tls != nil {
			s.writeMessage(ks, "EXIT")
			s.process(now)
			return 2 * time.Second
		}
	}
	if s.cfg.TCP || s.cfg.ExplicitExitNotify <= 0 {
		s.closed = true
		return 0
	}
	s.sendData(now, occExitMessage(), false)
	return time.Duration(s.cfg.ExplicitExitNotify) * time.Second
}

// ExitDelivered reports whether every control packet (including EXIT) was ACKed.
func (s *Session) ExitDelivered() bool {
	for _, k := range s.keys {
		if k.state != ksError && k.snd.Pending() > 0 {
			return false
		}
	}
	return true
}
