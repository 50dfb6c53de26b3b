//go:build openssl && cgo

package tlsengine

/*
#include <stdint.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// weftVerifyPeer is called from OpenSSL's certificate verification callback (in
// openssl_shim.c) during SSL_do_handshake, on the goroutine that called into C and
// holds the session's lock. der holds n certificates back to back, leaf first, with
// lengths lens; all of it is C memory that is copied here. It returns 1 to accept.
//
//export weftVerifyPeer
func weftVerifyPeer(h C.uintptr_t, der *C.uchar, lens *C.int, n C.int) C.int {
	s, ok := cgo.Handle(h).Value().(*osslSession)
	if !ok || n <= 0 {
		return 0
	}
	ls := unsafe.Slice(lens, int(n))
	raw := make([][]byte, int(n))
	off := 0
	for i, l := range ls {
		raw[i] = C.GoBytes(unsafe.Add(unsafe.Pointer(der), off), l)
		off += int(l)
	}
	if err := s.verifyPeer(raw); err != nil {
		s.verifyErr = err
		return 0
	}
	return 1
}
