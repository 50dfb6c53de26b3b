//go:build lzo2 && cgo

package compress

// Cross-checks of the LZO1X codec against the real liblzo2 (Debian
// liblzo2-dev 2.10). Run with:
//
//	go test -tags lzo2 -run LZO2 -v ./compress/
//
// and regenerate the golden vectors in testdata/lzo1x with:
//
//	go test -tags lzo2 -run TestLZO2Golden ./compress/ -update-golden

import (
	"bytes"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"weft/compress/internal/cref"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/lzo1x from liblzo2")

// TestLZO2OurCompressorTheirDecompressor: every stream we produce
// decompresses with lzo1x_decompress_safe to the original input.
func TestLZO2OurCompressorTheirDecompressor(t *testing.T) {
	var e lzoEncoder
	inputs := sampleInputs(2, 3000)
	for name, in := range inputs {
		c := e.compress(nil, in)
		if len(c) > lzoCompressBound(len(in)) {
			t.Errorf("%s: %d bytes exceed bound %d", name, len(c), lzoCompressBound(len(in)))
		}
		out, r := cref.LZO1XDecompressSafe(c, len(in))
		if r != cref.LZOOK || !bytes.Equal(out, in) {
			t.Fatalf("%s (%d bytes): liblzo2 returned %d, equal=%v", name, len(in), r, bytes.Equal(out, in))
		}
	}
	t.Logf("%d inputs: our compressor -> lzo1x_decompress_safe: all LZO_E_OK and byte-identical", len(inputs))
}

// TestLZO2TheirCompressorOurDecompressor: lzo1x_1, lzo1x_1_15 (OpenVPN's
// choice) and lzo1x_999 output decompresses with ours, also with the output
// limit set to exactly the input size.
func TestLZO2TheirCompressorOurDecompressor(t *testing.T) {
	inputs := sampleInputs(3, 3000)
	comps := map[string]func([]byte) []byte{
		"lzo1x_1":    cref.LZO1X1Compress,
		"lzo1x_1_15": cref.LZO1X115Compress,
		"lzo1x_999":  cref.LZO1X999Compress,
	}
	for cname, comp := range comps {
		for name, in := range inputs {
			c := comp(in)
			out, err := lzoDecompress(nil, c, len(in))
			if err != nil || !bytes.Equal(out, in) {
				t.Fatalf("%s %s (%d bytes): err=%v equal=%v", cname, name, len(in), err, bytes.Equal(out, in))
			}
			if len(in) > 0 {
				if _, err := lzoDecompress(nil, c, len(in)-1); err == nil {
					t.Fatalf("%s %s: limit len-1 accepted", cname, name)
				}
			}
		}
		t.Logf("%d inputs: %s -> our decompressor: all decoded byte-identical", len(inputs), cname)
	}
}

// TestLZO2DifferentialCorrupt feeds damaged streams to both decompressors:
// they must agree on success and, when both succeed, on the output.
func TestLZO2DifferentialCorrupt(t *testing.T) {
	r := testRand(4)
	var e lzoEncoder
	inputs := sampleInputs(5, 400)
	names := slices.Sorted(maps.Keys(inputs))
	var cases, bothOK, bothErr int
	for _, name := range names {
		in := inputs[name]
		streams := [][]byte{e.compress(nil, in), cref.LZO1X1Compress(in), cref.LZO1X999Compress(in)}
		for _, s := range streams {
			for k := 0; k < 40; k++ {
				m := append([]byte(nil), s...)
				switch k % 5 {
				case 0: // flip one byte
					if len(m) > 0 {
						m[r.IntN(len(m))] ^= byte(1 + r.IntN(255))
					}
				case 1: // truncate
					m = m[:r.IntN(len(m)+1)]
				case 2: // trailing garbage
					m = append(m, byte(r.Uint32()))
				case 3: // several random bytes
					for j := 0; j < 4 && len(m) > 0; j++ {
						m[r.IntN(len(m))] = byte(r.Uint32())
					}
				case 4: // random bytes altogether
					m = randomPayload(r, r.IntN(64))
				}
				limit := len(in) + r.IntN(64)
				ours, err := lzoDecompress(nil, m, limit)
				theirs, code := cref.LZO1XDecompressSafe(m, limit)
				cases++
				switch {
				case err == nil && code == cref.LZOOK:
					bothOK++
					if !bytes.Equal(ours, theirs) {
						t.Fatalf("%s: both OK but outputs differ (stream %x)", name, m)
					}
				case err != nil && code != cref.LZOOK:
					bothErr++
				default:
					t.Fatalf("%s: disagreement: ours err=%v, liblzo2 code=%d, stream %x", name, err, code, m)
				}
			}
		}
	}
	t.Logf("%d damaged streams: %d both OK with identical output, %d both rejected, 0 disagreements", cases, bothOK, bothErr)
}

// TestLZO2Golden checks (or, with -update-golden, rewrites) the committed
// vectors in testdata/lzo1x against liblzo2.
func TestLZO2Golden(t *testing.T) {
	for _, v := range goldenVectorInputs() {
		for alg, comp := range map[string]func([]byte) []byte{"lzo1x_1": cref.LZO1X1Compress, "lzo1x_999": cref.LZO1X999Compress} {
			c := comp(v.data)
			inPath := filepath.Join("testdata", "lzo1x", v.name+".in")
			cPath := filepath.Join("testdata", "lzo1x", v.name+"."+alg)
			if *updateGolden {
				if err := os.WriteFile(inPath, v.data, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(cPath, c, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(cPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(want, c) {
				t.Errorf("%s: committed vector differs from liblzo2 output", cPath)
			}
		}
	}
}

// TestLZO2Handcrafted: liblzo2 agrees with every hand-assembled stream of
// lzo_test.go (accepts exactly the ones we accept, with the same output).
func TestLZO2Handcrafted(t *testing.T) {
	for _, c := range lzoCases() {
		out, code := cref.LZO1XDecompressSafe(c.stream, c.limit)
		if c.want == nil {
			if code == cref.LZOOK {
				t.Errorf("%s: liblzo2 accepted a stream we reject (output %q)", c.name, out)
			}
			continue
		}
		if code != cref.LZOOK || !bytes.Equal(out, c.want) {
			t.Errorf("%s: liblzo2 code %d, equal=%v", c.name, code, bytes.Equal(out, c.want))
		}
	}
	t.Logf("%d hand-assembled streams: liblzo2 agrees on every one", len(lzoCases()))
}

// TestLZO2Ratio logs how our greedy compressor compares with lzo1x_1 and
// lzo1x_1_15 on packet-sized inputs.
func TestLZO2Ratio(t *testing.T) {
	r := testRand(13)
	for _, kind := range []string{"text", "mixed", "random"} {
		var in, ours, l1, l115 int
		var e lzoEncoder
		for range 200 {
			var p []byte
			switch kind {
			case "text":
				p = textPayload(r, 1400)
			case "mixed":
				p = mixedPayload(r, 1400)
			default:
				p = randomPayload(r, 1400)
			}
			in += len(p)
			ours += len(e.compress(nil, p))
			l1 += len(cref.LZO1X1Compress(p))
			l115 += len(cref.LZO1X115Compress(p))
		}
		t.Logf("%-6s 200x1400 B: ours %.1f%%, lzo1x_1 %.1f%%, lzo1x_1_15 %.1f%% of input",
			kind, 100*float64(ours)/float64(in), 100*float64(l1)/float64(in), 100*float64(l115)/float64(in))
	}
}

// FuzzLZO2Differential compares our decompressor with lzo1x_decompress_safe
// on arbitrary input (run: go test -tags lzo2 -run '^$' -fuzz FuzzLZO2Differential).
func FuzzLZO2Differential(f *testing.F) {
	for _, c := range lzoCases() {
		f.Add(c.stream, uint16(c.limit))
	}
	f.Add(cref.LZO1X999Compress(mixedPayload(testRand(14), 3000)), uint16(3000))
	f.Fuzz(func(t *testing.T, stream []byte, limit uint16) {
		ours, err := lzoDecompress(nil, stream, int(limit))
		theirs, code := cref.LZO1XDecompressSafe(stream, int(limit))
		if (err == nil) != (code == cref.LZOOK) {
			t.Fatalf("disagreement: ours %v, liblzo2 %d", err, code)
		}
		if err == nil && !bytes.Equal(ours, theirs) {
			t.Fatal("outputs differ")
		}
	})
}
