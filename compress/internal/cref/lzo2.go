//go:build lzo2 && cgo

package cref

/*
#cgo LDFLAGS: -llzo2
#include <stdlib.h>
#include <lzo/lzo1x.h>

static int cref_lzo_init(void) { return lzo_init(); }

static int cref_lzo1x_1(const unsigned char *src, size_t n, unsigned char *dst, size_t *dn) {
	static unsigned char wrk[LZO1X_1_MEM_COMPRESS];
	lzo_uint out = (lzo_uint)*dn;
	int r = lzo1x_1_compress(src, (lzo_uint)n, dst, &out, wrk);
	*dn = (size_t)out;
	return r;
}

static int cref_lzo1x_1_15(const unsigned char *src, size_t n, unsigned char *dst, size_t *dn) {
	static unsigned char wrk[LZO1X_1_15_MEM_COMPRESS];
	lzo_uint out = (lzo_uint)*dn;
	int r = lzo1x_1_15_compress(src, (lzo_uint)n, dst, &out, wrk);
	*dn = (size_t)out;
	return r;
}

static int cref_lzo1x_999(const unsigned char *src, size_t n, unsigned char *dst, size_t *dn) {
	static unsigned char wrk[LZO1X_999_MEM_COMPRESS];
	lzo_uint out = (lzo_uint)*dn;
	int r = lzo1x_999_compress(src, (lzo_uint)n, dst, &out, wrk);
	*dn = (size_t)out;
	return r;
}

static int cref_lzo1x_decompress_safe(const unsigned char *src, size_t n, unsigned char *dst, size_t *dn) {
	lzo_uint out = (lzo_uint)*dn;
	int r = lzo1x_decompress_safe(src, (lzo_uint)n, dst, &out, NULL);
	*dn = (size_t)out;
	return r;
}
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// LZO_E_* result codes of liblzo2 that the tests look at.
const (
	LZOOK              = 0
	LZOInputOverrun    = -4
	LZOOutputOverrun   = -5
	LZOLookbehind      = -6
	LZOEOFNotFound     = -7
	LZOInputNotConsume = -8
)

// The compressors use static work memory, so calls are serialised.
var lzoMu sync.Mutex

func init() {
	if r := C.cref_lzo_init(); r != C.LZO_E_OK {
		panic(fmt.Sprintf("cref: lzo_init failed: %d", int(r)))
	}
}

// cbuf returns a C pointer to b's data, or to a dummy byte when b is empty.
func cbuf(b []byte) *C.uchar {
	if len(b) == 0 {
		var dummy [1]byte
		b = dummy[:]
	}
	return (*C.uchar)(unsafe.Pointer(unsafe.SliceData(b)))
}

type lzoFunc func(*C.uchar, C.size_t, *C.uchar, *C.size_t) C.int

func lzoCompress(f lzoFunc, src []byte) []byte {
	lzoMu.Lock()
	defer lzoMu.Unlock()
	dst := make([]byte, len(src)+len(src)/16+64+3)
	n := C.size_t(len(dst))
	if r := f(cbuf(src), C.size_t(len(src)), cbuf(dst), &n); r != C.LZO_E_OK {
		panic(fmt.Sprintf("cref: liblzo2 compress failed: %d", int(r)))
	}
	return dst[:n]
}

// LZO1X1Compress compresses src with liblzo2's lzo1x_1_compress.
func LZO1X1Compress(src []byte) []byte {
	return lzoCompress(func(a *C.uchar, b C.size_t, c *C.uchar, d *C.size_t) C.int {
		return C.cref_lzo1x_1(a, b, c, d)
	}, src)
}

// LZO1X115Compress compresses src with liblzo2's lzo1x_1_15_compress (what
// OpenVPN 2.6 uses).
func LZO1X115Compress(src []byte) []byte {
	return lzoCompress(func(a *C.uchar, b C.size_t, c *C.uchar, d *C.size_t) C.int {
		return C.cref_lzo1x_1_15(a, b, c, d)
	}, src)
}

// LZO1X999Compress compresses src with liblzo2's lzo1x_999_compress, which
// uses every instruction form of the format.
func LZO1X999Compress(src []byte) []byte {
	return lzoCompress(func(a *C.uchar, b C.size_t, c *C.uchar, d *C.size_t) C.int {
		return C.cref_lzo1x_999(a, b, c, d)
	}, src)
}

// LZO1XDecompressSafe decompresses src with liblzo2's lzo1x_decompress_safe
// into a buffer of limit bytes. It returns the output and the LZO_E_* code.
func LZO1XDecompressSafe(src []byte, limit int) ([]byte, int) {
	dst := make([]byte, limit+1) // +1: never hand C an empty buffer
	n := C.size_t(limit)
	r := C.cref_lzo1x_decompress_safe(cbuf(src), C.size_t(len(src)), cbuf(dst), &n)
	return dst[:n], int(r)
}
