package compress

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// addGoldenSeeds adds the committed liblzo2 streams and inputs.
func addGoldenSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "lzo1x", "*"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil && len(b) <= 8192 {
			f.Add(b)
		}
	}
}

// FuzzLZODecompress: the decompressor never panics and never exceeds its
// limit or touches dst's prefix; the compressor's output (within its bound)
// decompresses to the input.
func FuzzLZODecompress(f *testing.F) {
	addGoldenSeeds(f)
	for _, c := range lzoCases() {
		if len(c.stream) <= 8192 {
			f.Add(c.stream)
		}
	}
	f.Add(textPayload(testRand(1), 1400))
	f.Add(mixedPayload(testRand(2), 3000))
	var e lzoEncoder
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 4096
		out, err := lzoDecompress([]byte("pre"), data, limit)
		if string(out[:3]) != "pre" || len(out)-3 > limit {
			t.Fatalf("dst prefix lost or output over limit (%d bytes)", len(out)-3)
		}
		if err != nil && !errors.Is(err, errLZO) {
			t.Fatalf("unwrapped error %v", err)
		}
		c := e.compress(nil, data)
		if len(c) > lzoCompressBound(len(data)) {
			t.Fatalf("%d compressed bytes over bound %d", len(c), lzoCompressBound(len(data)))
		}
		got, err := lzoDecompress(nil, c, len(data))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzLZ4Decode: LZ4 block decoding never panics or exceeds its limit, and
// the compressor's blocks round-trip.
func FuzzLZ4Decode(f *testing.F) {
	var c lz4.Compressor
	for _, in := range [][]byte{textPayload(testRand(1), 1400), mixedPayload(testRand(2), 3000), {0}, []byte("hello")} {
		z := make([]byte, lz4.CompressBlockBound(len(in)))
		n, _ := c.CompressBlock(in, z)
		f.Add(z[:n])
		f.Add(in)
	}
	f.Add([]byte{0x1f, 0xff, 0x01, 0x00, 0xff, 0xff, 0x82})
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 4096
		out, err := lz4Decompress([]byte("pre"), data, limit)
		if string(out[:3]) != "pre" || len(out)-3 > limit {
			t.Fatalf("dst prefix lost or output over limit (%d bytes)", len(out)-3)
		}
		if err != nil && !errors.Is(err, errLZ4) {
			t.Fatalf("unwrapped error %v", err)
		}
		z := make([]byte, lz4.CompressBlockBound(len(data)))
		n, err := c.CompressBlock(data, z)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) == 0 {
			return
		}
		got, err := lz4Decompress(nil, z[:n], len(data))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

var (
	fuzzFramingsOnce sync.Once
	fuzzFramingsMu   sync.Mutex
	fuzzFramingsList []Framing
	fuzzSpecs        []Spec
)

// fuzzFramings returns one Framing per valid (framing, policy) pair, built
// once; callers hold fuzzFramingsMu since a Framing is single-goroutine.
func fuzzFramings() ([]Framing, []Spec) {
	fuzzFramingsOnce.Do(func() {
		for _, s := range allSpecs() {
			if f, err := New(s); err == nil {
				fuzzFramingsList = append(fuzzFramingsList, f)
				fuzzSpecs = append(fuzzSpecs, s)
			}
		}
	})
	return fuzzFramingsList, fuzzSpecs
}

// FuzzDecode runs every framing under every policy on the input: Decode never
// panics, returns only this package's errors with dst untouched, decodes in
// place the same as into a fresh buffer, and Decode(Encode(x)) == x.
func FuzzDecode(f *testing.F) {
	text := textPayload(testRand(3), 600)
	seeds := [][]byte{
		{}, {0xFA}, {0xFB}, {0x50}, {0x66}, {0x69},
		{0xFA, 0x45, 0x00}, {0xFB, 0x00, 0x45}, {0x50, 0x00, 0x50}, {0x50, 0x0A, 0x45}, {0x50, 0x03, 1},
		append([]byte{0x66}, lzoEncode(text)...),
		append([]byte{0x50, 0x02}, lzoEncode(text)...),
		text,
	}
	for _, s := range []Spec{{Compress: "lz4", Allow: "yes"}, {Compress: "lz4-v2", Allow: "yes"}, {CompLZO: "yes", Allow: "yes"}} {
		g := mustNew(f, s)
		seeds = append(seeds, g.Encode(nil, text))
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzFramingsMu.Lock()
		defer fuzzFramingsMu.Unlock()
		framings, specs := fuzzFramings()
		for i, fr := range framings {
			out, err := fr.Decode([]byte("pre"), data)
			if string(out[:3]) != "pre" {
				t.Fatalf("%s: dst prefix lost", fr.Name())
			}
			if err != nil {
				if len(out) != 3 {
					t.Fatalf("%s: dst grew on error", fr.Name())
				}
				if !errors.Is(err, ErrBadHeader) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotAllowed) {
					t.Fatalf("%s: unexpected error %v", fr.Name(), err)
				}
				if errors.Is(err, ErrNotAllowed) && specs[i].Allow != "no" {
					t.Fatalf("%s allow=%q: refused a packet: %v", fr.Name(), specs[i].Allow, err)
				}
			} else {
				if len(out)-3 > len(data)+MaxDecompressedSize {
					t.Fatalf("%s: output unbounded", fr.Name())
				}
				inPlace := append([]byte(nil), data...)
				got, err := fr.Decode(inPlace[:0], inPlace)
				if err != nil || !bytes.Equal(got, out[3:]) {
					t.Fatalf("%s: in-place decode differs: %v", fr.Name(), err)
				}
			}
			w := fr.Encode(nil, data)
			got, err := fr.Decode(nil, w)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s allow=%q: Decode(Encode(x)) != x: %v", fr.Name(), specs[i].Allow, err)
			}
		}
	})
}
