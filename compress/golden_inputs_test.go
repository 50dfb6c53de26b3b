package compress

import (
	"bytes"
	"math/rand/v2"
)

// goldenVector is one input of the committed liblzo2 vectors in
// testdata/lzo1x: NAME.in is the input, NAME.lzo1x_1 and NAME.lzo1x_999 are
// what liblzo2 2.10's lzo1x_1_compress and lzo1x_999_compress made of it
// (written by TestLZO2Golden with -tags lzo2 -update-golden).
type goldenVector struct {
	name string
	data []byte
}

func goldenVectorInputs() []goldenVector {
	r := testRand(42)
	return []goldenVector{
		{"empty", nil},
		{"short", []byte("abc")},
		{"zeros1400", make([]byte, 1400)},
		{"text1400", textPayload(r, 1400)},
		{"random300", randomPayload(r, 300)},
		{"mixed4000", mixedPayload(r, 4000)},
		{"far", goldenFar(r)},
	}
}

// goldenFar repeats a random block at distances of about 16.7 KiB and
// 33.9 KiB (the two halves of LZO1X's far-match form) while staying small
// once compressed.
func goldenFar(r *rand.Rand) []byte {
	a := randomPayload(r, 200)
	b := append([]byte(nil), a...)
	b = append(b, make([]byte, 16500)...)
	b = append(b, a...)
	b = append(b, bytes.Repeat([]byte{'x'}, 17000)...)
	b = append(b, a[100:]...)
	return b
}
