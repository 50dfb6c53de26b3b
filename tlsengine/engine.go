// Package tlsengine defines the TLS engine interface that OpenVPN's control channel
// uses, shaped like a memory-BIO library: ciphertext goes in and out as bytes, the
// caller moves them over the control channel, and nothing here touches a socket.
//
// The default engine, "go", wraps Go's crypto/tls. Built with the tag "openssl" (and
// cgo), the "openssl" engine drives the system's libssl over memory BIOs as well; see
// openssl.go.
//
// The go engine's blocking API runs on a goroutine of its own, but every call into a
// Session returns only once that goroutine has consumed all input and is waiting for
// more, so a Session behaves deterministically: after PutCiphertext returns,
// TakeCiphertext holds everything TLS produced in reply. The openssl engine is
// deterministic by construction (no goroutine).
package tlsengine

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Config describes one TLS session's local identity and peer checks.
type Config struct {
	// Server selects the TLS server role.
	Server bool
	// Certificates holds the local certificate chain and key.
	Certificates []tls.Certificate
	// VerifyPeer checks the peer's raw certificate chain (leaf first) with OpenVPN's
	// rules. It is required: engines never verify host names.
	VerifyPeer func(rawCerts [][]byte) error
	// MinVersion and MaxVersion bound the protocol version (tls.VersionTLS12 …); zero
	// means the engine default (TLS 1.2 minimum).
	MinVersion, MaxVersion uint16
	// CipherSuites restricts TLS 1.2 cipher suites (nil: engine defaults).
	CipherSuites []uint16
	// CipherList is OpenVPN's tls-cipher: the TLS 1.2 cipher list in OpenSSL syntax
	// ("" keeps the default). Only the openssl engine applies it; it takes precedence
	// over CipherSuites there. See options.go.
	CipherList string
	// CipherSuites13 is OpenVPN's tls-ciphersuites: the TLS 1.3 suites in OpenSSL
	// syntax ("TLS_AES_256_GCM_SHA384:…"). Only the openssl engine applies it.
	CipherSuites13 string
	// Groups is OpenVPN's tls-groups, colon separated ("X25519:prime256v1"). The
	// openssl engine applies it as given; the go engine maps the names it knows to
	// CurvePreferences and ignores the others.
	Groups string
}

// Session is one TLS session carried over an OpenVPN control channel.
type Session interface {
	// PutCiphertext hands bytes received from the peer, in order, to TLS.
	PutCiphertext(b []byte) error
	// TakeCiphertext returns the bytes TLS wants sent to the peer, or nil.
	TakeCiphertext() []byte
	// WritePlaintext queues application data; it is written as one TLS record once the
	// handshake is complete.
	WritePlaintext(b []byte) error
	// ReadPlaintext returns the application data received since the last call.
	ReadPlaintext() []byte
	// HandshakeComplete reports whether the handshake has finished.
	HandshakeComplete() bool
	// Err returns the fatal error that ended the session, if any.
	Err() error
	// ExportKeyingMaterial implements RFC 5705 / RFC 8446 §7.5; a nil context means
	// "no context" as OpenVPN uses it.
	ExportKeyingMaterial(label string, context []byte, n int) ([]byte, error)
	// PeerCertificates returns the peer's certificate chain, leaf first.
	PeerCertificates() []*x509.Certificate
	// Version returns the negotiated TLS version and cipher suite names.
	Version() (version, cipherSuite string)
	// Close releases the session's resources.
	Close()
}

// Engine creates TLS sessions.
type Engine interface {
	// Name returns the engine's short name ("go", "openssl").
	Name() string
	// NewSession starts a session; a client session produces its first flight at once.
	NewSession(cfg *Config) (Session, error)
}

var (
	registryMu sync.Mutex
	registry   = map[string]Engine{}
)

// Register makes an engine available by name; engines register from init functions.
func Register(e Engine) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registry[e.Name()] = e
}

// Lookup returns the engine with the given name ("" selects "go").
func Lookup(name string) (Engine, error) {
	if name == "" {
		name = "go"
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	e, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("tls engine %q is not compiled in (have %v)", name, namesLocked())
	}
	return e, nil
}

// Names lists the engines compiled in.
func Names() []string {
	registryMu.Lock()
	defer registryMu.Unlock()
	return namesLocked()
}

func namesLocked() []string {
	var n []string
	for k := range registry {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// ErrClosed is returned for operations on a closed session.
var ErrClosed = errors.New("tls session closed")
