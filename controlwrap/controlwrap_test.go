package controlwrap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"weft/wire"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// seqKey is the Appendix B static key K[i] = i.
func seqKey() *StaticKey {
	var k StaticKey
	for i := range k {
		k[i] = byte(i)
	}
	return &k
}

var (
	vecTime  = time.Unix(0x5f000000, 0)
	vecPlain = "38" + "0102030405060708" + "00" + "00000000"
)

const (
	vecTLSCryptClient  = "380102030405060708000000015f00000071b005b7d18af15de9953fecfd59401dc95fa401e71fcbe36fc6de6c5e29b60ad2b5aa44d2"
	vecTLSAuthSHA1Dir1 = "3801020304050607084869d0695aac4b00a803c69700615f34b6fb8197000000015f0000000000000000"
)

func TestAppendixBVectors(t *testing.T) {
	plain := mustHex(t, vecPlain)
	tests := []struct {
		name     string
		send     func() (Wrapper, error)
		recv     func() (Wrapper, error)
		want     string
		overhead int
	}{
		{
			name:     "tls-crypt client",
			send:     func() (Wrapper, error) { return NewTLSCrypt(seqKey(), false) },
			recv:     func() (Wrapper, error) { return NewTLSCrypt(seqKey(), true) },
			want:     vecTLSCryptClient,
			overhead: 40,
		},
		{
			name:     "tls-auth SHA1 dir 1",
			send:     func() (Wrapper, error) { return NewTLSAuth(seqKey(), Dir1, "SHA1") },
			recv:     func() (Wrapper, error) { return NewTLSAuth(seqKey(), Dir0, "sha1") },
			want:     vecTLSAuthSHA1Dir1,
			overhead: 28,
		},
	}
	for _, tt := range tests {
		s, err := tt.send()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		r, err := tt.recv()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if s.Overhead() != tt.overhead {
			t.Errorf("%s: Overhead() = %d, want %d", tt.name, s.Overhead(), tt.overhead)
		}
		got, err := s.Wrap(vecTime, nil, plain)
		if err != nil {
			t.Fatalf("%s: Wrap error %v", tt.name, err)
		}
		if h := hex.EncodeToString(got); h != tt.want {
			t.Errorf("%s: Wrap(%s) = %s, want %s", tt.name, vecPlain, h, tt.want)
		}
		if len(got) != len(plain)+tt.overhead {
			t.Errorf("%s: len(Wrap) = %d, want %d", tt.name, len(got), len(plain)+tt.overhead)
		}
		back, err := r.Unwrap(vecTime, mustHex(t, tt.want))
		if err != nil {
			t.Fatalf("%s: Unwrap(vector) error %v", tt.name, err)
		}
		if !bytes.Equal(back, plain) {
			t.Errorf("%s: Unwrap(vector) = %x, want %x", tt.name, back, plain)
		}
		if _, err := r.Unwrap(vecTime, mustHex(t, tt.want)); !errors.Is(err, ErrReplay) {
			t.Errorf("%s: second Unwrap(vector) error = %v, want %v", tt.name, err, ErrReplay)
		}
		// The sender's own receive direction must not accept its own packets
		// (except with DirNone).
		if _, err := s.Unwrap(vecTime, mustHex(t, tt.want)); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: sender Unwrap(own packet) error = %v, want %v", tt.name, err, ErrAuth)
		}
	}
}

type pair struct {
	name     string
	a, b     Wrapper
	overhead int
}

func pairs(t *testing.T) []pair {
	t.Helper()
	k := seqKey()
	var ps []pair
	must := func(w Wrapper, err error) Wrapper {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	ps = append(ps, pair{"none", NewNone(), NewNone(), 0})
	ps = append(ps, pair{"tls-crypt", must(NewTLSCrypt(k, false)), must(NewTLSCrypt(k, true)), 40})
	for _, d := range []struct {
		name string
		size int
	}{{"SHA1", 20}, {"sha224", 28}, {"SHA256", 32}, {"Sha384", 48}, {"SHA-512", 64}} {
		ps = append(ps, pair{"tls-auth " + d.name + " 1/0", must(NewTLSAuth(k, Dir1, d.name)), must(NewTLSAuth(k, Dir0, d.name)), d.size + 8})
		ps = append(ps, pair{"tls-auth " + d.name + " none", must(NewTLSAuth(k, DirNone, d.name)), must(NewTLSAuth(k, DirNone, d.name)), d.size + 8})
	}
	return ps
}

func TestRoundTrip(t *testing.T) {
	cp := wire.ControlPacket{
		Opcode:          wire.OpControlV1,
		KeyID:           1,
		SessionID:       wire.SessionID{1, 2, 3, 4, 5, 6, 7, 8},
		Acks:            []uint32{0, 1},
		RemoteSessionID: wire.SessionID{9, 9, 9, 9, 9, 9, 9, 9},
		MsgID:           2,
		Payload:         bytes.Repeat([]byte{0x16}, 1100),
	}
	plains := [][]byte{
		cp.Append(nil),
		mustHex(t, vecPlain),
		mustHex(t, "280102030405060708"), // 9 bytes: minimum the wrappers accept
	}
	now := time.Unix(1_800_000_000, 0)
	for _, p := range pairs(t) {
		if p.a.Overhead() != p.overhead {
			t.Errorf("%s: Overhead() = %d, want %d", p.name, p.a.Overhead(), p.overhead)
		}
		for dir, ends := range [][2]Wrapper{{p.a, p.b}, {p.b, p.a}} {
			for i, plain := range plains {
				prefix := []byte("prefix")
				w, err := ends[0].Wrap(now, prefix, plain)
				if err != nil {
					t.Fatalf("%s dir %d plain %d: Wrap error %v", p.name, dir, i, err)
				}
				if !bytes.Equal(w[:len(prefix)], []byte("prefix")) {
					t.Fatalf("%s: Wrap clobbered dst", p.name)
				}
				w = w[len(prefix):]
				if len(w) != len(plain)+p.overhead {
					t.Errorf("%s: len(Wrap) = %d, want %d", p.name, len(w), len(plain)+p.overhead)
				}
				if !bytes.Equal(w[:9], plain[:9]) {
					t.Errorf("%s: wire header %x, want %x", p.name, w[:9], plain[:9])
				}
				got, err := ends[1].Unwrap(now, w)
				if err != nil {
					t.Fatalf("%s dir %d plain %d: Unwrap error %v", p.name, dir, i, err)
				}
				if !bytes.Equal(got, plain) {
					t.Errorf("%s dir %d plain %d: Unwrap(Wrap(x)) = %x, want %x", p.name, dir, i, got, plain)
				}
				if len(w) > 0 && len(got) > 0 && &got[0] == &w[0] {
					t.Errorf("%s: Unwrap result aliases its input", p.name)
				}
				if p.overhead == 0 {
					continue
				}
				// Every bit flip must fail authentication.
				for j := 0; j < len(w); j += 1 + len(w)/64 {
					bad := bytes.Clone(w)
					bad[j] ^= 0x01
					if _, err := ends[1].Unwrap(now, bad); !errors.Is(err, ErrAuth) {
						t.Errorf("%s: Unwrap(bit flip at %d) error = %v, want %v", p.name, j, err, ErrAuth)
					}
				}
				if _, err := ends[1].Unwrap(now, w); !errors.Is(err, ErrReplay) {
					t.Errorf("%s: Unwrap(replay) error = %v, want %v", p.name, err, ErrReplay)
				}
			}
		}
	}
}

func TestReplayIDs(t *testing.T) {
	k := seqKey()
	plain := mustHex(t, vecPlain)
	t1 := time.Unix(1000, 0)
	t2 := time.Unix(2000, 0)
	for _, mk := range []func() (Wrapper, int, error){
		func() (Wrapper, int, error) { w, err := NewTLSCrypt(k, false); return w, 9, err },
		func() (Wrapper, int, error) { w, err := NewTLSAuth(k, Dir1, "SHA256"); return w, 9 + 32, err },
	} {
		w, off, err := mk()
		if err != nil {
			t.Fatal(err)
		}
		for i, now := range []time.Time{t1, t2, t2} {
			pkt, err := w.Wrap(now, nil, plain)
			if err != nil {
				t.Fatal(err)
			}
			id := uint32(pkt[off])<<24 | uint32(pkt[off+1])<<16 | uint32(pkt[off+2])<<8 | uint32(pkt[off+3])
			ts := uint32(pkt[off+4])<<24 | uint32(pkt[off+5])<<16 | uint32(pkt[off+6])<<8 | uint32(pkt[off+7])
			if id != uint32(i+1) || ts != 1000 {
				t.Errorf("packet %d replay-id = %d/%d, want %d/%d", i, id, ts, i+1, 1000)
			}
		}
		w.(CounterSetter).SetSendCounter(0x0f000000)
		pkt, _ := w.Wrap(t2, nil, plain)
		if got := pkt[off : off+4]; !bytes.Equal(got, []byte{0x0f, 0, 0, 1}) {
			t.Errorf("after SetSendCounter(0x0f000000) counter = %x, want 0f000001", got)
		}
		// Counter exhaustion: rolls over only if the clock moved past the time.
		w.(CounterSetter).SetSendCounter(0xffffffff)
		if _, err := w.Wrap(time.Unix(1000, 0), nil, plain); !errors.Is(err, ErrCounterExhausted) {
			t.Errorf("Wrap at exhausted counter error = %v, want %v", err, ErrCounterExhausted)
		}
		pkt, err = w.Wrap(t2, nil, plain)
		if err != nil {
			t.Fatalf("Wrap after clock advanced: %v", err)
		}
		if got := pkt[off : off+8]; !bytes.Equal(got, []byte{0, 0, 0, 1, 0, 0, 0x07, 0xd0}) {
			t.Errorf("replay-id after rollover = %x, want 00000001000007d0", got)
		}
	}
}

func TestReceiveAnyStart(t *testing.T) {
	k := seqKey()
	plain := mustHex(t, vecPlain)
	now := time.Unix(5000, 0)
	c, _ := NewTLSCrypt(k, false)
	s, _ := NewTLSCrypt(k, true)
	c.(CounterSetter).SetSendCounter(0x0f000000)
	p1, _ := c.Wrap(now, nil, plain)
	p2, _ := c.Wrap(now, nil, plain)
	if _, err := s.Unwrap(now, p2); err != nil {
		t.Errorf("Unwrap(first, 0x0f000002) error %v", err)
	}
	if _, err := s.Unwrap(now, p1); err != nil {
		t.Errorf("Unwrap(reordered 0x0f000001) error %v", err)
	}
	if _, err := s.Unwrap(now, p1); !errors.Is(err, ErrReplay) {
		t.Errorf("Unwrap(replayed) error = %v, want %v", err, ErrReplay)
	}
}

func TestShort(t *testing.T) {
	now := time.Unix(1, 0)
	for _, p := range pairs(t) {
		min := 9 + p.overhead
		if _, err := p.b.Unwrap(now, make([]byte, min-1)); !errors.Is(err, ErrShort) {
			t.Errorf("%s: Unwrap(%d bytes) error = %v, want %v", p.name, min-1, err, ErrShort)
		}
		if _, err := p.b.Unwrap(now, nil); !errors.Is(err, ErrShort) {
			t.Errorf("%s: Unwrap(nil) error = %v, want %v", p.name, err, ErrShort)
		}
		if _, err := p.a.Wrap(now, nil, make([]byte, 8)); !errors.Is(err, ErrShort) {
			t.Errorf("%s: Wrap(8 bytes) error = %v, want %v", p.name, err, ErrShort)
		}
	}
}

func TestNewTLSAuthErrors(t *testing.T) {
	k := seqKey()
	for _, d := range []string{"MD5", "SHA3-256", "none", "SHA2-1"} {
		if _, err := NewTLSAuth(k, Dir0, d); err == nil {
			t.Errorf("NewTLSAuth(%q) error = nil, want error", d)
		}
	}
	for _, d := range []string{"", "sha1", "SHA-1", "sha2-256", "SHA512"} {
		if _, err := NewTLSAuth(k, Dir0, d); err != nil {
			t.Errorf("NewTLSAuth(%q) error = %v, want nil", d, err)
		}
	}
	if _, err := NewTLSAuth(k, KeyDirection(7), "SHA1"); err == nil {
		t.Errorf("NewTLSAuth(dir 7) error = nil, want error")
	}
	if _, err := NewTLSAuth(nil, Dir0, "SHA1"); err == nil {
		t.Errorf("NewTLSAuth(nil key) error = nil, want error")
	}
	if _, err := NewTLSCrypt(nil, true); err == nil {
		t.Errorf("NewTLSCrypt(nil key) error = nil, want error")
	}
}

func TestKeyDirection(t *testing.T) {
	tests := []struct {
		in   string
		want KeyDirection
		err  bool
	}{
		{"0", Dir0, false}, {"1", Dir1, false}, {"", DirNone, false}, {" 1 ", Dir1, false},
		{"bidirectional", DirNone, false}, {"BI", DirNone, false}, {"2", DirNone, true}, {"x", DirNone, true},
	}
	for _, tt := range tests {
		got, err := ParseKeyDirection(tt.in)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("ParseKeyDirection(%q) = %v, %v, want %v, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	for d, s := range map[KeyDirection]string{DirNone: "none", Dir0: "0", Dir1: "1", 9: "KeyDirection(9)"} {
		if d.String() != s {
			t.Errorf("KeyDirection(%d).String() = %q, want %q", int(d), d.String(), s)
		}
	}
}

func keyFile(k *StaticKey, lineLen int, crlf bool) []byte {
	h := hex.EncodeToString(k[:])
	nl := "\n"
	if crlf {
		nl = "\r\n"
	}
	var b strings.Builder
	b.WriteString("#" + nl + "# 2048 bit OpenVPN static key" + nl + "#" + nl)
	b.WriteString("-----BEGIN OpenVPN Static key V1-----" + nl)
	for i := 0; i < len(h); i += lineLen {
		e := min(i+lineLen, len(h))
		b.WriteString(h[i:e] + nl)
	}
	b.WriteString("-----END OpenVPN Static key V1-----" + nl + "trailing junk ☺" + nl)
	return []byte(b.String())
}

func TestParseStaticKey(t *testing.T) {
	k := seqKey()
	good := []struct {
		name string
		data []byte
	}{
		{"32 per line", keyFile(k, 32, false)},
		{"crlf", keyFile(k, 32, true)},
		{"one line", keyFile(k, 512, false)},
		{"odd line length", keyFile(k, 7, false)},
		{"encode", k.Encode()},
		{"upper case", []byte("-----BEGIN OpenVPN Static key V1-----\n" + strings.ToUpper(hex.EncodeToString(k[:])) + "\n-----END OpenVPN Static key V1-----")},
		{"spaces and tabs", []byte("x-----BEGIN OpenVPN Static key V1-----  " + strings.Join(strings.SplitAfter(hex.EncodeToString(k[:]), "0"), " \t") + "-----END OpenVPN Static key V1-----")},
	}
	for _, tt := range good {
		got, err := ParseStaticKey(tt.data)
		if err != nil {
			t.Errorf("ParseStaticKey(%s) error %v", tt.name, err)
			continue
		}
		if *got != *k {
			t.Errorf("ParseStaticKey(%s) = %x, want %x", tt.name, got[:], k[:])
		}
	}
	body := hex.EncodeToString(k[:])
	wrapBody := func(s string) []byte {
		return []byte("-----BEGIN OpenVPN Static key V1-----\n" + s + "\n-----END OpenVPN Static key V1-----\n")
	}
	bad := []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "missing"},
		{"no end", []byte("-----BEGIN OpenVPN Static key V1-----\n" + body), "missing"},
		{"end before begin", []byte("-----END OpenVPN Static key V1-----\n-----BEGIN OpenVPN Static key V1-----\n" + body), "missing"},
		{"short", wrapBody(body[:510]), "255 bytes"},
		{"long", wrapBody(body + "00"), "more than 256"},
		{"odd", wrapBody(body + "0"), "odd number"},
		{"non-hex", wrapBody(body[:100] + "zz" + body[102:]), "non-hex"},
		{"pem-ish", wrapBody("AAAA+/=="), "non-hex"},
	}
	for _, tt := range bad {
		_, err := ParseStaticKey(tt.data)
		if !errors.Is(err, ErrKeyFile) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseStaticKey(%s) error = %v, want %v containing %q", tt.name, err, ErrKeyFile, tt.msg)
		}
	}
}

func FuzzParseStaticKey(f *testing.F) {
	k := seqKey()
	f.Add(keyFile(k, 32, false))
	f.Add(keyFile(k, 7, true))
	f.Add([]byte("-----BEGIN OpenVPN Static key V1-----\n00\n-----END OpenVPN Static key V1-----"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseStaticKey(data)
		if err != nil {
			if !errors.Is(err, ErrKeyFile) {
				t.Fatalf("ParseStaticKey error %v does not wrap ErrKeyFile", err)
			}
			return
		}
		k2, err := ParseStaticKey(k.Encode())
		if err != nil || *k2 != *k {
			t.Fatalf("ParseStaticKey(Encode(k)) = %x, %v, want %x", k2, err, k[:])
		}
	})
}

// fuzzUnwrap checks a pair of wrappers against arbitrary input: Unwrap must
// not panic, must return a known error or a plain packet of at least 9
// bytes, and Wrap/Unwrap must round-trip the input as a plain packet.
func fuzzUnwrap(f *testing.F, mk func() (Wrapper, Wrapper), seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		snd, rcv := mk()
		now := time.Unix(0x5f000000, 0)
		got, err := rcv.Unwrap(now, in)
		if err != nil {
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrAuth) && !errors.Is(err, ErrReplay) {
				t.Fatalf("Unwrap(%x) error %v wraps no sentinel", in, err)
			}
		} else {
			if len(got) < 9 || !bytes.Equal(got[:9], in[:9]) || len(got)+rcv.Overhead() != len(in) {
				t.Fatalf("Unwrap(%x) = %x: bad plain packet", in, got)
			}
		}
		if len(in) < 9 {
			return
		}
		_, rcv = mk() // fresh receive window
		w, err := snd.Wrap(now, nil, in)
		if err != nil {
			t.Fatalf("Wrap(%x) error %v", in, err)
		}
		back, err := rcv.Unwrap(now, w)
		if err != nil {
			t.Fatalf("Unwrap(Wrap(%x)) error %v", in, err)
		}
		if !bytes.Equal(back, in) {
			t.Fatalf("Unwrap(Wrap(%x)) = %x", in, back)
		}
	})
}

func FuzzUnwrapNone(f *testing.F) {
	fuzzUnwrap(f, func() (Wrapper, Wrapper) { return NewNone(), NewNone() },
		[]byte{}, []byte{0x38, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0})
}

func FuzzUnwrapTLSAuth(f *testing.F) {
	v, _ := hex.DecodeString(vecTLSAuthSHA1Dir1)
	p, _ := hex.DecodeString(vecPlain)
	fuzzUnwrap(f, func() (Wrapper, Wrapper) {
		s, _ := NewTLSAuth(seqKey(), Dir1, "SHA1")
		r, _ := NewTLSAuth(seqKey(), Dir0, "SHA1")
		return s, r
	}, v, p, v[:36], []byte{})
}

func FuzzUnwrapTLSCrypt(f *testing.F) {
	v, _ := hex.DecodeString(vecTLSCryptClient)
	p, _ := hex.DecodeString(vecPlain)
	fuzzUnwrap(f, func() (Wrapper, Wrapper) {
		s, _ := NewTLSCrypt(seqKey(), false)
		r, _ := NewTLSCrypt(seqKey(), true)
		return s, r
	}, v, p, v[:49], []byte{})
}
