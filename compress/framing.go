package compress

import (
	"fmt"
	"slices"

	"github.com/pierrec/lz4/v4"
)

// Framing bytes (OpenVPN comp.h).
const (
	byteLZO        = 0x66 // LZO_COMPRESS_BYTE
	byteLZ4        = 0x69 // LZ4_COMPRESS_BYTE
	byteNoComp     = 0xFA // NO_COMPRESS_BYTE
	byteNoCompSwap = 0xFB // NO_COMPRESS_BYTE_SWAP

	v2Indicator   = 0x50 // COMP_ALGV2_INDICATOR_BYTE
	v2Uncompress  = 0x00 // COMP_ALGV2_UNCOMPRESSED_BYTE
	v2LZ4         = 0x01 // COMP_ALGV2_LZ4_BYTE
	v2LZO         = 0x02 // COMP_ALGV2_LZO_BYTE
	v2Snappy      = 0x03 // COMP_ALGV2_SNAPPY_BYTE (not implemented)
	v2QuirkEscape = 0x0A // what the OpenVPN 2.6 stub-v2 sender writes instead of 0x00
)

// Framing adds and removes one data-channel compression framing (and
// compresses or decompresses behind it).
//
// A Framing is used by one goroutine at a time: it keeps compressor state and
// scratch buffers between calls, so it is not safe for concurrent use. Give
// each session (or each shard) its own.
type Framing interface {
	// Encode appends the framed payload (IP packet, ping or OCC message) to
	// dst; it compresses only when the policy allows sending compressed data
	// and it pays off. An empty payload is appended as nothing. dst must not
	// overlap payload.
	Encode(dst, payload []byte) []byte
	// Decode removes the framing and decompresses into dst (append
	// semantics); it errors for unknown header bytes (ErrBadHeader), bad
	// compressed data (ErrCorrupt), or compressed data the policy refuses
	// (ErrNotAllowed). On error it returns dst with its original length.
	// dst may be framed[:0] to decode in place; otherwise it must not overlap
	// framed.
	Decode(dst, framed []byte) ([]byte, error)
	// Name is the configuration that selected the framing, e.g. "comp-lzo
	// no", "compress lz4-v2", or "none".
	Name() string
}

// New validates s and returns its Framing. When nothing is configured the
// Framing is "none", which copies payloads unchanged. It fails with
// ErrInvalidSpec for unknown values and with ErrNotAllowed for an algorithm
// under allow-compression no. If s.Warning() is not empty, the caller must log
// it once.
func New(s Spec) (Framing, error) {
	r, err := s.resolve()
	if err != nil {
		return nil, err
	}
	if r.fam == famNone {
		return noneFraming{}, nil
	}
	return &framing{r: r}, nil
}

// noneFraming is the absence of any framing.
type noneFraming struct{}

func (noneFraming) Encode(dst, payload []byte) []byte { return append(dst, payload...) }

func (noneFraming) Decode(dst, framed []byte) ([]byte, error) { return append(dst, framed...), nil }

func (noneFraming) Name() string { return "none" }

// framing implements every framing other than none.
type framing struct {
	r resolved

	lz4c *lz4.Compressor // allocated on first use (allow-compression yes only)
	lzoe *lzoEncoder     // likewise

	comp  []byte // compressor output
	unswp []byte // an un-swapped compressed packet
	dec   []byte // decompressor output
}

func (f *framing) Name() string { return f.r.name }

func (f *framing) Encode(dst, payload []byte) []byte {
	n := len(payload)
	if n == 0 {
		return dst
	}
	if f.r.sends() && n >= compressThreshold && n <= MaxDecompressedSize {
		if z, ok := f.compress(payload); ok {
			switch f.r.fam {
			case famLZO:
				dst = append(dst, byteLZO)
				return append(dst, z...)
			case famSwap:
				dst = append(dst, byteLZ4)
				dst = append(dst, z[1:]...)
				return append(dst, z[0])
			case famV2:
				dst = append(dst, v2Indicator, v2LZ4)
				return append(dst, z...)
			}
		}
	}
	switch f.r.fam {
	case famLZO:
		dst = append(dst, byteNoComp)
		return append(dst, payload...)
	case famSwap:
		dst = append(dst, byteNoCompSwap)
		dst = append(dst, payload[1:]...)
		return append(dst, payload[0])
	default: // famV2
		if payload[0] == v2Indicator {
			dst = append(dst, v2Indicator, v2Uncompress)
		}
		return append(dst, payload...)
	}
}

// compress compresses payload with the framing's algorithm into f.comp and
// reports whether the result is shorter than the payload.
func (f *framing) compress(payload []byte) ([]byte, bool) {
	switch f.r.alg {
	case algLZ4:
		if f.lz4c == nil {
			f.lz4c = new(lz4.Compressor)
		}
		// A destination one byte shorter than the payload makes the
		// compressor give up as soon as the result would not be smaller.
		f.comp = slices.Grow(f.comp[:0], len(payload)-1)
		z := f.comp[:len(payload)-1]
		m, err := f.lz4c.CompressBlock(payload, z)
		if err != nil || m == 0 {
			return nil, false
		}
		return z[:m], true
	case algLZO:
		if f.lzoe == nil {
			f.lzoe = new(lzoEncoder)
		}
		f.comp = slices.Grow(f.comp[:0], lzoCompressBound(len(payload)))
		f.comp = f.lzoe.compress(f.comp[:0], payload)
		return f.comp, len(f.comp) < len(payload)
	}
	return nil, false
}

func (f *framing) Decode(dst, framed []byte) ([]byte, error) {
	n := len(framed)
	if n == 0 {
		return dst, nil
	}
	switch f.r.fam {
	case famLZO:
		switch framed[0] {
		case byteNoComp:
			return append(dst, framed[1:]...), nil
		case byteLZO:
			return f.decompress(dst, algLZO, framed[1:])
		}
		return dst, fmt.Errorf("%w: %s: header byte 0x%02x", ErrBadHeader, f.r.name, framed[0])
	case famSwap:
		switch framed[0] {
		case byteNoCompSwap:
			if n == 1 {
				return dst, nil
			}
			last := framed[n-1]
			// With dst == framed[:0], last goes into the header's slot and
			// the middle is copied onto itself.
			dst = append(dst, last)
			return append(dst, framed[1:n-1]...), nil
		case byteLZ4:
			if f.r.allow == allowNo {
				return dst, f.refuse(algLZ4)
			}
			f.unswp = f.unswp[:0]
			if n > 1 {
				f.unswp = append(f.unswp, framed[n-1])
				f.unswp = append(f.unswp, framed[1:n-1]...)
			}
			return f.decompress(dst, algLZ4, f.unswp)
		}
		return dst, fmt.Errorf("%w: %s: header byte 0x%02x", ErrBadHeader, f.r.name, framed[0])
	default: // famV2
		if framed[0] != v2Indicator {
			return append(dst, framed...), nil
		}
		if n < 2 {
			return dst, fmt.Errorf("%w: %s: truncated 0x50 header", ErrBadHeader, f.r.name)
		}
		switch framed[1] {
		case v2Uncompress, v2QuirkEscape:
			return append(dst, framed[2:]...), nil
		case v2LZ4:
			return f.decompress(dst, algLZ4, framed[2:])
		case v2LZO:
			return f.decompress(dst, algLZO, framed[2:])
		case v2Snappy:
			return dst, fmt.Errorf("%w: %s: Snappy (0x50 0x03) is not supported", ErrBadHeader, f.r.name)
		}
		return dst, fmt.Errorf("%w: %s: header bytes 0x50 0x%02x", ErrBadHeader, f.r.name, framed[1])
	}
}

func (f *framing) refuse(a algo) error {
	return fmt.Errorf("%w: %s: received an %s-compressed packet", ErrNotAllowed, f.r.name, a)
}

// decompress appends the decompression of data to dst. It decompresses into
// f.dec first, so dst may share memory with data.
func (f *framing) decompress(dst []byte, a algo, data []byte) ([]byte, error) {
	if f.r.allow == allowNo {
		return dst, f.refuse(a)
	}
	var err error
	switch a {
	case algLZO:
		f.dec, err = lzoDecompress(f.dec[:0], data, MaxDecompressedSize)
	default:
		f.dec, err = lz4Decompress(f.dec[:0], data, MaxDecompressedSize)
	}
	if err != nil {
		return dst, fmt.Errorf("%w: %s: %w", ErrCorrupt, f.r.name, err)
	}
	return append(dst, f.dec...), nil
}
