// Package compress implements OpenVPN 2.6's data-channel compression framings
// (wire reference §17) and the LZO1X and LZ4 algorithms behind them. It is
// pure: bytes in, bytes out, no I/O and no clock.
//
// A Spec is what the configuration (comp-lzo, compress, allow-compression) or
// a PUSH_REPLY says. New turns it into a Framing, which frames every
// data-channel plaintext — IP packets, and the keepalive ping and OCC messages
// alike (§10.6) — after the payload is built and before it is encrypted
// (Encode), and removes the framing after decryption (Decode).
//
// # Framings
//
//	none                      raw payload
//	comp-lzo no               0xFA + payload
//	comp-lzo yes|adaptive|async, compress lzo
//	                          0xFA + payload, or 0x66 + LZO1X block
//	compress stub, compress lz4
//	                          "swap": the payload's first byte moves to the
//	                          end and 0xFB (uncompressed) or 0x69 (LZ4 block)
//	                          takes its place
//	compress stub-v2, compress lz4-v2, compress migrate
//	                          raw payload, unless it starts with 0x50: then
//	                          0x50 0x00 + payload; LZ4 block as 0x50 0x01 +
//	                          block
//
// An empty payload is never framed (Encode and Decode return it unchanged),
// as in OpenVPN.
//
// # Receive leniency
//
// Decoding accepts everything a peer could reasonably send within the
// framing's family, as long as the policy allows receiving compressed data
// (allow-compression asym or yes): comp-lzo no also accepts 0x66 + LZO1X,
// compress stub also accepts 0x69 + LZ4, and the v2 framings accept 0x50 0x01
// (LZ4), 0x50 0x02 (LZO1X) and 0x50 0x0A — the escape OpenVPN 2.6 writes by
// mistake (the algorithm number 10 instead of 0) — as uncompressed. OpenVPN
// 2.6 itself drops these in the stub framings; accepting them only turns
// packets that would be lost into packets that are delivered. Unknown header
// bytes, Snappy (0x50 0x03), bad compressed data, and compressed data under
// allow-compression no are errors.
//
// # Policy
//
// allow-compression (Spec.Allow) works as in OpenVPN 2.6, except that weft's
// default is asym:
//
//	no    never compress; refuse compressed packets (Decode error); only the
//	      stub framings (comp-lzo no, compress stub, stub-v2, migrate) are
//	      valid — an algorithm in the configuration or a PUSH_REPLY is an
//	      error (ErrNotAllowed), as in 2.6
//	asym  decompress what the peer sends, never compress (the default)
//	yes   also compress when the framing names an algorithm (lz4, lz4-v2,
//	      lzo, comp-lzo yes/adaptive/async), the payload is at least 100
//	      bytes and the result is smaller; Spec.Warning then returns the
//	      VORACLE warning that the caller logs once
//
// comp-lzo adaptive is treated as yes: the framing is identical and the
// adaptive on/off heuristic of OpenVPN (which needs a clock) is not
// reproduced.
//
// # compress migrate
//
// migrate is a server mode in OpenVPN: the server itself uses no framing and,
// for a client that announced comp-lzo in its OCC options string, pushes
// "compress stub-v2" (if the client sent IV_COMP_STUBv2=1) or switches to and
// pushes "comp-lzo no". As a Framing, migrate behaves like stub-v2, which for
// every IP packet, ping and OCC message is byte-for-byte the same as no
// framing (none of them starts with 0x50), and also understands a stub-v2
// peer's escapes. Spec.Migrate resolves the per-client choice.
//
// # Algorithms
//
// LZ4 blocks use github.com/pierrec/lz4/v4. LZO1X is a clean-room codec
// written from the public description of the stream format (Linux
// Documentation/staging/lzo.rst); its greedy compressor's output decompresses
// with liblzo2's lzo1x_decompress_safe, and its bounds-checked decompressor
// reads liblzo2's lzo1x_1, lzo1x_1_15 and lzo1x_999 output. Both were
// cross-checked against liblzo2 2.10 (build tag lzo2; see lzo2_cgo_test.go)
// and the committed vectors in testdata/lzo1x come from liblzo2.
// Decompressed output is limited to MaxDecompressedSize bytes.
package compress
