package compress

import (
	"errors"
	"fmt"
	"slices"

	"github.com/pierrec/lz4/v4"
)

// errLZ4 is wrapped by every LZ4 decoding error.
var errLZ4 = errors.New("lz4 block")

// lz4Decompress appends the decompression of one LZ4 block to dst, producing
// at most limit bytes. Like liblz4's LZ4_decompress_safe (what OpenVPN uses)
// it rejects an empty block.
func lz4Decompress(dst, src []byte, limit int) ([]byte, error) {
	if len(src) == 0 {
		return dst, fmt.Errorf("%w: empty input", errLZ4)
	}
	start := len(dst)
	dst = slices.Grow(dst, limit)
	n, err := lz4.UncompressBlock(src, dst[start:start+limit])
	if err != nil {
		return dst[:start], fmt.Errorf("%w: %w (or more than %d bytes)", errLZ4, err, limit)
	}
	return dst[:start+n], nil
}
