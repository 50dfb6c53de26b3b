package compress

import (
	"errors"
	"fmt"
	"strings"
)

// Errors returned by this package; test with errors.Is.
var (
	// ErrInvalidSpec reports an unknown comp-lzo, compress or
	// allow-compression value.
	ErrInvalidSpec = errors.New("compress: invalid compression option")
	// ErrNotAllowed reports compression that allow-compression forbids: an
	// algorithm configured or pushed under "no", or a compressed packet
	// received under "no".
	ErrNotAllowed = errors.New("compress: compression not allowed (allow-compression no)")
	// ErrBadHeader reports a framed packet whose header byte(s) the framing
	// does not know (or an algorithm weft does not implement, i.e. Snappy).
	ErrBadHeader = errors.New("compress: bad compression header")
	// ErrCorrupt reports compressed data that does not decompress, or that
	// decompresses to more than MaxDecompressedSize bytes.
	ErrCorrupt = errors.New("compress: corrupt compressed data")
)

// MaxDecompressedSize is the most a single packet may decompress to: any IP
// packet (at most 65535 bytes) fits.
const MaxDecompressedSize = 1 << 16

// compressThreshold is OpenVPN's COMPRESS_THRESHOLD: shorter payloads are
// never compressed.
const compressThreshold = 100

// Spec is what the config (or a PUSH_REPLY) says about compression. The zero
// Spec means "nothing configured": no framing, allow-compression asym.
type Spec struct {
	// CompLZO is the comp-lzo argument: "" (absent), "no", "yes", "adaptive"
	// or "async" (same as "yes"). A bare "comp-lzo" means "adaptive" (the
	// config package already records it that way).
	CompLZO string
	// Compress is the compress argument: "" (absent), "stub", "stub-v2",
	// "lz4", "lz4-v2", "lzo" or "migrate"; a bare "compress" is "stub". When
	// both CompLZO and Compress are set, Compress decides.
	Compress string
	// Allow is the allow-compression argument: "no", "asym" or "yes"; ""
	// means "asym" (weft's default; OpenVPN 2.6 defaults to "no").
	Allow string
}

// family is the byte layout of a framing.
type family uint8

const (
	famNone family = iota // raw payload
	famLZO                // 0xFA / 0x66 prefix (comp-lzo, compress lzo)
	famSwap               // 0xFB / 0x69 with first byte swapped to the end
	famV2                 // 0x50 escape (stub-v2, lz4-v2, migrate)
)

// algo is a compression algorithm.
type algo uint8

const (
	algNone algo = iota
	algLZO
	algLZ4
)

func (a algo) String() string {
	switch a {
	case algLZO:
		return "LZO"
	case algLZ4:
		return "LZ4"
	}
	return "none"
}

// policy is the allow-compression setting.
type policy uint8

const (
	allowAsym policy = iota
	allowNo
	allowYes
)

// resolved is a validated Spec.
type resolved struct {
	fam   family
	alg   algo // algorithm the configuration names (sent only with allowYes)
	allow policy
	name  string
}

// sends reports whether packets are compressed on send.
func (r resolved) sends() bool { return r.allow == allowYes && r.alg != algNone }

func parseAllow(s string) (policy, error) {
	switch s {
	case "", "asym":
		return allowAsym, nil
	case "no":
		return allowNo, nil
	case "yes":
		return allowYes, nil
	}
	return 0, fmt.Errorf("%w: allow-compression %q (want no, asym or yes)", ErrInvalidSpec, s)
}

// resolve validates s and works out its framing.
func (s Spec) resolve() (resolved, error) {
	allow, err := parseAllow(s.Allow)
	if err != nil {
		return resolved{}, err
	}
	r := resolved{allow: allow, name: "none"}
	if s.CompLZO != "" {
		switch s.CompLZO {
		case "no":
			r.fam, r.alg = famLZO, algNone
		case "yes", "adaptive", "async":
			r.fam, r.alg = famLZO, algLZO
		default:
			return resolved{}, fmt.Errorf("%w: comp-lzo %q (want yes, no, adaptive or async)", ErrInvalidSpec, s.CompLZO)
		}
		r.name = "comp-lzo " + s.CompLZO
	}
	if s.Compress != "" {
		switch s.Compress {
		case "stub":
			r.fam, r.alg = famSwap, algNone
		case "lz4":
			r.fam, r.alg = famSwap, algLZ4
		case "stub-v2", "migrate":
			r.fam, r.alg = famV2, algNone
		case "lz4-v2":
			r.fam, r.alg = famV2, algLZ4
		case "lzo":
			r.fam, r.alg = famLZO, algLZO
		default:
			return resolved{}, fmt.Errorf("%w: compress %q (want stub, stub-v2, lz4, lz4-v2, lzo or migrate)", ErrInvalidSpec, s.Compress)
		}
		r.name = "compress " + s.Compress
	}
	if allow == allowNo && r.alg != algNone {
		return resolved{}, fmt.Errorf("%w: cannot use %s", ErrNotAllowed, r.name)
	}
	return r, nil
}

// Validate reports whether s is a valid and allowed combination, with the
// same error New would return.
func (s Spec) Validate() error {
	_, err := s.resolve()
	return err
}

// Warning returns the one-time VORACLE warning the caller must log when a
// Framing built from s compresses what it sends (allow-compression yes with an
// algorithm framing), and "" otherwise (also for an invalid Spec).
func (s Spec) Warning() string {
	r, err := s.resolve()
	if err != nil || !r.sends() {
		return ""
	}
	return "WARNING: allow-compression yes: packets sent to the peer are compressed (" + r.name +
		", " + r.alg.String() + "). Compressing attacker-influenced data together with secrets " +
		"leaks the secrets through packet sizes (VORACLE); use allow-compression asym or no " +
		"unless all tunnelled traffic is known to be safe."
}

// Merge applies a pushed comp-lzo/compress (pushed.CompLZO, pushed.Compress)
// on top of the local Spec and returns the Spec to build the session's
// Framing from. A pushed option replaces both local ones (OpenVPN applies the
// pushed option last); pushed.Allow is ignored because allow-compression
// cannot be pushed. Under the local allow-compression no, a pushed algorithm
// is refused with ErrNotAllowed, as OpenVPN 2.6 does ("server pushed
// compression settings that are not allowed"); the local Spec is then
// returned unchanged with the error. A pushed Spec without CompLZO and
// Compress returns s unchanged.
func (s Spec) Merge(pushed Spec) (Spec, error) {
	if pushed.CompLZO == "" && pushed.Compress == "" {
		return s, nil
	}
	m := Spec{CompLZO: pushed.CompLZO, Compress: pushed.Compress, Allow: s.Allow}
	if _, err := m.resolve(); err != nil {
		return s, fmt.Errorf("pushed compression options: %w", err)
	}
	return m, nil
}

// PeerInfo returns the compression IV_ lines a peer announces in its peer-info
// (§8.3), without newlines: the stub framings are always understood; the
// algorithms (IV_LZ4, IV_LZ4v2, IV_LZO; all of which this package
// decompresses) are announced unless allow-compression is no or the local
// config selects compress stub or stub-v2, which in OpenVPN 2.6 means
// "advertise stubs only".
func PeerInfo(s Spec) []string {
	out := make([]string, 0, 6)
	allow, err := parseAllow(s.Allow)
	stubOnly := err != nil || allow == allowNo || s.Compress == "stub" || s.Compress == "stub-v2"
	if !stubOnly {
		out = append(out, "IV_LZ4=1", "IV_LZ4v2=1", "IV_LZO=1")
	}
	return append(out, "IV_LZO_STUB=1", "IV_COMP_STUB=1", "IV_COMP_STUBv2=1")
}

// Migrate resolves a server's "compress migrate" for one client, as OpenVPN
// 2.6 does when the client connects. clientUsesCompLZO is whether the
// client's OCC options string contains ",comp-lzo," (§8.2); peerInfo is the
// client's peer-info (lines, or one string with "\n" separators). It returns
// the Spec for this client's session and the option to push ("" for none):
// "compress stub-v2" when the client sent IV_COMP_STUBv2=1, else "comp-lzo no"
// (and the session switches to comp-lzo no). For a Spec other than compress
// migrate, or a client without comp-lzo, it returns s and "".
func (s Spec) Migrate(clientUsesCompLZO bool, peerInfo []string) (session Spec, push string) {
	if s.Compress != "migrate" || !clientUsesCompLZO {
		return s, ""
	}
	for _, l := range peerInfo {
		for _, kv := range strings.Split(l, "\n") {
			if strings.TrimSpace(kv) == "IV_COMP_STUBv2=1" {
				// migrate already frames like stub-v2.
				return s, "compress stub-v2"
			}
		}
	}
	return Spec{CompLZO: "no", Allow: s.Allow}, "comp-lzo no"
}
