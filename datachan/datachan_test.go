package datachan

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
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

// revKey is the Appendix B key2 B[i] = 255 - i.
func revKey() *Key2 {
	var k Key2
	for i := range k {
		k[i] = byte(255 - i)
	}
	return &k
}

const vecDataV2 = "4800000700000001aa850d742aad74d81b24730fa577b0ff1b33081486"

var now = time.Unix(1_800_000_000, 0)

var ciphers = []Cipher{AES128GCM, AES256GCM, ChaCha20Poly1305}

func pair(t testing.TB, c Cipher) (client, server *Keys) {
	t.Helper()
	var err error
	if client, err = NewKeys(c, revKey(), false, 64, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if server, err = NewKeys(c, revKey(), true, 64, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	return client, server
}

func TestCipherNames(t *testing.T) {
	tests := []struct {
		name string
		c    Cipher
		size int
	}{
		{"AES-128-GCM", AES128GCM, 16},
		{"aes-256-gcm", AES256GCM, 32},
		{"ChaCha20-Poly1305", ChaCha20Poly1305, 32},
	}
	for _, tt := range tests {
		c, err := ParseCipher(tt.name)
		if err != nil || c != tt.c {
			t.Errorf("ParseCipher(%q) = %v, %v, want %v", tt.name, c, err, tt.c)
		}
		if c.KeySize() != tt.size {
			t.Errorf("%v.KeySize() = %d, want %d", c, c.KeySize(), tt.size)
		}
		if back, _ := ParseCipher(c.String()); back != c {
			t.Errorf("ParseCipher(%v.String()) = %v", c, back)
		}
	}
	for _, bad := range []string{"", "AES-256-CBC", "BF-CBC", "none", "AES-192-GCM"} {
		if _, err := ParseCipher(bad); !errors.Is(err, ErrCipher) {
			t.Errorf("ParseCipher(%q) error = %v, want %v", bad, err, ErrCipher)
		}
	}
	if s := Cipher(0).String(); s != "Cipher(0)" {
		t.Errorf("Cipher(0).String() = %q", s)
	}
	if Cipher(9).KeySize() != 0 {
		t.Errorf("Cipher(9).KeySize() != 0")
	}
	if _, err := NewKeys(Cipher(0), revKey(), false, 0, 0); !errors.Is(err, ErrCipher) {
		t.Errorf("NewKeys(Cipher(0)) error = %v, want %v", err, ErrCipher)
	}
	if _, err := NewKeys(AES256GCM, nil, false, 0, 0); err == nil {
		t.Errorf("NewKeys(nil key) error = nil")
	}
}

func TestAppendixBDataVector(t *testing.T) {
	client, server := pair(t, AES256GCM)
	got, err := client.Seal(nil, 0, 7, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if h := hex.EncodeToString(got); h != vecDataV2 {
		t.Errorf("Seal(kid 0, peer 7, hello) = %s, want %s", h, vecDataV2)
	}
	if client.SendPID() != 1 {
		t.Errorf("SendPID() = %d, want 1", client.SendPID())
	}
	pt, err := server.Open(now, nil, mustHex(t, vecDataV2))
	if err != nil || string(pt) != "hello" {
		t.Errorf("Open(vector) = %q, %v, want %q", pt, err, "hello")
	}
	if _, err := server.Open(now, nil, mustHex(t, vecDataV2)); !errors.Is(err, ErrReplay) {
		t.Errorf("Open(vector again) error = %v, want %v", err, ErrReplay)
	}
	// The client must not decrypt its own packet (directions differ).
	c2, _ := pair(t, AES256GCM)
	if _, err := c2.Open(now, nil, mustHex(t, vecDataV2)); !errors.Is(err, ErrAuth) {
		t.Errorf("client Open(own packet) error = %v, want %v", err, ErrAuth)
	}
}

func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 15, 16, 17, 1400, 9000}
	for _, c := range ciphers {
		for _, peerID := range []int32{-1, 0, 7, 0xFFFFFF} {
			for _, kid := range []uint8{0, 1, 7} {
				client, server := pair(t, c)
				for dir, ends := range [][2]*Keys{{client, server}, {server, client}} {
					for i, n := range sizes {
						pt := bytes.Repeat([]byte{byte(n)}, n)
						pkt, err := ends[0].Seal([]byte("xx"), kid, peerID, pt)
						if err != nil {
							t.Fatal(err)
						}
						if string(pkt[:2]) != "xx" {
							t.Fatalf("Seal clobbered dst prefix")
						}
						pkt = pkt[2:]
						if len(pkt) != n+Overhead(peerID) {
							t.Errorf("%v: len(Seal(%d bytes)) = %d, want %d", c, n, len(pkt), n+Overhead(peerID))
						}
						op, gk, gp, hl, err := wire.DataHeader(pkt)
						wantOp := wire.OpDataV2
						if peerID < 0 {
							wantOp = wire.OpDataV1
						}
						if err != nil || op != wantOp || gk != kid || gp != peerID || hl != wire.DataHeaderLen(peerID) {
							t.Errorf("%v: DataHeader(Seal) = %v %d %d %d %v", c, op, gk, gp, hl, err)
						}
						if pid := uint32(pkt[hl])<<24 | uint32(pkt[hl+1])<<16 | uint32(pkt[hl+2])<<8 | uint32(pkt[hl+3]); pid != uint32(i+1) {
							t.Errorf("%v: data-pid = %d, want %d", c, pid, i+1)
						}
						got, err := ends[1].Open(now, []byte("yy"), pkt)
						if err != nil {
							t.Fatalf("%v peer %d kid %d dir %d: Open(Seal(%d bytes)) error %v", c, peerID, kid, dir, n, err)
						}
						if string(got[:2]) != "yy" || !bytes.Equal(got[2:], pt) {
							t.Errorf("%v: Open(Seal(x)) = %x, want yy+%x", c, got, pt)
						}
						// Tampering anywhere fails authentication.
						for j := 0; j < len(pkt); j += 1 + len(pkt)/16 {
							bad := bytes.Clone(pkt)
							bad[j] ^= 0x80
							if _, err := ends[1].Open(now, nil, bad); err == nil || errors.Is(err, ErrReplay) {
								t.Errorf("%v: Open(flip byte %d) error = %v, want auth/header error", c, j, err)
							}
						}
						if _, err := ends[1].Open(now, nil, pkt); !errors.Is(err, ErrReplay) {
							t.Errorf("%v: Open(replay) error = %v, want %v", c, err, ErrReplay)
						}
					}
				}
			}
		}
	}
}

// TestV1HeaderNotAuthenticated: for P_DATA_V1 only the data-pid is AAD, so
// changing the key_id does not break authentication (OpenVPN behaviour),
// while for P_DATA_V2 the header is authenticated.
func TestAADScope(t *testing.T) {
	client, server := pair(t, AES256GCM)
	v1, _ := client.Seal(nil, 0, -1, []byte("x"))
	v1[0] = wire.HeaderByte(wire.OpDataV1, 3)
	if _, err := server.Open(now, nil, v1); err != nil {
		t.Errorf("Open(V1 with other key_id) error = %v, want nil", err)
	}
	v2, _ := client.Seal(nil, 0, 5, []byte("x"))
	v2[3] = 6
	if _, err := server.Open(now, nil, v2); !errors.Is(err, ErrAuth) {
		t.Errorf("Open(V2 with other peer-id) error = %v, want %v", err, ErrAuth)
	}
}

func TestOpenErrors(t *testing.T) {
	_, server := pair(t, AES256GCM)
	v := mustHex(t, vecDataV2)
	tests := []struct {
		name string
		pkt  []byte
		err  error
	}{
		{"empty", nil, wire.ErrShort},
		{"control opcode", append([]byte{0x20}, v[1:]...), wire.ErrOpcode},
		{"v2 short header", v[:3], wire.ErrShort},
		{"no tag", v[:8], ErrShort},
		{"partial tag", v[:23], ErrShort},
		{"v1 short", []byte{0x30, 0, 0, 0, 1}, ErrShort},
		{"truncated ciphertext", v[:len(v)-1], ErrAuth},
		{"pid zero", append(append([]byte{}, v[:4]...), append([]byte{0, 0, 0, 0}, v[8:]...)...), ErrAuth},
	}
	for _, tt := range tests {
		dst := []byte("keep")
		got, err := server.Open(now, dst, tt.pkt)
		if !errors.Is(err, tt.err) {
			t.Errorf("Open(%s) error = %v, want %v", tt.name, err, tt.err)
		}
		if string(got) != "keep" {
			t.Errorf("Open(%s) returned %q, want dst unchanged", tt.name, got)
		}
	}
}

func TestReplayWindow(t *testing.T) {
	client, server := pair(t, ChaCha20Poly1305)
	var pkts [][]byte
	for i := 0; i < 100; i++ {
		p, _ := client.Seal(nil, 0, 1, []byte{byte(i)})
		pkts = append(pkts, p)
	}
	check := func(i int, want error) {
		t.Helper()
		_, err := server.Open(now, nil, pkts[i])
		if !errors.Is(err, want) {
			t.Errorf("Open(pid %d) error = %v, want %v", i+1, err, want)
		}
	}
	check(99, nil)       // pid 100
	check(50, nil)       // 49 below: in window
	check(50, ErrReplay) // replay
	check(36, nil)       // pid 37, 63 below
	check(35, ErrReplay) // pid 36, 64 below: too old
	check(98, nil)       // pid 99
	// Disabled replay protection accepts duplicates.
	noReplay, _ := NewKeys(ChaCha20Poly1305, revKey(), true, -1, 0)
	for i := 0; i < 3; i++ {
		if _, err := noReplay.Open(now, nil, pkts[0]); err != nil {
			t.Errorf("no-replay Open #%d error %v", i, err)
		}
	}
}

func TestPIDExhausted(t *testing.T) {
	client, server := pair(t, AES128GCM)
	client.sendPID = 0xFFFFFFFE
	p, err := client.Seal(nil, 0, 0, []byte("last"))
	if err != nil {
		t.Fatalf("Seal(pid 0xFFFFFFFF) error %v", err)
	}
	if client.SendPID() != 0xFFFFFFFF {
		t.Errorf("SendPID() = %#x", client.SendPID())
	}
	if got, err := server.Open(now, nil, p); err != nil || string(got) != "last" {
		t.Errorf("Open(pid 0xFFFFFFFF) = %q, %v", got, err)
	}
	dst := []byte("d")
	got, err := client.Seal(dst, 0, 0, []byte("x"))
	if !errors.Is(err, ErrPIDExhausted) || string(got) != "d" {
		t.Errorf("Seal after exhaustion = %q, %v, want %q, %v", got, err, "d", ErrPIDExhausted)
	}
}

// TestSealBuffers exercises every buffer layout: no capacity, exact
// capacity, extra capacity, plaintext in place and misplaced in dst.
func TestSealBuffers(t *testing.T) {
	for _, c := range ciphers {
		for _, peerID := range []int32{-1, 3} {
			ov := Overhead(peerID)
			for _, n := range []int{0, 1, 100, 1400} {
				pt := make([]byte, n)
				for i := range pt {
					pt[i] = byte(i * 7)
				}
				layouts := []struct {
					name  string
					prep  func() (dst, plain []byte)
					extra int
				}{
					{"nil dst", func() ([]byte, []byte) { return nil, bytes.Clone(pt) }, 0},
					{"exact cap", func() ([]byte, []byte) { return make([]byte, 3, 3+n+ov), bytes.Clone(pt) }, 0},
					{"exact cap in place", func() ([]byte, []byte) {
						b := make([]byte, 3+n+ov)
						copy(b[3+ov:], pt)
						return b[:3], b[3+ov:]
					}, 0},
					{"roomy in place", func() ([]byte, []byte) {
						b := make([]byte, 3+n+ov+TagLen)
						copy(b[3+ov:], pt)
						return b[:3], b[3+ov : 3+ov+n]
					}, 0},
					{"plaintext at dst end", func() ([]byte, []byte) {
						b := make([]byte, 3+n+ov+TagLen)
						copy(b[3:], pt)
						return b[:3], b[3 : 3+n]
					}, 0},
					{"plaintext shifted by 5", func() ([]byte, []byte) {
						b := make([]byte, 3+n+ov+TagLen+5)
						copy(b[3+ov+5:], pt)
						return b[:3], b[3+ov+5 : 3+ov+5+n]
					}, 0},
					{"plaintext after scratch", func() ([]byte, []byte) {
						b := make([]byte, 3+2*n+ov+TagLen+1)
						off := 3 + n + ov + 1
						copy(b[off:], pt)
						return b[:3], b[off : off+n]
					}, 0},
					{"plaintext inside dst", func() ([]byte, []byte) {
						b := make([]byte, 3+n, 3+2*n+ov+TagLen)
						copy(b[3:], pt)
						return b, b[3 : 3+n]
					}, 0},
				}
				for _, l := range layouts {
					client, server := pair(t, c)
					dst, plain := l.prep()
					prefix := bytes.Clone(dst)
					out, err := client.Seal(dst, 2, peerID, plain)
					if err != nil {
						t.Fatalf("%v %s n=%d: Seal error %v", c, l.name, n, err)
					}
					if !bytes.Equal(out[:len(prefix)], prefix) {
						t.Errorf("%v %s n=%d: Seal changed dst prefix", c, l.name, n)
					}
					got, err := server.Open(now, nil, out[len(prefix):])
					if err != nil || !bytes.Equal(got, pt) {
						t.Errorf("%v %s n=%d peer %d: Open(Seal) = %x, %v, want %x", c, l.name, n, peerID, got, err, pt)
					}
				}
			}
		}
	}
}

// TestOpenInPlace decrypts into the packet's own buffer.
func TestOpenInPlace(t *testing.T) {
	for _, c := range ciphers {
		client, server := pair(t, c)
		pt := bytes.Repeat([]byte("abc"), 400)
		pkt, _ := client.Seal(make([]byte, 0, 2000), 0, 1, pt)
		got, err := server.Open(now, pkt[:0], pkt)
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%v: in-place Open = %v, want plaintext", c, err)
		}
	}
}

func TestAllocs(t *testing.T) {
	for _, c := range ciphers {
		for _, peerID := range []int32{-1, 1} {
			client, server := pair(t, c)
			pt := make([]byte, 1400)
			sbuf := make([]byte, 0, 1400+Overhead(peerID))
			obuf := make([]byte, 0, 1500)
			var pkt []byte
			sealAllocs := testing.AllocsPerRun(200, func() {
				var err error
				pkt, err = client.Seal(sbuf[:0], 0, peerID, pt)
				if err != nil {
					t.Fatal(err)
				}
			})
			if sealAllocs != 0 {
				t.Errorf("%v peer %d: Seal allocs = %v, want 0", c, peerID, sealAllocs)
			}
			openAllocs := testing.AllocsPerRun(200, func() {
				pkt, _ = client.Seal(sbuf[:0], 0, peerID, pt)
				if _, err := server.Open(now, obuf[:0], pkt); err != nil {
					t.Fatal(err)
				}
			})
			if openAllocs != 0 {
				t.Errorf("%v peer %d: Seal+Open allocs = %v, want 0", c, peerID, openAllocs)
			}
		}
	}
}

func TestPRFAppendixB(t *testing.T) {
	var pre [48]byte
	var cR1, cR2, sR1, sR2 [32]byte
	var cSID, sSID [8]byte
	fill := func(b []byte, start byte) {
		for i := range b {
			b[i] = start + byte(i)
		}
	}
	fill(pre[:], 0x00)
	fill(cR1[:], 0x30)
	fill(cR2[:], 0x50)
	fill(sR1[:], 0x70)
	fill(sR2[:], 0x90)
	fill(cSID[:], 0xb0)
	fill(sSID[:], 0xc0)
	k := PRFKeys(pre, cR1, sR1, cR2, sR2, cSID, sSID)
	want0 := "776cd4e0f4a91c4aba3468de473e1d831d2a73ed60249c98df545413a3ec407941a5abab90cda7d1553117534ff8fa1d5cc0410c2c5d172cbf075174eb37f1f5"
	want128 := "978de7bab48ed9e3ca1dcf30aa0b6cbfbc8ec71c08d1969d49b219c0f6abcc832a3547cbc7abf0bf0daa347742c0afe45520a9dba5a2ab91a010af6b5a57cbb0"
	if got := hex.EncodeToString(k[0:64]); got != want0 {
		t.Errorf("PRFKeys key2[0:64] = %s, want %s", got, want0)
	}
	if got := hex.EncodeToString(k[128:192]); got != want128 {
		t.Errorf("PRFKeys key2[128:192] = %s, want %s", got, want128)
	}
	// Swapping the session ids must change the keys.
	if k2 := PRFKeys(pre, cR1, sR1, cR2, sR2, sSID, cSID); k2 == k {
		t.Errorf("PRFKeys ignores session id order")
	}
}

// TestTLS10PRFOddSecret checks that odd-length secrets are split into two
// halves sharing the middle byte, so every secret byte matters.
func TestTLS10PRFOddSecret(t *testing.T) {
	out1 := make([]byte, 40)
	out2 := make([]byte, 40)
	tls10PRF(out1, []byte("abcde"), "l", []byte("s"))
	tls10PRF(out2, []byte("abcdf"), "l", []byte("s"))
	if bytes.Equal(out1, out2) {
		t.Errorf("tls10PRF ignores the last secret byte")
	}
	tls10PRF(out2, []byte("abcde"), "l", []byte("s"))
	if !bytes.Equal(out1, out2) {
		t.Errorf("tls10PRF is not deterministic")
	}
}

func FuzzOpen(f *testing.F) {
	v, _ := hex.DecodeString(vecDataV2)
	f.Add(v, []byte("hello"), int32(7))
	f.Add([]byte{}, []byte{}, int32(-1))
	f.Add([]byte{0x30, 0, 0, 0, 1}, []byte("x"), int32(-1))
	f.Add(v[:24], bytes.Repeat([]byte{1}, 1400), int32(0xFFFFFF))
	f.Fuzz(func(t *testing.T, pkt, plain []byte, peerID int32) {
		if peerID < -1 {
			peerID = -1
		}
		if peerID > wire.MaxPeerID {
			peerID &= wire.MaxPeerID
		}
		for _, c := range ciphers {
			client, server := pair(t, c)
			got, err := server.Open(now, nil, pkt)
			if err == nil {
				// Only the real vector authenticates.
				if c != AES256GCM || !bytes.Equal(pkt, v) || string(got) != "hello" {
					t.Fatalf("%v: Open(%x) = %x accepted a forged packet", c, pkt, got)
				}
			} else if !errors.Is(err, ErrAuth) && !errors.Is(err, ErrShort) && !errors.Is(err, ErrReplay) &&
				!errors.Is(err, wire.ErrShort) && !errors.Is(err, wire.ErrOpcode) {
				t.Fatalf("%v: Open(%x) error %v wraps no sentinel", c, pkt, err)
			}
			_, server = pair(t, c) // fresh replay window
			sealed, err := client.Seal(nil, 1, peerID, plain)
			if err != nil {
				t.Fatal(err)
			}
			back, err := server.Open(now, nil, sealed)
			if err != nil || !bytes.Equal(back, plain) {
				t.Fatalf("%v: Open(Seal(%x)) = %x, %v", c, plain, back, err)
			}
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	for _, c := range ciphers {
		b.Run(fmt.Sprint(c), func(b *testing.B) {
			client, _ := pair(b, c)
			pt := make([]byte, 1400)
			buf := make([]byte, 0, 1500)
			b.SetBytes(int64(len(pt)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := client.Seal(buf[:0], 0, 1, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, c := range ciphers {
		b.Run(fmt.Sprint(c), func(b *testing.B) {
			client, _ := pair(b, c)
			server, err := NewKeys(c, revKey(), true, -1, 0) // no replay: the same packet is reopened
			if err != nil {
				b.Fatal(err)
			}
			pt := make([]byte, 1400)
			pkt, _ := client.Seal(nil, 0, 1, pt)
			buf := make([]byte, 0, 1500)
			b.SetBytes(int64(len(pt)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := server.Open(now, buf[:0], pkt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
