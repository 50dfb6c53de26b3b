//go:build liblz4 && cgo

package cref

/*
#cgo LDFLAGS: -llz4
#include <lz4.h>
*/
import "C"

import "unsafe"

func cchar(b []byte) *C.char {
	if len(b) == 0 {
		var dummy [1]byte
		b = dummy[:]
	}
	return (*C.char)(unsafe.Pointer(unsafe.SliceData(b)))
}

// LZ4Compress compresses src into one LZ4 block with LZ4_compress_default.
func LZ4Compress(src []byte) []byte {
	dst := make([]byte, int(C.LZ4_compressBound(C.int(len(src))))+1)
	n := C.LZ4_compress_default(cchar(src), cchar(dst), C.int(len(src)), C.int(len(dst)))
	if n <= 0 {
		panic("cref: LZ4_compress_default failed")
	}
	return dst[:n]
}

// LZ4DecompressSafe decompresses one LZ4 block with LZ4_decompress_safe into
// at most limit bytes; ok is false when liblz4 reports an error.
func LZ4DecompressSafe(src []byte, limit int) (out []byte, ok bool) {
	dst := make([]byte, limit+1)
	n := C.LZ4_decompress_safe(cchar(src), cchar(dst), C.int(len(src)), C.int(limit))
	if n < 0 {
		return nil, false
	}
	return dst[:n], true
}
