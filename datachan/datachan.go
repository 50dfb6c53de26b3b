// Package datachan implements the OpenVPN 2.4–2.6 AEAD data channel
// (§10.1–§10.3): AES-128-GCM, AES-256-GCM and CHACHA20-POLY1305 packets with
// implicit IVs, per-direction keys taken from a 256-byte key2 (§9.4), the
// data-pid replay window, and the TLS 1.0 PRF key derivation (§9.3).
//
// Packet format (P_DATA_V2 / P_DATA_V1):
//
//	header(4 / 1) | data-pid(4) | tag(16) | ciphertext
//
// nonce = data-pid || implicit IV (8 bytes); AAD = header || data-pid for
// P_DATA_V2 and data-pid alone for P_DATA_V1.
//
// The package is pure: time is passed in; nothing here performs I/O or
// panics on bad input.
package datachan

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/crypto/chacha20poly1305"

	"weft/replay"
	"weft/wire"
)

// Cipher is a data-channel AEAD cipher.
type Cipher uint8

// Supported ciphers. The zero value is invalid.
const (
	AES128GCM        Cipher = iota + 1 // "AES-128-GCM"
	AES256GCM                          // "AES-256-GCM"
	ChaCha20Poly1305                   // "CHACHA20-POLY1305"
)

// EKMLabel is the TLS exporter label for data-channel keys (§9.2); export
// 256 bytes with no context.
const EKMLabel = "EXPORTER-OpenVPN-datakeys"

// Packet layout constants.
const (
	PIDLen = 4  // data-pid length
	TagLen = 16 // AEAD tag length
	// PIDWrapTrigger is the send data-pid at which OpenVPN starts a
	// renegotiation (PACKET_ID_WRAP_TRIGGER).
	PIDWrapTrigger = 0xFF000000
)

// Errors returned by Seal and Open (possibly wrapped with context).
var (
	// ErrAuth reports a packet that fails AEAD authentication.
	ErrAuth = errors.New("datachan: packet authentication failed")
	// ErrReplay reports an authentic packet whose data-pid was seen before,
	// is 0, or is too old for the replay window.
	ErrReplay = errors.New("datachan: replayed packet")
	// ErrShort reports a packet shorter than header, data-pid and tag.
	ErrShort = errors.New("datachan: packet too short")
	// ErrPIDExhausted reports that the send data-pid reached 0xFFFFFFFF; the
	// key must be renegotiated.
	ErrPIDExhausted = errors.New("datachan: data-pid exhausted")
	// ErrCipher reports an unknown or unsupported cipher.
	ErrCipher = errors.New("datachan: unsupported cipher")
)

// ParseCipher parses an OpenVPN cipher name ("AES-128-GCM", "AES-256-GCM",
// "CHACHA20-POLY1305"), case-insensitively.
func ParseCipher(name string) (Cipher, error) {
	switch strings.ToUpper(strings.TrimSpace(name)) {
	case "AES-128-GCM":
		return AES128GCM, nil
	case "AES-256-GCM":
		return AES256GCM, nil
	case "CHACHA20-POLY1305":
		return ChaCha20Poly1305, nil
	}
	return 0, fmt.Errorf("%w %q", ErrCipher, name)
}

// String returns the OpenVPN name of c, e.g. "AES-256-GCM".
func (c Cipher) String() string {
	switch c {
	case AES128GCM:
		return "AES-128-GCM"
	case AES256GCM:
		return "AES-256-GCM"
	case ChaCha20Poly1305:
		return "CHACHA20-POLY1305"
	}
	return "Cipher(" + strconv.Itoa(int(c)) + ")"
}

// KeySize returns the key length of c in bytes (0 for an invalid cipher).
func (c Cipher) KeySize() int {
	switch c {
	case AES128GCM:
		return 16
	case AES256GCM, ChaCha20Poly1305:
		return 32
	}
	return 0
}

func (c Cipher) newAEAD(key []byte) (cipher.AEAD, error) {
	switch c {
	case AES128GCM, AES256GCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	case ChaCha20Poly1305:
		return chacha20poly1305.New(key)
	}
	return nil, fmt.Errorf("%w %v", ErrCipher, c)
}

// Key2 is the 256-byte data-channel key material of one key_id (§9.4):
// keys[0] = bytes 0..127 (cipher 0..63, hmac 64..127), keys[1] = bytes
// 128..255. It comes from the TLS exporter (EKMLabel) or PRFKeys.
type Key2 [256]byte

// Overhead returns the bytes Seal adds to a plaintext: 24 for P_DATA_V2
// (peerID >= 0) and 21 for P_DATA_V1.
func Overhead(peerID int32) int { return wire.DataHeaderLen(peerID) + PIDLen + TagLen }

// Keys holds one key_id's data keys in both directions (§9.4, §10.2), the
// send data-pid and the receive replay window.
//
// Keys is safe for concurrent use: Seal calls are serialised by one lock and Open
// calls by another, so a sender and a receiver never wait for each other.
type Keys struct {
	sealMu     sync.Mutex
	openMu     sync.Mutex
	c          Cipher
	send, recv cipher.AEAD
	sendNonce  [12]byte // data-pid(4) || implicit IV(8); IV part fixed
	recvNonce  [12]byte
	sendPID    uint32
	win        *replay.Window // nil: replay protection disabled
	tag        [TagLen]byte   // Seal scratch
	rtag       [TagLen]byte   // Open scratch
	aad        [wire.DataV2HeaderLen + PIDLen]byte
}

// NewKeys builds the data keys of one key_id from key2 (§9.4). server is the
// TLS role (also in peer-to-peer mode): the client encrypts with keys[0]
// (key from bytes 0.., implicit IV from bytes 64..72) and decrypts with
// keys[1] (128.., 192..200); the server the inverse. replayWindow and
// replayExpire configure the receive replay window (`replay-window n t`);
// replayWindow 0 means the default 64, a negative replayWindow disables replay
// protection (--no-replay).
func NewKeys(c Cipher, k *Key2, server bool, replayWindow int, replayExpire time.Duration) (*Keys, error) {
	if k == nil {
		return nil, errors.New("datachan: nil key2")
	}
	n := c.KeySize()
	if n == 0 {
		return nil, fmt.Errorf("%w %v", ErrCipher, c)
	}
	send, recv := 0, 128
	if server {
		send, recv = 128, 0
	}
	ks := &Keys{c: c}
	var err error
	if ks.send, err = c.newAEAD(k[send : send+n]); err != nil {
		return nil, fmt.Errorf("datachan: %v send key: %w", c, err)
	}
	if ks.recv, err = c.newAEAD(k[recv : recv+n]); err != nil {
		return nil, fmt.Errorf("datachan: %v receive key: %w", c, err)
	}
	copy(ks.sendNonce[PIDLen:], k[send+64:send+72])
	copy(ks.recvNonce[PIDLen:], k[recv+64:recv+72])
	if replayWindow >= 0 {
		ks.win = replay.New(replayWindow, replayExpire)
	}
	return ks, nil
}

// Cipher returns the cipher of k.
func (k *Keys) Cipher() Cipher { return k.c }

// SendPID returns the data-pid of the last sealed packet (0 before the
// first). Renegotiate when it reaches PIDWrapTrigger.
func (k *Keys) SendPID() uint32 {
	k.sealMu.Lock()
	defer k.sealMu.Unlock()
	return k.sendPID
}

// Seal appends header (P_DATA_V2 with peerID >= 0, else P_DATA_V1) | pid |
// tag | ciphertext to dst and returns the extended slice. keyID is the
// key_id put in the header; peerID's low 24 bits are the peer-id.
//
// It does not allocate when cap(dst)-len(dst) >= len(plaintext)+Overhead(peerID).
// plaintext may overlap dst's spare capacity; encrypting in place is cheapest
// when plaintext starts exactly Overhead(peerID) bytes after len(dst) and
// 16 more bytes of capacity are available. On error dst is returned unchanged.
func (k *Keys) Seal(dst []byte, keyID uint8, peerID int32, plaintext []byte) ([]byte, error) {
	k.sealMu.Lock()
	defer k.sealMu.Unlock()
	if k.sendPID == 0xFFFFFFFF {
		return dst, ErrPIDExhausted
	}
	k.sendPID++
	pid := k.sendPID
	start := len(dst)
	hl := wire.DataHeaderLen(peerID)
	ctOff := start + hl + PIDLen + TagLen // ciphertext offset in out
	n := len(plaintext)
	total := ctOff + n

	out := dst
	if cap(out) < total {
		// Fresh buffer (with room for the temporary tag): plaintext cannot
		// overlap it.
		out = make([]byte, start, total+TagLen)
		copy(out, dst)
	}
	// plaintext may live in dst's spare capacity: move it to its final
	// place before writing the header (copy is memmove-safe).
	out = out[:total]
	if n > 0 && &out[ctOff] != &plaintext[0] {
		if overlaps(out[start:cap(out)], plaintext) {
			copy(out[ctOff:], plaintext)
			plaintext = out[ctOff:total]
		}
	}
	wire.AppendDataHeader(out[:start], keyID, peerID)
	binary.BigEndian.PutUint32(out[start+hl:], pid)
	var aad []byte
	if peerID >= 0 {
		aad = out[start : start+hl+PIDLen]
	} else {
		aad = out[start+hl : start+hl+PIDLen]
	}
	binary.BigEndian.PutUint32(k.sendNonce[:PIDLen], pid)
	if cap(out) >= total+TagLen {
		// Seal straight into place; the tag lands after the ciphertext and
		// is moved in front of it.
		sealed := k.send.Seal(out[ctOff:ctOff], k.sendNonce[:], plaintext, aad)
		copy(out[ctOff-TagLen:ctOff], sealed[n:n+TagLen])
		return out[:total], nil
	}
	// Exactly enough room: seal at the tag position, then rotate the tag
	// to the front.
	tagOff := ctOff - TagLen
	if n > 0 && &out[tagOff] != &plaintext[0] {
		copy(out[tagOff:], plaintext) // memmove, overlap-safe
	}
	sealed := k.send.Seal(out[tagOff:tagOff], k.sendNonce[:], out[tagOff:tagOff+n], aad)
	copy(k.tag[:], sealed[n:])
	copy(out[ctOff:total], out[tagOff:tagOff+n])
	copy(out[tagOff:ctOff], k.tag[:])
	return out[:total], nil
}

// overlaps reports whether a and b share memory.
func overlaps(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	pa := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	pb := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pa < pb+uintptr(len(b)) && pb < pa+uintptr(len(a))
}

// Open authenticates a whole data packet (header included), checks its
// data-pid against the replay window, and appends the plaintext to dst.
// The key_id and peer-id in the header are not checked (the caller picks
// Keys by key_id). Errors wrap ErrShort, ErrAuth or ErrReplay (or a wire
// error for a non-data opcode); on error dst is returned unchanged, although
// its spare capacity may have been overwritten.
//
// It does not allocate when cap(dst)-len(dst) >= len(pkt). pkt may overlap
// dst (in-place decryption).
func (k *Keys) Open(now time.Time, dst, pkt []byte) ([]byte, error) {
	_, _, peerID, hl, err := wire.DataHeader(pkt)
	if err != nil {
		return dst, fmt.Errorf("datachan: %w", err)
	}
	if len(pkt) < hl+PIDLen+TagLen {
		return dst, ErrShort
	}
	pid := binary.BigEndian.Uint32(pkt[hl:])
	k.openMu.Lock()
	defer k.openMu.Unlock()
	var aad []byte
	if peerID >= 0 {
		aad = k.aad[:hl+PIDLen]
		copy(aad, pkt[:hl+PIDLen])
	} else {
		aad = k.aad[:PIDLen]
		copy(aad, pkt[hl:hl+PIDLen])
	}
	copy(k.rtag[:], pkt[hl+PIDLen:])
	ct := pkt[hl+PIDLen+TagLen:]
	n := len(ct)
	start := len(dst)
	out := dst
	if cap(out)-start < n+TagLen {
		out = make([]byte, start, start+n+TagLen)
		copy(out, dst)
	}
	buf := out[start : start+n+TagLen]
	copy(buf, ct) // memmove: safe if pkt overlaps dst
	copy(buf[n:], k.rtag[:])
	binary.BigEndian.PutUint32(k.recvNonce[:PIDLen], pid)
	if _, err := k.recv.Open(buf[:0], k.recvNonce[:], buf, aad); err != nil {
		return dst, ErrAuth
	}
	if k.win != nil && !k.win.Accept(now, pid, 0) {
		return dst, fmt.Errorf("datachan: data-pid %d: %w", pid, ErrReplay)
	}
	return out[:start+n], nil
}
