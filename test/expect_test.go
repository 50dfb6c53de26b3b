package test

// Expectations the interop tests place on the weft client. Log matching is
// case-insensitive and per line: a check passes when ONE log line contains
// every substring of its list. These constants are the contract between the
// tests and the client's messages; align the client (or, with care, these).
//
// CLI contract (docs/design.md): `weft client --config FILE` runs in the
// foreground, logs to stderr, logs "Initialization Sequence Completed" when the
// tunnel is up, exits 0 on SIGTERM after sending the exit notification, and
// exits non-zero with one clear log line on fatal errors (AUTH_FAILED, bad
// config).

// Weft-specific client config directive that turns off TLS keying-material
// export (no IV_PROTO_TLS_KEY_EXPORT bit in IV_PROTO), so the server falls back
// to the TLS-PRF data-key derivation (§9.3). openvpn itself does not know it.
const prfDirective = "key-derivation prf"

var (
	// Wrong CA / server certificate not signed by our CA: one line.
	wantBadCALog = []string{"certificate"}
	// Expired server certificate: one line.
	wantExpiredLog = []string{"certificate", "expired"}
	// Server rejected us (AUTH_FAILED control message): one line.
	wantAuthFailedLog = []string{"AUTH_FAILED"}
	// Server sends "AUTH_FAILED,Data channel cipher negotiation failed (no shared
	// cipher)": the client must log a line with "no shared cipher" (and, per
	// wantAuthFailedLog, a line with AUTH_FAILED; one line with both is fine).
	wantNoSharedCipherLog = []string{"no shared cipher"}
)

// Server-side (openvpn 2.6.14) log substrings.
const (
	// Client's exit notification seen by the server: CC-EEN (control-channel
	// EXIT, "CC-EEN exit message received by peer") ...
	exitNotifySubstr = "exit message received by peer"
	// ... or the OCC exit message on the data channel, which the server logs as
	// "SIGTERM[soft,remote-exit] received, client-instance exiting".
	occExitSubstr = "remote-exit"
	// Wrong tls-crypt key.
	tlsCryptFailSubstr = "tls-crypt unwrapping failed"
	// openvpn's soft reset (renegotiation) line at verb 3+.
	softResetSubstr = "TLS: soft reset"
)
