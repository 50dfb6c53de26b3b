package controlwrap

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"

	"weft/replay"
)

// Errors returned by Wrap and Unwrap (possibly wrapped with context).
var (
	// ErrAuth reports a packet whose HMAC or tls-crypt tag does not verify.
	ErrAuth = errors.New("controlwrap: packet authentication failed")
	// ErrReplay reports an authentic packet whose replay-id was seen before
	// or is too old.
	ErrReplay = errors.New("controlwrap: replayed packet")
	// ErrShort reports a packet shorter than the wrapping's fixed fields.
	ErrShort = errors.New("controlwrap: packet too short")
	// ErrCounterExhausted reports that the replay-id counter cannot advance
	// (it is at 0xFFFFFFFF and the clock has not moved past its time).
	ErrCounterExhausted = errors.New("controlwrap: replay-id counter exhausted")
)

// plainHeaderLen is byte0 + own session id, in clear in every mode.
const plainHeaderLen = 1 + 8

// replayIDLen is the counter(4) || time(4) replay-id.
const replayIDLen = 8

// Control-channel replay window (OpenVPN defaults, §5.5).
const (
	replayWindowSize   = 64
	replayWindowExpire = 15 * time.Second
)

// Wrapper converts plain control packets (wire.ControlPacket encoding) to and
// from the wire. One Wrapper per session: it holds the replay-id send counter
// and the receive window, and it is not safe for concurrent use.
//
// Wrap appends the wire form of plain to dst; plain must be at least 9 bytes
// (byte0 and session id) and must not overlap dst's spare capacity. Every
// call uses a fresh replay-id, so retransmissions must be re-wrapped.
//
// Unwrap authenticates pkt, then checks its replay-id, and returns the plain
// packet (byte0 | sid | ack part) in a newly allocated slice that never
// aliases pkt. Errors wrap ErrShort, ErrAuth or ErrReplay. A packet that
// fails authentication does not touch the replay window.
//
// Overhead is the number of bytes the wire form adds to the plain form.
type Wrapper interface {
	Wrap(now time.Time, dst, plain []byte) ([]byte, error)
	Unwrap(now time.Time, pkt []byte) ([]byte, error)
	Overhead() int
}

// CounterSetter is implemented by the tls-auth and tls-crypt wrappers.
// SetSendCounter sets the replay-id send counter; the next Wrap sends n+1
// (counters are pre-incremented). A server that answered statelessly with
// replay-id 1 calls SetSendCounter(1); a tls-crypt-v2 peer announcing early
// negotiation uses SetSendCounter(0x0f000000).
type CounterSetter interface {
	SetSendCounter(n uint32)
}

// Authenticator is implemented by every wrapper. Authenticate verifies pkt like
// Unwrap but leaves the replay window alone; a server uses it to answer new
// clients statelessly (§6.2) with one shared wrapper, before any per-client state
// exists.
type Authenticator interface {
	Authenticate(pkt []byte) ([]byte, error)
}

// NewNone returns the Wrapper for control channels without tls-auth or
// tls-crypt: the wire form equals the plain form.
func NewNone() Wrapper { return noneWrapper{} }

type noneWrapper struct{}

func (noneWrapper) Overhead() int { return 0 }

func (noneWrapper) Wrap(_ time.Time, dst, plain []byte) ([]byte, error) {
	if len(plain) < plainHeaderLen {
		return dst, fmt.Errorf("plain control packet of %d bytes: %w", len(plain), ErrShort)
	}
	return append(dst, plain...), nil
}

func (n noneWrapper) Authenticate(pkt []byte) ([]byte, error) { return n.Unwrap(time.Time{}, pkt) }

func (noneWrapper) Unwrap(_ time.Time, pkt []byte) ([]byte, error) {
	if len(pkt) < plainHeaderLen {
		return nil, fmt.Errorf("control packet of %d bytes: %w", len(pkt), ErrShort)
	}
	return append([]byte(nil), pkt...), nil
}

// sendCounter is the replay-id sender state (OpenVPN packet_id_send, long form).
type sendCounter struct {
	id   uint32
	time uint32
}

// next returns the replay-id for the next packet.
func (s *sendCounter) next(now time.Time) (id, ts uint32, err error) {
	unix := now.Unix()
	if s.time == 0 {
		s.time = uint32(unix)
	}
	if s.id == 0xFFFFFFFF {
		if int64(s.time) >= unix {
			return 0, 0, ErrCounterExhausted
		}
		s.time = uint32(unix)
		s.id = 0
	}
	s.id++
	return s.id, s.time, nil
}

// digests maps normalised --auth names to hash constructors.
var digests = map[string]func() hash.Hash{
	"SHA1":   sha1.New,
	"SHA224": sha256.New224,
	"SHA256": sha256.New,
	"SHA384": sha512.New384,
	"SHA512": sha512.New,
}

// newDigest resolves an OpenVPN --auth digest name, case-insensitively, with
// or without dashes ("SHA256", "sha-256", "SHA2-256"). "" means SHA1, the
// OpenVPN default.
func newDigest(name string) (func() hash.Hash, error) {
	n := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(name), "-", ""))
	if n == "" {
		n = "SHA1"
	}
	if strings.HasPrefix(n, "SHA2") && len(n) == 7 { // SHA2224, SHA2256, ...
		n = "SHA" + n[4:]
	}
	h, ok := digests[n]
	if !ok {
		return nil, fmt.Errorf("controlwrap: unsupported tls-auth digest %q (want SHA1, SHA224, SHA256, SHA384 or SHA512)", name)
	}
	return h, nil
}

// tlsAuth implements tls-auth (§5.3).
type tlsAuth struct {
	send, recv hash.Hash
	size       int // HMAC size
	ctr        sendCounter
	win        *replay.Window
	sum        []byte
}

// NewTLSAuth returns a tls-auth Wrapper. digest is the --auth name (SHA1,
// SHA224, SHA256, SHA384, SHA512; case-insensitive; "" means SHA1). The HMAC
// keys are the first digest-size bytes of the HMAC halves selected by dir
// (§7.1). The returned Wrapper also implements CounterSetter.
func NewTLSAuth(k *StaticKey, dir KeyDirection, digest string) (Wrapper, error) {
	if k == nil {
		return nil, errors.New("controlwrap: tls-auth: nil key")
	}
	h, err := newDigest(digest)
	if err != nil {
		return nil, err
	}
	size := h().Size()
	var sendOff, recvOff int
	switch dir {
	case DirNone:
		sendOff, recvOff = 64, 64
	case Dir0:
		sendOff, recvOff = 64, 192
	case Dir1:
		sendOff, recvOff = 192, 64
	default:
		return nil, fmt.Errorf("controlwrap: tls-auth: bad key direction %v", dir)
	}
	return &tlsAuth{
		send: hmac.New(h, k[sendOff:sendOff+size]),
		recv: hmac.New(h, k[recvOff:recvOff+size]),
		size: size,
		win:  replay.New(replayWindowSize, replayWindowExpire),
		sum:  make([]byte, 0, sha512.Size),
	}, nil
}

func (a *tlsAuth) Overhead() int { return a.size + replayIDLen }

func (a *tlsAuth) SetSendCounter(n uint32) { a.ctr.id = n }

func (a *tlsAuth) Wrap(now time.Time, dst, plain []byte) ([]byte, error) {
	if len(plain) < plainHeaderLen {
		return dst, fmt.Errorf("tls-auth: plain control packet of %d bytes: %w", len(plain), ErrShort)
	}
	id, ts, err := a.ctr.next(now)
	if err != nil {
		return dst, fmt.Errorf("tls-auth: %w", err)
	}
	var rid [replayIDLen]byte
	binary.BigEndian.PutUint32(rid[0:], id)
	binary.BigEndian.PutUint32(rid[4:], ts)
	a.send.Reset()
	a.send.Write(rid[:])
	a.send.Write(plain)
	a.sum = a.send.Sum(a.sum[:0])
	dst = append(dst, plain[:plainHeaderLen]...)
	dst = append(dst, a.sum...)
	dst = append(dst, rid[:]...)
	return append(dst, plain[plainHeaderLen:]...), nil
}

func (a *tlsAuth) Unwrap(now time.Time, pkt []byte) ([]byte, error) {
	out, id, ts, err := a.authenticate(pkt)
	if err != nil {
		return nil, err
	}
	if !a.win.Accept(now, id, ts) {
		return nil, fmt.Errorf("tls-auth: replay-id %d time %d: %w", id, ts, ErrReplay)
	}
	return out, nil
}

func (a *tlsAuth) Authenticate(pkt []byte) ([]byte, error) {
	out, _, _, err := a.authenticate(pkt)
	return out, err
}

func (a *tlsAuth) authenticate(pkt []byte) ([]byte, uint32, uint32, error) {
	hdr := plainHeaderLen + a.size + replayIDLen
	if len(pkt) < hdr {
		return nil, 0, 0, fmt.Errorf("tls-auth: control packet of %d bytes, need at least %d: %w", len(pkt), hdr, ErrShort)
	}
	rid := pkt[plainHeaderLen+a.size : hdr]
	a.recv.Reset()
	a.recv.Write(rid)
	a.recv.Write(pkt[:plainHeaderLen])
	a.recv.Write(pkt[hdr:])
	a.sum = a.recv.Sum(a.sum[:0])
	if subtle.ConstantTimeCompare(a.sum, pkt[plainHeaderLen:plainHeaderLen+a.size]) != 1 {
		return nil, 0, 0, fmt.Errorf("tls-auth: %w", ErrAuth)
	}
	id, ts := binary.BigEndian.Uint32(rid), binary.BigEndian.Uint32(rid[4:])
	out := make([]byte, 0, len(pkt)-a.size-replayIDLen)
	out = append(out, pkt[:plainHeaderLen]...)
	return append(out, pkt[hdr:]...), id, ts, nil
}

// tls-crypt layout (§5.4).
const (
	tcHeaderLen = plainHeaderLen + replayIDLen // authenticated clear header
	tcTagLen    = sha256.Size
	tcOverhead  = replayIDLen + tcTagLen
)

// tlsCrypt implements tls-crypt (§5.4).
type tlsCrypt struct {
	encBlock, decBlock cipher.Block
	sign, verify       hash.Hash
	ctr                sendCounter
	win                *replay.Window
	sum                []byte
}

// NewTLSCrypt returns a tls-crypt Wrapper (AES-256-CTR + HMAC-SHA256 SIV).
// Key halves follow the TLS role, not key-direction (§7.2): the TLS server
// sends with keys[0] and receives with keys[1], the client the inverse. The
// returned Wrapper also implements CounterSetter.
func NewTLSCrypt(k *StaticKey, server bool) (Wrapper, error) {
	if k == nil {
		return nil, errors.New("controlwrap: tls-crypt: nil key")
	}
	send, recv := 0, 128
	if !server {
		send, recv = 128, 0
	}
	eb, err := aes.NewCipher(k[send : send+32])
	if err != nil {
		return nil, fmt.Errorf("controlwrap: tls-crypt: %w", err)
	}
	db, err := aes.NewCipher(k[recv : recv+32])
	if err != nil {
		return nil, fmt.Errorf("controlwrap: tls-crypt: %w", err)
	}
	return &tlsCrypt{
		encBlock: eb,
		decBlock: db,
		sign:     hmac.New(sha256.New, k[send+64:send+96]),
		verify:   hmac.New(sha256.New, k[recv+64:recv+96]),
		win:      replay.New(replayWindowSize, replayWindowExpire),
		sum:      make([]byte, 0, sha256.Size),
	}, nil
}

func (c *tlsCrypt) Overhead() int { return tcOverhead }

func (c *tlsCrypt) SetSendCounter(n uint32) { c.ctr.id = n }

func (c *tlsCrypt) Wrap(now time.Time, dst, plain []byte) ([]byte, error) {
	if len(plain) < plainHeaderLen {
		return dst, fmt.Errorf("tls-crypt: plain control packet of %d bytes: %w", len(plain), ErrShort)
	}
	id, ts, err := c.ctr.next(now)
	if err != nil {
		return dst, fmt.Errorf("tls-crypt: %w", err)
	}
	start := len(dst)
	dst = append(dst, plain[:plainHeaderLen]...)
	dst = binary.BigEndian.AppendUint32(dst, id)
	dst = binary.BigEndian.AppendUint32(dst, ts)
	body := plain[plainHeaderLen:]
	c.sign.Reset()
	c.sign.Write(dst[start:])
	c.sign.Write(body)
	c.sum = c.sign.Sum(c.sum[:0])
	dst = append(dst, c.sum...)
	ctStart := len(dst)
	dst = append(dst, body...)
	cipher.NewCTR(c.encBlock, c.sum[:aes.BlockSize]).XORKeyStream(dst[ctStart:], dst[ctStart:])
	return dst, nil
}

func (c *tlsCrypt) Unwrap(now time.Time, pkt []byte) ([]byte, error) {
	out, id, ts, err := c.authenticate(pkt)
	if err != nil {
		return nil, err
	}
	if !c.win.Accept(now, id, ts) {
		return nil, fmt.Errorf("tls-crypt: replay-id %d time %d: %w", id, ts, ErrReplay)
	}
	return out, nil
}

func (c *tlsCrypt) Authenticate(pkt []byte) ([]byte, error) {
	out, _, _, err := c.authenticate(pkt)
	return out, err
}

func (c *tlsCrypt) authenticate(pkt []byte) ([]byte, uint32, uint32, error) {
	const hdr = tcHeaderLen + tcTagLen
	if len(pkt) < hdr {
		return nil, 0, 0, fmt.Errorf("tls-crypt: control packet of %d bytes, need at least %d: %w", len(pkt), hdr, ErrShort)
	}
	tag := pkt[tcHeaderLen:hdr]
	out := make([]byte, plainHeaderLen+len(pkt)-hdr)
	copy(out, pkt[:plainHeaderLen])
	body := out[plainHeaderLen:]
	cipher.NewCTR(c.decBlock, tag[:aes.BlockSize]).XORKeyStream(body, pkt[hdr:])
	c.verify.Reset()
	c.verify.Write(pkt[:tcHeaderLen])
	c.verify.Write(body)
	c.sum = c.verify.Sum(c.sum[:0])
	if subtle.ConstantTimeCompare(c.sum, tag) != 1 {
		return nil, 0, 0, fmt.Errorf("tls-crypt: %w", ErrAuth)
	}
	id := binary.BigEndian.Uint32(pkt[plainHeaderLen:])
	ts := binary.BigEndian.Uint32(pkt[plainHeaderLen+4:])
	return out, id, ts, nil
}
