package ovpn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Key method 2 limits (§8.1).
const (
	maxOptionsLen  = 512
	maxUserPassLen = 4096
	maxPeerInfoLen = 10000
	// MaxKeyMethodLen is the largest key-method-2 message OpenVPN reads (one 2048-byte
	// TLS read).
	MaxKeyMethodLen = 2048
)

// KeySource is the random material one side contributes in key method 2.
type KeySource struct {
	PreMaster [48]byte // client only
	Random1   [32]byte
	Random2   [32]byte
}

// KeyMethod2 is the first TLS application message in each direction (§8.1).
type KeyMethod2 struct {
	Source   KeySource
	Options  string
	Username string
	Password string
	PeerInfo string
}

// ErrIncomplete means more TLS plaintext is needed to parse a message.
var ErrIncomplete = errors.New("incomplete message")

// AppendKeyMethod2 encodes m as sent by a client (with pre_master) or a server.
func AppendKeyMethod2(dst []byte, m *KeyMethod2, client bool) []byte {
	dst = append(dst, 0, 0, 0, 0, 2)
	if client {
		dst = append(dst, m.Source.PreMaster[:]...)
	}
	dst = append(dst, m.Source.Random1[:]...)
	dst = append(dst, m.Source.Random2[:]...)
	dst = appendString(dst, m.Options, true)
	dst = appendString(dst, m.Username, false)
	dst = appendString(dst, m.Password, false)
	dst = appendString(dst, m.PeerInfo, false)
	return dst
}

// appendString writes OpenVPN's string encoding: u16 length including a NUL, the bytes,
// the NUL; an empty optional string is written as length 0.
func appendString(dst []byte, s string, always bool) []byte {
	if s == "" && !always {
		return append(dst, 0, 0)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)+1))
	dst = append(dst, s...)
	return append(dst, 0)
}

// ParseKeyMethod2 decodes a key-method-2 message sent by a client (fromClient) or a
// server. It returns ErrIncomplete when b holds only a prefix of the message, and the
// number of bytes consumed on success.
func ParseKeyMethod2(b []byte, fromClient bool) (*KeyMethod2, int, error) {
	fixed := 5 + 64
	if fromClient {
		fixed += 48
	}
	if len(b) < fixed {
		if len(b) >= 5 {
			if err := checkKMHeader(b); err != nil {
				return nil, 0, err
			}
		}
		return nil, 0, ErrIncomplete
	}
	if err := checkKMHeader(b); err != nil {
		return nil, 0, err
	}
	m := &KeyMethod2{}
	off := 5
	if fromClient {
		copy(m.Source.PreMaster[:], b[off:])
		off += 48
	}
	copy(m.Source.Random1[:], b[off:])
	copy(m.Source.Random2[:], b[off+32:])
	off += 64
	fields := []struct {
		dst      *string
		max      int
		name     string
		optional bool
	}{
		{&m.Options, maxOptionsLen, "options", false},
		{&m.Username, maxUserPassLen, "username", true},
		{&m.Password, maxUserPassLen, "password", true},
		{&m.PeerInfo, maxPeerInfoLen, "peer-info", true},
	}
	for _, f := range fields {
		if len(b) == off && f.optional {
			// A peer may end the message after the options string (older servers).
			break
		}
		s, n, err := readString(b[off:], f.max)
		if err != nil {
			return nil, 0, fmt.Errorf("key method 2 %s: %w", f.name, err)
		}
		*f.dst = s
		off += n
	}
	return m, off, nil
}

func checkKMHeader(b []byte) error {
	if b[0] != 0 || b[1] != 0 || b[2] != 0 || b[3] != 0 {
		return errors.New("key method 2: first four bytes are not zero")
	}
	if b[4]&0x0f != 2 {
		return fmt.Errorf("key method 2: unsupported key method %d", b[4]&0x0f)
	}
	return nil
}

func readString(b []byte, max int) (string, int, error) {
	if len(b) < 2 {
		return "", 0, ErrIncomplete
	}
	l := int(binary.BigEndian.Uint16(b))
	if l == 0 {
		return "", 2, nil
	}
	if l > max+1 {
		return "", 0, fmt.Errorf("string of %d bytes exceeds %d", l-1, max)
	}
	if len(b) < 2+l {
		return "", 0, ErrIncomplete
	}
	s := b[2 : 2+l]
	if s[l-1] != 0 {
		return "", 0, errors.New("string is not NUL-terminated")
	}
	return string(s[:l-1]), 2 + l, nil
}

// PeerInfo is a parsed peer-info block (KEY=VALUE lines).
type PeerInfo map[string]string

// ParsePeerInfo splits a peer-info string into its variables.
func ParsePeerInfo(s string) PeerInfo {
	pi := PeerInfo{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && k != "" {
			pi[k] = v
		}
	}
	return pi
}

// IV_PROTO bits (§8.3).
const (
	IVProtoDataV2       = 1 << 1
	IVProtoRequestPush  = 1 << 2
	IVProtoTLSKeyExport = 1 << 3
	IVProtoAuthPending  = 1 << 4
	IVProtoNCPP2P       = 1 << 5
	IVProtoDNSOption    = 1 << 6
	IVProtoCCExit       = 1 << 7
	IVProtoAuthFailTemp = 1 << 8
)
