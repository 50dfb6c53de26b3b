//go:build liblz4 && cgo

package compress

// Cross-checks of the LZ4 framings against the real liblz4 (Debian
// liblz4-dev 1.9.4). Run with: go test -tags liblz4 -run LZ4C -v ./compress/

import (
	"bytes"
	"maps"
	"slices"
	"testing"

	"weft/compress/internal/cref"
)

// TestLZ4CFramings: what our lz4 and lz4-v2 framings send decompresses with
// LZ4_decompress_safe, and liblz4 blocks framed by hand decode with ours.
func TestLZ4CFramings(t *testing.T) {
	v1, _ := New(Spec{Compress: "lz4", Allow: "yes"})
	v2, _ := New(Spec{Compress: "lz4-v2", Allow: "yes"})
	inputs := sampleInputs(21, 2000)
	var compressed int
	for name, in := range inputs {
		if len(in) > MaxDecompressedSize {
			continue
		}
		// Ours -> liblz4.
		w := v2.Encode(nil, in)
		if len(w) >= 2 && w[0] == 0x50 && w[1] == 0x01 {
			compressed++
			out, ok := cref.LZ4DecompressSafe(w[2:], len(in))
			if !ok || !bytes.Equal(out, in) {
				t.Fatalf("%s: liblz4 cannot decode our lz4-v2 packet", name)
			}
		}
		w = v1.Encode(nil, in)
		if len(w) >= 2 && w[0] == 0x69 {
			block := append([]byte{w[len(w)-1]}, w[1:len(w)-1]...)
			out, ok := cref.LZ4DecompressSafe(block, len(in))
			if !ok || !bytes.Equal(out, in) {
				t.Fatalf("%s: liblz4 cannot decode our lz4 (swap) packet", name)
			}
		}
		// liblz4 -> ours, in both framings.
		if len(in) == 0 {
			continue
		}
		z := cref.LZ4Compress(in)
		got, err := v2.Decode(nil, append([]byte{0x50, 0x01}, z...))
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("%s: liblz4 block in lz4-v2 framing: %v", name, err)
		}
		sw := append([]byte{0x69}, z[1:]...)
		sw = append(sw, z[0])
		got, err = v1.Decode(nil, sw)
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("%s: liblz4 block in lz4 swap framing: %v", name, err)
		}
	}
	t.Logf("%d inputs (%d compressed on send): both directions agree with liblz4", len(inputs), compressed)
}

// TestLZ4CDifferential: on damaged blocks, decoded with the framings' limit
// (MaxDecompressedSize), our LZ4 decoding and LZ4_decompress_safe agree,
// except at the end of a block, where the libraries differ and neither
// difference matters for real compressor output (the output stays bounded):
//   - liblz4 enforces the format's end-of-block rules (the block ends with a
//     literal run, the last match starts at least 12 bytes and the last
//     literals 5 bytes before the end); pierrec/lz4 does not, so it accepts
//     some damaged blocks liblz4 rejects;
//   - liblz4 accepts a match offset of 0 (which the format declares invalid
//     and which copies whatever the output buffer held), pierrec/lz4 rejects
//     it;
//   - a final literal-only token whose match nibble is not zero: liblz4
//     ignores the nibble, pierrec/lz4 rejects the block.
//
// The last two are the only accepted cases of liblz4 accepting what we
// reject, and each such block is checked to be one of them.
func TestLZ4CDifferential(t *testing.T) {
	r := testRand(22)
	const limit = MaxDecompressedSize
	var cases, ok, lenient, zero, nibble int
	inputs := sampleInputs(23, 300)
	for _, name := range slices.Sorted(maps.Keys(inputs)) {
		in := inputs[name]
		if len(in) == 0 {
			continue
		}
		z := cref.LZ4Compress(in)
		for k := 0; k < 30; k++ {
			m := append([]byte(nil), z...)
			switch k % 3 {
			case 0:
				m[r.IntN(len(m))] ^= byte(1 + r.IntN(255))
			case 1:
				m = m[:r.IntN(len(m)+1)]
			case 2:
				m = randomPayload(r, r.IntN(40))
			}
			ours, err := lz4Decompress(nil, m, limit)
			theirs, cok := cref.LZ4DecompressSafe(m, limit)
			cases++
			switch {
			case err == nil && cok:
				ok++
				if !bytes.Equal(ours, theirs) {
					t.Fatalf("outputs differ on %x", m)
				}
			case err == nil && !cok:
				lenient++
			case err != nil && cok:
				last, ends, zeroOff, parsed := lz4Walk(m)
				if parsed && zeroOff {
					zero++
					continue
				}
				if !parsed || ends || m[last]&0x0F == 0 {
					t.Fatalf("only liblz4 accepts %x: %v", m, err)
				}
				fixed := append([]byte(nil), m...)
				fixed[last] &^= 0x0F
				if got, err := lz4Decompress(nil, fixed, limit); err != nil || !bytes.Equal(got, theirs) {
					t.Fatalf("%x with the last match nibble cleared: %v", m, err)
				}
				nibble++
			}
		}
	}
	t.Logf("%d damaged blocks: %d both OK with identical output, %d accepted only by pierrec/lz4 (end-of-block rules), %d only by liblz4 (offset 0), %d only by liblz4 (non-zero match nibble in the final token), the rest both rejected",
		cases, ok, lenient, zero, nibble)
}

// lz4Walk walks the sequences of an LZ4 block without decoding and returns
// the index of the last token, whether the block ends right after a match
// (rather than after literals) and whether any match has offset 0. parsed is
// false when the block is truncated inside a length, literal run or offset.
func lz4Walk(b []byte) (last int, endsInMatch, zeroOffset, parsed bool) {
	i := 0
	for i < len(b) {
		last = i
		tok := b[i]
		i++
		n := int(tok >> 4)
		if n == 15 {
			for {
				if i >= len(b) {
					return last, false, zeroOffset, false
				}
				x := b[i]
				i++
				n += int(x)
				if x != 255 {
					break
				}
			}
		}
		i += n
		if i == len(b) {
			return last, false, zeroOffset, true
		}
		if i+2 > len(b) {
			return last, false, zeroOffset, false
		}
		if b[i] == 0 && b[i+1] == 0 {
			zeroOffset = true
		}
		i += 2
		if tok&15 == 15 {
			for {
				if i >= len(b) {
					return last, false, zeroOffset, false
				}
				x := b[i]
				i++
				if x != 255 {
					break
				}
			}
		}
	}
	return last, true, zeroOffset, true
}
