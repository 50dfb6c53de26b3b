// Package cref binds the reference C implementations of LZO1X (liblzo2) and
// LZ4 (liblz4) for weft's compress tests. It is test-only infrastructure:
// the bindings are compiled only with the build tags "lzo2" (liblzo2-dev) and
// "liblz4" (liblz4-dev), both with cgo, so that no weft binary links these
// libraries (liblzo2 is GPL-2.0+). Without those tags the package is empty.
package cref
