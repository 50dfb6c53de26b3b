package compress

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// This file holds a clean-room LZO1X codec, written from the public description
// of the stream format (Linux Documentation/staging/lzo.rst) and checked
// against liblzo2 2.10 (lzo2_cgo_test.go, testdata/lzo1x). No LZO library code
// was used.
//
// Stream summary (one instruction byte t, then operands; "state" is the
// number of literals the previous instruction copied: 0, 1..3, or 4 for
// "four or more"):
//
//	first byte 18..255     copy t-17 literals; state = t-17 (capped at 4)
//	t = 0000LLLL, state 0  literal run of 3+L bytes (L=0: 18+255*zeros+next)
//	t = 0000DDSS, state 1-3  2-byte match, distance 1 + D + (next<<2)
//	t = 0000DDSS, state 4  3-byte match, distance 2049 + D + (next<<2)
//	t = 0001HLLL           match of 2+L bytes (L=0: 9+ext), then LE16 d:
//	                       distance 16384 + (H<<14) + d>>2; 16384 = end of stream
//	t = 001LLLLL           match of 2+L bytes (L=0: 33+ext), then LE16 d:
//	                       distance 1 + d>>2
//	t = 01LDDDSS / 1LLDDDSS  match of (t>>5)+1 bytes, distance 1 + D + (next<<3)
//
// A match is followed by SS (the low two bits of the instruction for one-byte
// operands, of the first LE16 byte otherwise) literals, 0..3.

// errLZO is wrapped by every LZO decoding error; it is itself wrapped in
// ErrCorrupt by the framings.
var errLZO = errors.New("lzo1x")

// lzoEOS is the end-of-stream marker: a 0001HLLL match with distance 16384.
var lzoEOS = [3]byte{0x11, 0x00, 0x00}

const (
	lzoM2MaxDist = 2048   // one-byte-operand matches (01LDDDSS, 1LLDDDSS)
	lzoM3MaxDist = 16384  // 001LLLLL matches
	lzoM4MaxDist = 0xbfff // 0001HLLL matches (distance 16384 means end of stream)
	lzoM2MaxLen  = 8
	lzoMinMatch  = 4 // the encoder only emits matches of at least 4 bytes
)

// lzoDecompress appends the LZO1X decompression of src to dst. It produces at
// most limit bytes and fails (without panicking) on truncated or corrupt
// input, on a match reaching before the start of this stream's output, on
// output beyond limit, and on bytes after the end-of-stream marker — the same
// conditions under which liblzo2's lzo1x_decompress_safe does not return
// LZO_E_OK. On error the returned slice is dst with possibly some partial
// output appended; callers discard it.
func lzoDecompress(dst, src []byte, limit int) ([]byte, error) {
	start := len(dst)
	out := dst
	n := len(src)
	ip := 0
	if n == 0 {
		return out, fmt.Errorf("%w: empty input", errLZO)
	}

	// literals copies k literal bytes from the input.
	literals := func(k int) error {
		if k > n-ip {
			return fmt.Errorf("%w: literal run of %d bytes past end of input", errLZO, k)
		}
		if len(out)-start+k > limit {
			return fmt.Errorf("%w: output exceeds %d bytes", errLZO, limit)
		}
		out = append(out, src[ip:ip+k]...)
		ip += k
		return nil
	}
	// extLength reads the zero-extended part of a length field: each zero
	// byte adds 255, the first non-zero byte ends it and is added.
	extLength := func() (int, error) {
		v := 0
		for {
			if ip >= n {
				return 0, fmt.Errorf("%w: truncated length", errLZO)
			}
			b := src[ip]
			ip++
			if b != 0 {
				return v + int(b), nil
			}
			// No early limit check: the loop is bounded by the input, and
			// liblzo2 ignores the length of an end-of-stream marker.
			v += 255
		}
	}

	state := 0
	if src[0] > 17 {
		t := int(src[0]) - 17
		ip = 1
		if err := literals(t); err != nil {
			return out, err
		}
		state = min(t, 4)
	}

	for {
		if ip >= n {
			return out, fmt.Errorf("%w: missing end-of-stream marker", errLZO)
		}
		t := int(src[ip])
		ip++
		var length, dist, s int
		switch {
		case t >= 64:
			if ip >= n {
				return out, fmt.Errorf("%w: truncated match", errLZO)
			}
			length = t>>5 + 1
			dist = int(src[ip])<<3 + (t>>2)&7 + 1
			ip++
			s = t & 3
		case t >= 32:
			length = t & 31
			if length == 0 {
				e, err := extLength()
				if err != nil {
					return out, err
				}
				length = 31 + e
			}
			length += 2
			if n-ip < 2 {
				return out, fmt.Errorf("%w: truncated match", errLZO)
			}
			d := int(binary.LittleEndian.Uint16(src[ip:]))
			ip += 2
			dist = d>>2 + 1
			s = d & 3
		case t >= 16:
			length = t & 7
			if length == 0 {
				e, err := extLength()
				if err != nil {
					return out, err
				}
				length = 7 + e
			}
			length += 2
			if n-ip < 2 {
				return out, fmt.Errorf("%w: truncated match", errLZO)
			}
			d := int(binary.LittleEndian.Uint16(src[ip:]))
			ip += 2
			dist = 16384 + (t&8)<<11 + d>>2
			if dist == 16384 {
				if ip != n {
					return out, fmt.Errorf("%w: %d bytes after end-of-stream marker", errLZO, n-ip)
				}
				return out, nil
			}
			s = d & 3
		case state == 0:
			length = t
			if length == 0 {
				e, err := extLength()
				if err != nil {
					return out, err
				}
				length = 15 + e
			}
			if err := literals(length + 3); err != nil {
				return out, err
			}
			state = 4
			continue
		default: // t < 16 after a match or literals
			if ip >= n {
				return out, fmt.Errorf("%w: truncated match", errLZO)
			}
			dist = int(src[ip])<<2 + t>>2 + 1
			ip++
			length = 2
			if state == 4 {
				dist += lzoM2MaxDist
				length = 3
			}
			s = t & 3
		}

		if dist > len(out)-start {
			return out, fmt.Errorf("%w: match distance %d before start of output (%d bytes)", errLZO, dist, len(out)-start)
		}
		if len(out)-start+length > limit {
			return out, fmt.Errorf("%w: output exceeds %d bytes", errLZO, limit)
		}
		out = copyMatch(out, dist, length)
		if s > 0 {
			if err := literals(s); err != nil {
				return out, err
			}
		}
		state = s
	}
}

// copyMatch appends length bytes copied from dist bytes back, handling
// overlap (dist < length) by copying the growing periodic pattern.
func copyMatch(out []byte, dist, length int) []byte {
	from := len(out) - dist
	if dist >= length {
		return append(out, out[from:from+length]...)
	}
	for length > 0 {
		// out[from:] has a period of dist and a length that is a multiple of
		// dist, so appending any prefix of it continues the pattern.
		c := min(len(out)-from, length)
		out = append(out, out[from:from+c]...)
		length -= c
	}
	return out
}

const (
	lzoHashBits = 13
	lzoHashSize = 1 << lzoHashBits
)

// lzoEncoder is a greedy LZO1X-1 compatible compressor. Its hash table is
// reused between calls without clearing: entries hold base+position, and
// every call starts with a base above all stored values, so stale entries are
// recognisable. An lzoEncoder is not safe for concurrent use.
type lzoEncoder struct {
	table [lzoHashSize]uint32
	base  uint32
}

func lzoHash(v uint32) uint32 {
	return (v * 2654435761) >> (32 - lzoHashBits)
}

// lzoCompressBound is the largest output lzoEncoder.compress produces for n
// input bytes (all literals: first-byte or long-run header, its length
// extension, the literals and the end marker).
func lzoCompressBound(n int) int {
	return n + n/255 + 16
}

// compress appends the LZO1X compression of src to dst. The result
// decompresses with liblzo2's lzo1x_decompress_safe and with lzoDecompress.
func (e *lzoEncoder) compress(dst, src []byte) []byte {
	n := len(src)
	if uint64(e.base)+uint64(n)+1 >= 1<<32 {
		e.table = [lzoHashSize]uint32{}
		e.base = 0
	}
	base := e.base + 1 // every stored value is below base; zeroed entries too
	e.base = base + uint32(n)

	w := lzoWriter{out: dst, sPos: -1, first: true}
	anchor := 0
	i := 0
	for i+lzoMinMatch <= n {
		v := binary.LittleEndian.Uint32(src[i:])
		h := lzoHash(v)
		ref := e.table[h]
		e.table[h] = base + uint32(i)
		if ref >= base {
			cand := int(ref - base)
			dist := i - cand
			if dist > 0 && dist <= lzoM4MaxDist && binary.LittleEndian.Uint32(src[cand:]) == v {
				m := lzoMinMatch
				for i+m < n && src[cand+m] == src[i+m] {
					m++
				}
				w.literals(src[anchor:i])
				w.match(dist, m)
				i += m
				anchor = i
				// Remember the position just before the next search point so
				// that runs continuing after this match are found.
				if i-1+lzoMinMatch <= n {
					e.table[lzoHash(binary.LittleEndian.Uint32(src[i-1:]))] = base + uint32(i-1)
				}
				continue
			}
		}
		// Skip faster through data that does not compress.
		i += 1 + (i-anchor)>>5
	}
	w.literals(src[anchor:])
	return append(w.out, lzoEOS[:]...)
}

// lzoWriter emits LZO1X instructions.
type lzoWriter struct {
	out []byte
	// sPos is the index in out of the byte whose low two bits carry the
	// number of literals following the last match; -1 before the first one.
	sPos int
	// first is set until the first instruction has been written; that one
	// may use the special first-byte literal encoding.
	first bool
}

func (w *lzoWriter) literals(lit []byte) {
	k := len(lit)
	switch {
	case k == 0:
		return
	case w.first && k <= 238:
		// First instruction: the byte 17+k copies k literals.
		w.out = append(w.out, byte(17+k))
	case w.sPos >= 0 && k <= 3:
		w.out[w.sPos] |= byte(k)
	case k <= 18:
		w.out = append(w.out, byte(k-3))
	default:
		w.out = append(w.out, 0)
		w.out = appendExt(w.out, k-18)
	}
	w.first = false
	w.out = append(w.out, lit...)
}

// appendExt writes v >= 1 as zero bytes worth 255 each followed by the rest.
func appendExt(out []byte, v int) []byte {
	for v > 255 {
		out = append(out, 0)
		v -= 255
	}
	return append(out, byte(v))
}

func (w *lzoWriter) match(dist, length int) {
	w.first = false
	switch {
	case length <= lzoM2MaxLen && dist <= lzoM2MaxDist:
		d := dist - 1
		w.sPos = len(w.out)
		w.out = append(w.out, byte((length-1)<<5|(d&7)<<2), byte(d>>3))
		return
	case dist <= lzoM3MaxDist:
		if length-2 <= 31 {
			w.out = append(w.out, byte(32|(length-2)))
		} else {
			w.out = append(w.out, 32)
			w.out = appendExt(w.out, length-2-31)
		}
		d := dist - 1
		w.sPos = len(w.out)
		w.out = append(w.out, byte(d<<2), byte(d>>6))
	default:
		d := dist - 16384
		h := byte((d >> 14) << 3)
		if length-2 <= 7 {
			w.out = append(w.out, 16|h|byte(length-2))
		} else {
			w.out = append(w.out, 16|h)
			w.out = appendExt(w.out, length-2-7)
		}
		d &= 0x3fff
		w.sPos = len(w.out)
		w.out = append(w.out, byte(d<<2), byte(d>>6))
	}
}
