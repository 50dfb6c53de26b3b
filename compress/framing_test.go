package compress

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// allSpecs is every framing under every policy, including the ones New
// refuses.
func allSpecs() []Spec {
	var out []Spec
	for _, allow := range []string{"", "no", "asym", "yes"} {
		out = append(out, Spec{Allow: allow})
		for _, c := range []string{"no", "yes", "adaptive", "async"} {
			out = append(out, Spec{CompLZO: c, Allow: allow})
		}
		for _, c := range []string{"stub", "stub-v2", "lz4", "lz4-v2", "lzo", "migrate"} {
			out = append(out, Spec{Compress: c, Allow: allow})
		}
	}
	return out
}

func mustNew(t testing.TB, s Spec) Framing {
	t.Helper()
	f, err := New(s)
	if err != nil {
		t.Fatalf("New(%+v): %v", s, err)
	}
	return f
}

func TestNew(t *testing.T) {
	tests := []struct {
		spec    Spec
		name    string
		wantErr error
	}{
		{Spec{}, "none", nil},
		{Spec{Allow: "no"}, "none", nil},
		{Spec{CompLZO: "no"}, "comp-lzo no", nil},
		{Spec{CompLZO: "no", Allow: "no"}, "comp-lzo no", nil},
		{Spec{CompLZO: "yes"}, "comp-lzo yes", nil},
		{Spec{CompLZO: "adaptive", Allow: "yes"}, "comp-lzo adaptive", nil},
		{Spec{CompLZO: "async"}, "comp-lzo async", nil},
		{Spec{Compress: "stub"}, "compress stub", nil},
		{Spec{Compress: "stub", Allow: "no"}, "compress stub", nil},
		{Spec{Compress: "stub-v2", Allow: "no"}, "compress stub-v2", nil},
		{Spec{Compress: "migrate", Allow: "no"}, "compress migrate", nil},
		{Spec{Compress: "lz4"}, "compress lz4", nil},
		{Spec{Compress: "lz4-v2", Allow: "yes"}, "compress lz4-v2", nil},
		{Spec{Compress: "lzo", Allow: "asym"}, "compress lzo", nil},
		{Spec{CompLZO: "no", Compress: "lz4-v2"}, "compress lz4-v2", nil},
		{Spec{CompLZO: "yes", Compress: "stub-v2", Allow: "no"}, "compress stub-v2", nil},
		// Refused like OpenVPN 2.6 ("Cannot set comp-lzo to 'yes',
		// allow-compression is set to 'no'").
		{Spec{CompLZO: "yes", Allow: "no"}, "", ErrNotAllowed},
		{Spec{CompLZO: "adaptive", Allow: "no"}, "", ErrNotAllowed},
		{Spec{Compress: "lz4", Allow: "no"}, "", ErrNotAllowed},
		{Spec{Compress: "lz4-v2", Allow: "no"}, "", ErrNotAllowed},
		{Spec{Compress: "lzo", Allow: "no"}, "", ErrNotAllowed},
		{Spec{CompLZO: "maybe"}, "", ErrInvalidSpec},
		{Spec{Compress: "snappy"}, "", ErrInvalidSpec},
		{Spec{Compress: "LZ4"}, "", ErrInvalidSpec},
		{Spec{Allow: "sometimes"}, "", ErrInvalidSpec},
	}
	for _, tt := range tests {
		f, err := New(tt.spec)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) || f != nil {
				t.Errorf("New(%+v) = %v, %v; want error %v", tt.spec, f, err, tt.wantErr)
			}
			if !errors.Is(tt.spec.Validate(), tt.wantErr) {
				t.Errorf("Validate(%+v) = %v", tt.spec, tt.spec.Validate())
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%+v): %v", tt.spec, err)
			continue
		}
		if f.Name() != tt.name {
			t.Errorf("New(%+v).Name() = %q, want %q", tt.spec, f.Name(), tt.name)
		}
	}
}

func TestEncodeWire(t *testing.T) {
	ip := []byte{0x45, 0x00, 0x00, 0x14, 0xAA}
	v5 := []byte{0x50, 0x01, 0x02}
	tests := []struct {
		spec    Spec
		payload []byte
		want    []byte
	}{
		{Spec{}, ip, ip},
		{Spec{CompLZO: "no"}, ip, []byte{0xFA, 0x45, 0x00, 0x00, 0x14, 0xAA}},
		{Spec{CompLZO: "yes"}, ip, []byte{0xFA, 0x45, 0x00, 0x00, 0x14, 0xAA}},
		{Spec{Compress: "lzo"}, ip, []byte{0xFA, 0x45, 0x00, 0x00, 0x14, 0xAA}},
		{Spec{Compress: "stub"}, ip, []byte{0xFB, 0x00, 0x00, 0x14, 0xAA, 0x45}},
		{Spec{Compress: "lz4"}, ip, []byte{0xFB, 0x00, 0x00, 0x14, 0xAA, 0x45}},
		{Spec{Compress: "stub"}, []byte{0x2A}, []byte{0xFB, 0x2A}},
		{Spec{Compress: "stub-v2"}, ip, ip},
		{Spec{Compress: "lz4-v2"}, ip, ip},
		{Spec{Compress: "migrate"}, ip, ip},
		{Spec{Compress: "stub-v2"}, v5, []byte{0x50, 0x00, 0x50, 0x01, 0x02}},
		{Spec{Compress: "lz4-v2", Allow: "yes"}, v5, []byte{0x50, 0x00, 0x50, 0x01, 0x02}},
		{Spec{Compress: "migrate"}, v5, []byte{0x50, 0x00, 0x50, 0x01, 0x02}},
		// Short payloads are never compressed, even with allow yes.
		{Spec{CompLZO: "yes", Allow: "yes"}, bytes.Repeat([]byte{'a'}, 99), append([]byte{0xFA}, bytes.Repeat([]byte{'a'}, 99)...)},
		// Empty payloads are not framed at all.
		{Spec{CompLZO: "no"}, nil, nil},
		{Spec{Compress: "stub"}, []byte{}, nil},
		{Spec{Compress: "stub-v2"}, nil, nil},
	}
	for _, tt := range tests {
		f := mustNew(t, tt.spec)
		in := slices.Clone(tt.payload)
		got := f.Encode([]byte("hdr"), tt.payload)
		if !bytes.Equal(got[:3], []byte("hdr")) || !bytes.Equal(got[3:], tt.want) {
			t.Errorf("%s (%+v): Encode(% x) = % x, want hdr + % x", f.Name(), tt.spec, tt.payload, got, tt.want)
		}
		if !bytes.Equal(in, tt.payload) {
			t.Errorf("%s: Encode modified its payload", f.Name())
		}
	}
}

func TestDecodeWire(t *testing.T) {
	lzoHello := lzoEncode([]byte("hello hello hello hello"))
	lz4Block := lz4Encode(t, bytes.Repeat([]byte("hello "), 30))
	lz4Swapped := append(append([]byte{0x69}, lz4Block[1:]...), lz4Block[0])
	tests := []struct {
		name    string
		spec    Spec
		framed  []byte
		want    []byte
		wantErr error
	}{
		{"none passes anything", Spec{}, []byte{0xFA, 1}, []byte{0xFA, 1}, nil},
		{"comp-lzo no", Spec{CompLZO: "no"}, []byte{0xFA, 1, 2}, []byte{1, 2}, nil},
		{"comp-lzo no, header only", Spec{CompLZO: "no"}, []byte{0xFA}, []byte{}, nil},
		{"comp-lzo no accepts LZO (asym)", Spec{CompLZO: "no"}, append([]byte{0x66}, lzoHello...), []byte("hello hello hello hello"), nil},
		{"comp-lzo no refuses LZO (allow no)", Spec{CompLZO: "no", Allow: "no"}, append([]byte{0x66}, lzoHello...), nil, ErrNotAllowed},
		{"comp-lzo no, unknown byte", Spec{CompLZO: "no"}, []byte{0x45, 1}, nil, ErrBadHeader},
		{"comp-lzo no, swap byte", Spec{CompLZO: "no"}, []byte{0xFB, 1}, nil, ErrBadHeader},
		{"comp-lzo yes, LZO", Spec{CompLZO: "yes", Allow: "yes"}, append([]byte{0x66}, lzoHello...), []byte("hello hello hello hello"), nil},
		{"comp-lzo yes, bad LZO", Spec{CompLZO: "yes"}, []byte{0x66, 0x11, 0x00}, nil, ErrCorrupt},
		{"comp-lzo yes, LZ4 byte", Spec{CompLZO: "yes"}, []byte{0x69, 1}, nil, ErrBadHeader},
		{"compress lzo, uncompressed", Spec{Compress: "lzo"}, []byte{0xFA, 9}, []byte{9}, nil},
		{"stub swap", Spec{Compress: "stub"}, []byte{0xFB, 2, 3, 1}, []byte{1, 2, 3}, nil},
		{"stub swap, one byte", Spec{Compress: "stub"}, []byte{0xFB, 7}, []byte{7}, nil},
		{"stub swap, header only", Spec{Compress: "stub"}, []byte{0xFB}, []byte{}, nil},
		{"stub, comp-lzo no byte", Spec{Compress: "stub"}, []byte{0xFA, 1}, nil, ErrBadHeader},
		{"stub accepts LZ4 (asym)", Spec{Compress: "stub"}, lz4Swapped, bytes.Repeat([]byte("hello "), 30), nil},
		{"stub refuses LZ4 (allow no)", Spec{Compress: "stub", Allow: "no"}, lz4Swapped, nil, ErrNotAllowed},
		{"lz4 swap, LZ4", Spec{Compress: "lz4"}, lz4Swapped, bytes.Repeat([]byte("hello "), 30), nil},
		{"lz4 swap, empty LZ4 block", Spec{Compress: "lz4"}, []byte{0x69}, nil, ErrCorrupt},
		{"lz4 swap, bad LZ4 block", Spec{Compress: "lz4"}, []byte{0x69, 0xFF, 0xF0}, nil, ErrCorrupt},
		{"stub-v2 raw", Spec{Compress: "stub-v2"}, []byte{0x45, 1}, []byte{0x45, 1}, nil},
		{"stub-v2 escape", Spec{Compress: "stub-v2"}, []byte{0x50, 0x00, 0x50, 9}, []byte{0x50, 9}, nil},
		{"stub-v2 escape, 2.6 sender quirk", Spec{Compress: "stub-v2"}, []byte{0x50, 0x0A, 0x50, 9}, []byte{0x50, 9}, nil},
		{"stub-v2 escape quirk under allow no", Spec{Compress: "stub-v2", Allow: "no"}, []byte{0x50, 0x0A, 0x45}, []byte{0x45}, nil},
		{"stub-v2 truncated escape", Spec{Compress: "stub-v2"}, []byte{0x50}, nil, ErrBadHeader},
		{"stub-v2 snappy", Spec{Compress: "stub-v2"}, []byte{0x50, 0x03, 1}, nil, ErrBadHeader},
		{"stub-v2 unknown algorithm", Spec{Compress: "stub-v2"}, []byte{0x50, 0x04, 1}, nil, ErrBadHeader},
		{"stub-v2 accepts LZ4 (asym)", Spec{Compress: "stub-v2"}, append([]byte{0x50, 0x01}, lz4Block...), bytes.Repeat([]byte("hello "), 30), nil},
		{"stub-v2 refuses LZ4 (allow no)", Spec{Compress: "stub-v2", Allow: "no"}, append([]byte{0x50, 0x01}, lz4Block...), nil, ErrNotAllowed},
		{"lz4-v2, LZO", Spec{Compress: "lz4-v2"}, append([]byte{0x50, 0x02}, lzoHello...), []byte("hello hello hello hello"), nil},
		{"lz4-v2, bad LZO", Spec{Compress: "lz4-v2"}, []byte{0x50, 0x02, 0x00}, nil, ErrCorrupt},
		{"lz4-v2, empty LZ4", Spec{Compress: "lz4-v2"}, []byte{0x50, 0x01}, nil, ErrCorrupt},
		{"migrate, raw", Spec{Compress: "migrate"}, []byte{0x45, 1}, []byte{0x45, 1}, nil},
		{"migrate, escape", Spec{Compress: "migrate"}, []byte{0x50, 0x00, 0x50}, []byte{0x50}, nil},
		{"empty framed", Spec{CompLZO: "no"}, nil, []byte{}, nil},
		{"empty framed, swap", Spec{Compress: "stub"}, []byte{}, []byte{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustNew(t, tt.spec)
			framed := slices.Clone(tt.framed)
			got, err := f.Decode([]byte("hdr"), tt.framed)
			if !bytes.Equal(framed, tt.framed) {
				t.Error("Decode modified its input")
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if string(got) != "hdr" {
					t.Fatalf("on error got %q, want dst unchanged", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, append([]byte("hdr"), tt.want...)) {
				t.Fatalf("got % x, want hdr + % x", got, tt.want)
			}
		})
	}
}

func lzoEncode(b []byte) []byte {
	var e lzoEncoder
	return e.compress(nil, b)
}

func lz4Encode(t testing.TB, b []byte) []byte {
	f := mustNew(t, Spec{Compress: "lz4-v2", Allow: "yes"})
	w := f.Encode(nil, b)
	if len(w) < 2 || w[0] != 0x50 || w[1] != 0x01 {
		t.Fatalf("lz4-v2 did not compress % x", b)
	}
	return w[2:]
}

// TestRoundTrip: Decode(Encode(x)) == x for every framing and policy, also
// when decoding in place; compression on send happens exactly under
// allow-compression yes with an algorithm framing.
func TestRoundTrip(t *testing.T) {
	inputs := sampleInputs(31, 60)
	inputs["v5"] = []byte{0x50, 0x50, 0x50}
	inputs["v5big"] = append([]byte{0x50}, textPayload(testRand(3), 1400)...)
	for _, s := range allSpecs() {
		f, err := New(s)
		if err != nil {
			continue
		}
		compressed := 0
		for name, in := range inputs {
			w := f.Encode(nil, in)
			if isCompressed(f.Name(), w) {
				compressed++
				if !sendsCompressed(s) {
					t.Fatalf("%s/%s: compressed on send under allow %q", f.Name(), name, s.Allow)
				}
				if len(w) > len(in)+2 {
					t.Fatalf("%s/%s: compressed packet longer than the framed original", f.Name(), name)
				}
			}
			got, err := f.Decode([]byte{0xEE}, w)
			if err != nil || !bytes.Equal(got[1:], in) || got[0] != 0xEE {
				t.Fatalf("%s allow=%q %s (%d bytes): round trip failed: %v", f.Name(), s.Allow, name, len(in), err)
			}
			// In place: dst == framed[:0].
			got, err = f.Decode(w[:0], w)
			if err != nil || !bytes.Equal(got, in) {
				t.Fatalf("%s allow=%q %s: in-place round trip failed: %v", f.Name(), s.Allow, name, err)
			}
		}
		if sendsCompressed(s) && compressed == 0 {
			t.Errorf("%s allow=yes: nothing was compressed", f.Name())
		}
	}
}

// sendsCompressed is the expectation for TestRoundTrip.
func sendsCompressed(s Spec) bool { return s.Warning() != "" }

// isCompressed reports whether a framed packet carries compressed data.
func isCompressed(name string, w []byte) bool {
	if len(w) == 0 {
		return false
	}
	switch {
	case strings.HasPrefix(name, "comp-lzo"), name == "compress lzo":
		return w[0] == 0x66
	case name == "compress stub", name == "compress lz4":
		return w[0] == 0x69
	case name == "none":
		return false
	}
	return len(w) > 1 && w[0] == 0x50 && w[1] != 0x00
}

// TestCompressedWire checks the bytes of compressed packets: the algorithm
// data behind the header decodes on its own.
func TestCompressedWire(t *testing.T) {
	text := textPayload(testRand(5), 1400)
	for _, s := range []Spec{{CompLZO: "yes", Allow: "yes"}, {CompLZO: "adaptive", Allow: "yes"}, {Compress: "lzo", Allow: "yes"}} {
		w := mustNew(t, s).Encode(nil, text)
		if w[0] != 0x66 {
			t.Fatalf("%+v: header 0x%02x", s, w[0])
		}
		if got, err := lzoDecompress(nil, w[1:], len(text)); err != nil || !bytes.Equal(got, text) {
			t.Fatalf("%+v: LZO body: %v", s, err)
		}
	}
	w := mustNew(t, Spec{Compress: "lz4", Allow: "yes"}).Encode(nil, text)
	if w[0] != 0x69 {
		t.Fatalf("lz4: header 0x%02x", w[0])
	}
	block := append([]byte{w[len(w)-1]}, w[1:len(w)-1]...)
	if got, err := lz4Decompress(nil, block, len(text)); err != nil || !bytes.Equal(got, text) {
		t.Fatalf("lz4 swap body: %v", err)
	}
	w = mustNew(t, Spec{Compress: "lz4-v2", Allow: "yes"}).Encode(nil, text)
	if w[0] != 0x50 || w[1] != 0x01 {
		t.Fatalf("lz4-v2: header % x", w[:2])
	}
	if got, err := lz4Decompress(nil, w[2:], len(text)); err != nil || !bytes.Equal(got, text) {
		t.Fatalf("lz4-v2 body: %v", err)
	}
	// Random data does not compress: sent uncompressed.
	rnd := randomPayload(testRand(6), 1400)
	for _, s := range []Spec{{CompLZO: "yes", Allow: "yes"}, {Compress: "lz4", Allow: "yes"}, {Compress: "lz4-v2", Allow: "yes"}} {
		f := mustNew(t, s)
		if w := f.Encode(nil, rnd); isCompressed(f.Name(), w) {
			t.Errorf("%s: random payload sent compressed", f.Name())
		}
	}
}

// TestGoldenLZOFraming: liblzo2 output framed as a 2.6 peer with comp-lzo
// would send it decodes under every LZO-capable framing.
func TestGoldenLZOFraming(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "lzo1x", "text1400.in"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := os.ReadFile(filepath.Join("testdata", "lzo1x", "text1400.lzo1x_1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		spec   Spec
		framed []byte
	}{
		{Spec{CompLZO: "yes"}, append([]byte{0x66}, c...)},
		{Spec{CompLZO: "no"}, append([]byte{0x66}, c...)},
		{Spec{Compress: "lzo"}, append([]byte{0x66}, c...)},
		{Spec{Compress: "lz4-v2"}, append([]byte{0x50, 0x02}, c...)},
		{Spec{Compress: "stub-v2"}, append([]byte{0x50, 0x02}, c...)},
	} {
		got, err := mustNew(t, tt.spec).Decode(nil, tt.framed)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%+v: %v", tt.spec, err)
		}
	}
}

// TestDecompressLimit: a packet that decompresses beyond MaxDecompressedSize
// is refused.
func TestDecompressLimit(t *testing.T) {
	big := make([]byte, MaxDecompressedSize+1)
	lzo := append([]byte{0x66}, lzoEncode(big)...)
	if _, err := mustNew(t, Spec{CompLZO: "yes"}).Decode(nil, lzo); !errors.Is(err, ErrCorrupt) {
		t.Errorf("LZO: %v", err)
	}
	lzo = append([]byte{0x66}, lzoEncode(big[:MaxDecompressedSize])...)
	if got, err := mustNew(t, Spec{CompLZO: "yes"}).Decode(nil, lzo); err != nil || len(got) != MaxDecompressedSize {
		t.Errorf("LZO at the limit: %v", err)
	}
	f := mustNew(t, Spec{Compress: "lz4-v2", Allow: "yes"})
	var lz4c = f.(*framing)
	z, ok := lz4c.compress(big)
	if !ok {
		t.Fatal("zeros did not compress")
	}
	if _, err := f.Decode(nil, append([]byte{0x50, 0x01}, z...)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("LZ4: %v", err)
	}
	// Encode never compresses what the peer could not decompress.
	if w := f.Encode(nil, big); isCompressed(f.Name(), w) {
		t.Error("payload over the limit sent compressed")
	}
}

func TestPeerInfo(t *testing.T) {
	all := []string{"IV_LZ4=1", "IV_LZ4v2=1", "IV_LZO=1", "IV_LZO_STUB=1", "IV_COMP_STUB=1", "IV_COMP_STUBv2=1"}
	stubs := []string{"IV_LZO_STUB=1", "IV_COMP_STUB=1", "IV_COMP_STUBv2=1"}
	tests := []struct {
		spec Spec
		want []string
	}{
		{Spec{}, all},
		{Spec{Allow: "asym"}, all},
		{Spec{Allow: "yes", CompLZO: "yes"}, all},
		{Spec{Compress: "lz4-v2"}, all},
		{Spec{CompLZO: "no"}, all},
		{Spec{Allow: "no"}, stubs},
		{Spec{Allow: "no", CompLZO: "no"}, stubs},
		{Spec{Compress: "stub"}, stubs},
		{Spec{Compress: "stub-v2", Allow: "yes"}, stubs},
		{Spec{Allow: "bogus"}, stubs},
	}
	for _, tt := range tests {
		if got := PeerInfo(tt.spec); !slices.Equal(got, tt.want) {
			t.Errorf("PeerInfo(%+v) = %v, want %v", tt.spec, got, tt.want)
		}
	}
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name    string
		local   Spec
		pushed  Spec
		want    Spec
		wantErr error
	}{
		{"nothing pushed", Spec{CompLZO: "no"}, Spec{}, Spec{CompLZO: "no"}, nil},
		{"push comp-lzo no", Spec{}, Spec{CompLZO: "no"}, Spec{CompLZO: "no"}, nil},
		{"push replaces local compress", Spec{Compress: "stub-v2"}, Spec{CompLZO: "no"}, Spec{CompLZO: "no"}, nil},
		{"push replaces local comp-lzo", Spec{CompLZO: "yes", Allow: "yes"}, Spec{Compress: "stub-v2"}, Spec{Compress: "stub-v2", Allow: "yes"}, nil},
		{"push lz4-v2 under asym", Spec{}, Spec{Compress: "lz4-v2"}, Spec{Compress: "lz4-v2"}, nil},
		{"push stub under allow no", Spec{Allow: "no"}, Spec{Compress: "stub"}, Spec{Compress: "stub", Allow: "no"}, nil},
		{"pushed allow is ignored", Spec{Allow: "no"}, Spec{Compress: "stub-v2", Allow: "yes"}, Spec{Compress: "stub-v2", Allow: "no"}, nil},
		{"push comp-lzo yes under allow no", Spec{Allow: "no", CompLZO: "no"}, Spec{CompLZO: "yes"}, Spec{Allow: "no", CompLZO: "no"}, ErrNotAllowed},
		{"push lz4 under allow no", Spec{Allow: "no"}, Spec{Compress: "lz4"}, Spec{Allow: "no"}, ErrNotAllowed},
		{"push garbage", Spec{}, Spec{Compress: "zstd"}, Spec{}, ErrInvalidSpec},
	}
	for _, tt := range tests {
		got, err := tt.local.Merge(tt.pushed)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
		}
		if got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestWarning(t *testing.T) {
	for _, s := range allSpecs() {
		w := s.Warning()
		r, err := s.resolve()
		want := err == nil && s.Allow == "yes" && r.alg != algNone
		if (w != "") != want {
			t.Errorf("Warning(%+v) = %q, want warning: %v", s, w, want)
		}
		if w != "" && !strings.Contains(w, "VORACLE") {
			t.Errorf("Warning(%+v) does not name VORACLE: %q", s, w)
		}
	}
}

func TestMigrate(t *testing.T) {
	srv := Spec{Compress: "migrate"}
	stubv2 := []string{"IV_VER=2.6.14", "IV_COMP_STUBv2=1"}
	tests := []struct {
		name     string
		spec     Spec
		usesLZO  bool
		peerInfo []string
		want     Spec
		push     string
	}{
		{"client without comp-lzo", srv, false, stubv2, srv, ""},
		{"comp-lzo client with stub-v2", srv, true, stubv2, srv, "compress stub-v2"},
		{"comp-lzo client, peer-info as one string", srv, true, []string{"IV_VER=2.6\nIV_COMP_STUBv2=1\n"}, srv, "compress stub-v2"},
		{"old comp-lzo client", srv, true, []string{"IV_VER=2.3.10", "IV_LZO=1"}, Spec{CompLZO: "no"}, "comp-lzo no"},
		{"not migrate", Spec{Compress: "lz4-v2"}, true, nil, Spec{Compress: "lz4-v2"}, ""},
	}
	for _, tt := range tests {
		got, push := tt.spec.Migrate(tt.usesLZO, tt.peerInfo)
		if got != tt.want || push != tt.push {
			t.Errorf("%s: got %+v %q, want %+v %q", tt.name, got, push, tt.want, tt.push)
		}
	}
}
