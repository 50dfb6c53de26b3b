package compress

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// testRand returns a deterministic generator for test inputs.
func testRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
}

// randomPayload returns n uniformly random bytes.
func randomPayload(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var words = strings.Fields(`the quick brown fox jumps over lazy dog GET POST HTTP/1.1
	Host: example.com Accept: text/html application/json Content-Length: Cookie:
	session=abcdef0123456789 User-Agent: Mozilla/5.0 (X11; Linux x86_64) <div class="row">
	</div> <span> lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod`)

// textPayload returns an n-byte packet that looks like an IPv4/TCP header
// followed by text: typical compressible tunnel traffic.
func textPayload(r *rand.Rand, n int) []byte {
	b := make([]byte, 0, n+32)
	if n >= 40 {
		b = append(b, 0x45, 0x00, byte(n>>8), byte(n), 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,
			10, 8, 0, 2, 93, 184, 216, 34)
		b = append(b, 0xc3, 0x50, 0x00, 0x50)
		b = append(b, randomPayload(r, 16)...)
	}
	for len(b) < n {
		w := words[r.IntN(len(words))]
		b = append(b, w...)
		if r.IntN(8) == 0 {
			b = append(b, "\r\n"...)
		} else {
			b = append(b, ' ')
		}
	}
	return b[:n]
}

// mixedPayload mixes random bytes, zero runs, short repeats and far repeats
// so that every match form (near, mid and far distances; short and long
// lengths; 0..3 trailing literals) shows up in the compressed stream.
func mixedPayload(r *rand.Rand, n int) []byte {
	b := make([]byte, 0, n)
	for len(b) < n {
		switch k := r.IntN(6); {
		case k == 0 || len(b) < 8:
			b = append(b, randomPayload(r, 1+r.IntN(40))...)
		case k == 1:
			b = append(b, make([]byte, 1+r.IntN(600))...)
		case k == 2:
			b = append(b, textPayload(r, 1+r.IntN(200))...)
		default:
			// Copy from a random earlier position (any distance).
			from := r.IntN(len(b))
			l := 3 + r.IntN(min(300, len(b)-from)+1)
			for i := 0; i < l; i++ {
				b = append(b, b[from+i])
			}
		}
	}
	return b[:n]
}

// farPayload has repeats at distances between 16 KiB and 48 KiB (LZO1X
// 0001HLLL matches) and beyond (no match possible).
func farPayload(r *rand.Rand) []byte {
	b := randomPayload(r, 17000)
	b = append(b, b[100:1100]...) // distance 16900
	b = append(b, randomPayload(r, 16000)...)
	b = append(b, b[200:700]...) // distance ~34000
	b = append(b, randomPayload(r, 16000)...)
	b = append(b, b[300:400]...) // distance ~50000: too far for LZO1X
	b = append(b, b[len(b)-40000:len(b)-39000]...)
	return b
}

// sampleInputs returns a deterministic spread of inputs for round-trip and
// cross-check tests.
func sampleInputs(seed uint64, count int) map[string][]byte {
	r := testRand(seed)
	in := map[string][]byte{
		"empty":  {},
		"one":    {0x42},
		"two":    {0x50, 0x00},
		"three":  []byte("abc"),
		"zeros":  make([]byte, 1400),
		"ff":     []byte(strings.Repeat("\xff", 5000)),
		"far":    farPayload(r),
		"big":    mixedPayload(r, 70000),
		"text1k": textPayload(r, 1400),
		"rand1k": randomPayload(r, 1400),
	}
	for i := range count {
		n := r.IntN(3000)
		switch i % 3 {
		case 0:
			in[fmt.Sprintf("rand%d", i)] = randomPayload(r, n)
		case 1:
			in[fmt.Sprintf("text%d", i)] = textPayload(r, n)
		default:
			in[fmt.Sprintf("mixed%d", i)] = mixedPayload(r, n)
		}
	}
	return in
}
