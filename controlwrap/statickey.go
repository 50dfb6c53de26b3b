// Package controlwrap implements the pre-shared-key protection of OpenVPN
// control packets: static key files (§7.0), tls-auth (§5.3, §7.1) and
// tls-crypt (§5.4, §7.2), including the 8-byte replay-ids (§5.5).
//
// A Wrapper converts between the plain control-packet encoding of package
// wire (byte0 | own session id | ack part) and the bytes on the wire. The
// package is pure: the current time is passed in, and nothing here performs
// I/O or panics on malformed input.
package controlwrap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Static key file markers (§7.0).
const (
	staticKeyBegin = "-----BEGIN OpenVPN Static key V1-----"
	staticKeyEnd   = "-----END OpenVPN Static key V1-----"
)

// ErrKeyFile reports a malformed static key file.
var ErrKeyFile = errors.New("controlwrap: invalid OpenVPN static key file")

// StaticKey is the 256-byte "OpenVPN Static key V1" (struct key2): keys[0] is
// bytes 0..127 and keys[1] bytes 128..255, each a 64-byte cipher half
// followed by a 64-byte HMAC half.
type StaticKey [256]byte

// ParseStaticKey parses an "OpenVPN Static key V1" file. Text outside the
// BEGIN/END marker lines is ignored; the body is hex digits in lines of any
// length (whitespace is ignored) and must decode to exactly 256 bytes.
func ParseStaticKey(data []byte) (*StaticKey, error) {
	begin := bytes.Index(data, []byte(staticKeyBegin))
	if begin < 0 {
		return nil, fmt.Errorf("missing %q line: %w", staticKeyBegin, ErrKeyFile)
	}
	body := data[begin+len(staticKeyBegin):]
	end := bytes.Index(body, []byte(staticKeyEnd))
	if end < 0 {
		return nil, fmt.Errorf("missing %q line: %w", staticKeyEnd, ErrKeyFile)
	}
	body = body[:end]
	var k StaticKey
	n := 0     // bytes decoded
	half := -1 // pending high nibble
	line := 1
	for _, c := range body {
		var v int
		switch {
		case c == '\n':
			line++
			continue
		case c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f':
			continue
		case c >= '0' && c <= '9':
			v = int(c - '0')
		case c >= 'a' && c <= 'f':
			v = int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			v = int(c-'A') + 10
		default:
			return nil, fmt.Errorf("non-hex character %q on line %d of the key body: %w", c, line, ErrKeyFile)
		}
		if half < 0 {
			half = v
			continue
		}
		if n == len(k) {
			return nil, fmt.Errorf("key body holds more than %d bytes: %w", len(k), ErrKeyFile)
		}
		k[n] = byte(half<<4 | v)
		n++
		half = -1
	}
	if half >= 0 {
		return nil, fmt.Errorf("key body has an odd number of hex digits: %w", ErrKeyFile)
	}
	if n != len(k) {
		return nil, fmt.Errorf("key body holds %d bytes, want %d: %w", n, len(k), ErrKeyFile)
	}
	return &k, nil
}

// Encode returns k in the file format written by `openvpn --genkey secret`.
func (k *StaticKey) Encode() []byte {
	var b strings.Builder
	b.WriteString("#\n# 2048 bit OpenVPN static key\n#\n")
	b.WriteString(staticKeyBegin + "\n")
	for i := 0; i < len(k); i += 16 {
		b.WriteString(hex.EncodeToString(k[i : i+16]))
		b.WriteByte('\n')
	}
	b.WriteString(staticKeyEnd + "\n")
	return []byte(b.String())
}

// KeyDirection selects which half of a static key is used in which direction
// (§7.0, §7.1).
type KeyDirection int

// Key directions.
const (
	// DirNone (bidirectional) uses keys[0] both ways (no key-direction).
	DirNone KeyDirection = iota
	// Dir0 (NORMAL, key-direction 0) sends with keys[0] and receives with keys[1].
	Dir0
	// Dir1 (INVERSE, key-direction 1) sends with keys[1] and receives with keys[0].
	Dir1
)

// String returns "none", "0" or "1".
func (d KeyDirection) String() string {
	switch d {
	case DirNone:
		return "none"
	case Dir0:
		return "0"
	case Dir1:
		return "1"
	}
	return fmt.Sprintf("KeyDirection(%d)", int(d))
}

// ParseKeyDirection parses an OpenVPN key-direction argument: "0", "1",
// or "" / "bidirectional" / "bi" / "none" for DirNone.
func ParseKeyDirection(s string) (KeyDirection, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "0":
		return Dir0, nil
	case "1":
		return Dir1, nil
	case "", "bidirectional", "bi", "none":
		return DirNone, nil
	}
	return DirNone, fmt.Errorf("controlwrap: bad key direction %q: want 0, 1 or bidirectional", s)
}
