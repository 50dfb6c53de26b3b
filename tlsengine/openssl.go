//go:build openssl && cgo

package tlsengine

/*
#cgo pkg-config: openssl
#include <stdlib.h>
#include "openssl_shim.h"
*/
import "C"

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime/cgo"
	"sync"
	"unsafe"
)

func init() { Register(OpenSSLEngine{}) }

// OpenSSLEngine is the TLS engine over the system's OpenSSL 3 (libssl), driven through
// memory BIOs: no goroutine, no socket, one cgo call per PutCiphertext. It is compiled
// in with the build tag "openssl" (and cgo).
//
// Peer certificates are requested in both roles (a server requires one) and handed,
// leaf first, to Config.VerifyPeer from OpenSSL's certificate verification callback,
// so a rejection aborts the handshake with a bad_certificate alert and Err carries the
// verifier's reason. TLS renegotiation, session resumption and tickets are disabled.
//
// Sessions must be closed by their owner: Close frees the OpenSSL objects, and there
// is no finalizer.
type OpenSSLEngine struct{}

// Name implements Engine.
func (OpenSSLEngine) Name() string { return "openssl" }

// errBufLen bounds the OpenSSL error text one call reports.
const errBufLen = 512

type errBuf [errBufLen]C.char

func (b *errBuf) ptr() *C.char { return &b[0] }

func (b *errBuf) String() string {
	s := C.GoString(&b[0])
	if s == "" {
		return "unknown OpenSSL error"
	}
	return s
}

// NewSession implements Engine.
func (OpenSSLEngine) NewSession(cfg *Config) (Session, error) {
	if cfg == nil || cfg.VerifyPeer == nil {
		return nil, errors.New("tls: a peer verification function is required")
	}
	ctx, err := sslCtxFor(cfg)
	if err != nil {
		return nil, err
	}
	s := &osslSession{verify: cfg.VerifyPeer}
	s.handle = cgo.NewHandle(s)
	var eb errBuf
	s.ssl = C.weft_ssl_new(ctx, cbool(cfg.Server), C.uintptr_t(s.handle), eb.ptr(), errBufLen)
	C.SSL_CTX_free(ctx) // the SSL holds its own reference
	if s.ssl == nil {
		s.handle.Delete()
		return nil, fmt.Errorf("tls: openssl: %s", eb.String())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A client writes its ClientHello now; a server just waits for one.
	s.putLocked(nil)
	return s, nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// osslSession is one SSL object on a pair of memory BIOs. Every method holds mu for
// the whole call, including the C call; the verification callback runs inside such a
// call on the same goroutine and so touches the session without locking.
type osslSession struct {
	mu     sync.Mutex
	ssl    *C.SSL
	handle cgo.Handle
	verify func([][]byte) error

	hsDone     bool
	peerClosed bool
	closed     bool
	err        error
	verifyErr  error // the verifier's rejection, set by the callback
	peer       []*x509.Certificate
	plain      []byte
	pending    [][]byte // plaintext written before the handshake completed
	outPending int      // ciphertext bytes waiting in the output BIO
	scratch    []byte   // receives plaintext from C
	version    string
	suite      string
}

// fail records a fatal error; the verifier's reason wins over OpenSSL's summary.
func (s *osslSession) fail(msg string) {
	if s.err != nil {
		return
	}
	if s.verifyErr != nil {
		s.err = fmt.Errorf("tls: %w", s.verifyErr)
		return
	}
	s.err = fmt.Errorf("tls: openssl: %s", msg)
}

// putLocked feeds ciphertext to OpenSSL, drives the handshake and collects plaintext.
func (s *osslSession) putLocked(in []byte) {
	if len(in) > math.MaxInt32 {
		s.fail("ciphertext too large")
		return
	}
	for {
		need := len(in) + 4096
		if cap(s.scratch) < need {
			s.scratch = make([]byte, need)
		}
		buf := s.scratch[:cap(s.scratch)]
		if len(buf) > math.MaxInt32 {
			buf = buf[:math.MaxInt32]
		}
		var inPtr *C.uchar
		if len(in) > 0 {
			inPtr = (*C.uchar)(unsafe.Pointer(&in[0]))
		}
		var plainLen, flags, outPending C.int
		var eb errBuf
		rc := C.weft_ssl_put(s.ssl, inPtr, C.int(len(in)),
			(*C.uchar)(unsafe.Pointer(&buf[0])), C.int(len(buf)),
			&plainLen, &flags, &outPending, eb.ptr(), errBufLen)
		s.outPending = int(outPending)
		if plainLen > 0 {
			s.plain = append(s.plain, buf[:plainLen]...)
		}
		if flags&C.WEFT_HS_DONE != 0 && !s.hsDone && rc == 0 {
			s.hsDone = true
			s.recordInfo()
		}
		if flags&C.WEFT_PEER_CLOSED != 0 {
			s.peerClosed = true
		}
		if rc != 0 {
			s.fail(eb.String())
			return
		}
		if flags&C.WEFT_MORE == 0 {
			return
		}
		in = nil
	}
}

func (s *osslSession) recordInfo() {
	var name [128]C.char
	v := C.weft_ssl_info(s.ssl, &name[0], C.size_t(len(name)))
	s.version = tls.VersionName(uint16(v))
	s.suite = C.GoString(&name[0])
}

// flushLocked writes the queued plaintext, one SSL_write (one record) per buffer, in
// a single C call.
func (s *osslSession) flushLocked() {
	if !s.hsDone || s.err != nil || s.peerClosed || len(s.pending) == 0 {
		return
	}
	total := 0
	for _, p := range s.pending {
		total += len(p)
	}
	if total == 0 {
		s.pending = nil
		return
	}
	if total > math.MaxInt32 {
		s.pending = nil
		s.fail("plaintext too large")
		return
	}
	data := make([]byte, 0, total)
	lens := make([]C.int, len(s.pending))
	for i, p := range s.pending {
		data = append(data, p...)
		lens[i] = C.int(len(p))
	}
	s.pending = nil
	var outPending C.int
	var eb errBuf
	rc := C.weft_ssl_write(s.ssl, (*C.uchar)(unsafe.Pointer(&data[0])), &lens[0], C.int(len(lens)),
		&outPending, eb.ptr(), errBufLen)
	s.outPending = int(outPending)
	if rc != 0 {
		s.fail("write: " + eb.String())
	}
}

// usable reports why the session cannot take more work, if it cannot.
func (s *osslSession) usable() error {
	switch {
	case s.closed:
		return ErrClosed
	case s.err != nil:
		return s.err
	case s.peerClosed:
		return ErrClosed
	}
	return nil
}

func (s *osslSession) PutCiphertext(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	s.putLocked(b)
	s.flushLocked()
	return s.err
}

func (s *osslSession) TakeCiphertext() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.outPending <= 0 {
		return nil
	}
	out := make([]byte, s.outPending)
	n := 0
	for n < len(out) {
		var left C.int
		got := C.weft_ssl_take(s.ssl, (*C.uchar)(unsafe.Pointer(&out[n])), C.int(len(out)-n), &left)
		s.outPending = int(left)
		if got <= 0 {
			break
		}
		n += int(got)
	}
	if n == 0 {
		return nil
	}
	return out[:n]
}

func (s *osslSession) WritePlaintext(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	s.pending = append(s.pending, append([]byte(nil), b...))
	s.flushLocked()
	return s.err
}

func (s *osslSession) ReadPlaintext() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.plain
	s.plain = nil
	return p
}

func (s *osslSession) HandshakeComplete() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hsDone
}

func (s *osslSession) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *osslSession) ExportKeyingMaterial(label string, context []byte, n int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if !s.hsDone {
		return nil, errors.New("tls: keying material requested before the handshake completed")
	}
	if n <= 0 || n > 1<<20 {
		return nil, fmt.Errorf("tls: invalid keying material length %d", n)
	}
	if s.version != tls.VersionName(tls.VersionTLS13) {
		// Like crypto/tls: refuse TLS 1.2 exports without Extended Master Secret (RFC
		// 7627) and labels the TLS 1.2 PRF itself uses (RFC 5705 §4).
		if C.weft_ssl_extms(s.ssl) != 1 {
			return nil, errors.New("tls: ExportKeyingMaterial is unavailable when neither TLS 1.3 nor Extended Master Secret are negotiated")
		}
		switch label {
		case "client finished", "server finished", "master secret", "key expansion":
			return nil, fmt.Errorf("tls: reserved ExportKeyingMaterial label %q", label)
		}
	}
	out := make([]byte, n)
	lbl := []byte(label)
	var lblPtr *C.char
	if len(lbl) > 0 {
		lblPtr = (*C.char)(unsafe.Pointer(&lbl[0]))
	}
	var ctxPtr *C.uchar
	if len(context) > 0 {
		ctxPtr = (*C.uchar)(unsafe.Pointer(&context[0]))
	}
	useContext := cbool(context != nil)
	var eb errBuf
	if C.weft_ssl_export(s.ssl, (*C.uchar)(unsafe.Pointer(&out[0])), C.size_t(n), lblPtr, C.size_t(len(lbl)),
		ctxPtr, C.size_t(len(context)), useContext, eb.ptr(), errBufLen) != 0 {
		return nil, fmt.Errorf("tls: openssl: %s", eb.String())
	}
	return out, nil
}

func (s *osslSession) PeerCertificates() []*x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hsDone {
		return nil
	}
	return s.peer
}

func (s *osslSession) Version() (string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version, s.suite
}

func (s *osslSession) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	C.SSL_free(s.ssl) // frees both BIOs and drops the context reference
	s.ssl = nil
	s.handle.Delete()
	s.plain, s.pending, s.scratch = nil, nil, nil
}

// verifyPeer runs inside SSL_do_handshake (see weftVerifyPeer).
func (s *osslSession) verifyPeer(raw [][]byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("peer verification panicked: %v", r)
		}
	}()
	certs := make([]*x509.Certificate, 0, len(raw))
	for _, der := range raw {
		c, perr := x509.ParseCertificate(der)
		if perr != nil {
			return fmt.Errorf("failed to parse certificate from peer: %w", perr)
		}
		certs = append(certs, c)
	}
	if err := s.verify(raw); err != nil {
		return err
	}
	s.peer = certs
	return nil
}

// SSL_CTX cache. A context depends only on the role, versions, cipher settings and
// the local certificate and key, so sessions with equal settings share one; it is
// found by a hash of those settings. The cache holds one reference per context and
// each SSL another, so evicting a context never disturbs live sessions.

const ctxCacheSize = 32

type ctxCacheEntry struct {
	key [32]byte
	ctx *C.SSL_CTX
}

var (
	ctxCacheMu sync.Mutex
	ctxCache   []ctxCacheEntry // most recently used last
)

// sslCtxFor returns a context for cfg holding one reference for the caller.
func sslCtxFor(cfg *Config) (*C.SSL_CTX, error) {
	var keyDER []byte
	if len(cfg.Certificates) > 0 {
		c := cfg.Certificates[0]
		if len(c.Certificate) == 0 {
			return nil, errors.New("tls: openssl: the certificate has no DER data")
		}
		if c.PrivateKey == nil {
			return nil, errors.New("tls: openssl: the certificate has no private key")
		}
		var err error
		keyDER, err = x509.MarshalPKCS8PrivateKey(c.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("tls: openssl: private key of type %T cannot be exported to OpenSSL: %w", c.PrivateKey, err)
		}
	}
	key := ctxKey(cfg, keyDER)
	ctxCacheMu.Lock()
	for i, e := range ctxCache {
		if e.key == key {
			C.SSL_CTX_up_ref(e.ctx)
			copy(ctxCache[i:], ctxCache[i+1:])
			ctxCache[len(ctxCache)-1] = e
			ctxCacheMu.Unlock()
			return e.ctx, nil
		}
	}
	ctxCacheMu.Unlock()

	ctx, err := newSSLCtx(cfg, keyDER)
	if err != nil {
		return nil, err
	}
	ctxCacheMu.Lock()
	defer ctxCacheMu.Unlock()
	for _, e := range ctxCache {
		if e.key == key { // built concurrently by another caller; keep theirs
			C.SSL_CTX_up_ref(e.ctx)
			C.SSL_CTX_free(ctx)
			return e.ctx, nil
		}
	}
	if len(ctxCache) >= ctxCacheSize {
		C.SSL_CTX_free(ctxCache[0].ctx)
		ctxCache = append(ctxCache[:0], ctxCache[1:]...)
	}
	C.SSL_CTX_up_ref(ctx)
	ctxCache = append(ctxCache, ctxCacheEntry{key: key, ctx: ctx})
	return ctx, nil
}

// freeCtx drops one reference to a context.
func freeCtx(ctx *C.SSL_CTX) { C.SSL_CTX_free(ctx) }

func ctxKey(cfg *Config, keyDER []byte) [32]byte {
	h := sha256.New()
	var b [8]byte
	field := func(p []byte) {
		binary.BigEndian.PutUint64(b[:], uint64(len(p)))
		h.Write(b[:])
		h.Write(p)
	}
	hdr := []byte{0, 0, 0, 0, 0}
	if cfg.Server {
		hdr[0] = 1
	}
	binary.BigEndian.PutUint16(hdr[1:], cfg.MinVersion)
	binary.BigEndian.PutUint16(hdr[3:], cfg.MaxVersion)
	field(hdr)
	suites := make([]byte, 2*len(cfg.CipherSuites))
	for i, id := range cfg.CipherSuites {
		binary.BigEndian.PutUint16(suites[2*i:], id)
	}
	field(suites)
	field([]byte(cfg.CipherList))
	field([]byte(cfg.CipherSuites13))
	field([]byte(cfg.Groups))
	if len(cfg.Certificates) > 0 {
		for _, der := range cfg.Certificates[0].Certificate {
			field(der)
		}
	}
	field(keyDER)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// newSSLCtx builds a context holding one reference for the caller.
func newSSLCtx(cfg *Config, keyDER []byte) (*C.SSL_CTX, error) {
	minV := cfg.MinVersion
	if minV == 0 {
		minV = tls.VersionTLS12
	}
	var eb errBuf
	ctx := C.weft_ctx_new(cbool(cfg.Server), C.int(minV), C.int(cfg.MaxVersion), eb.ptr(), errBufLen)
	if ctx == nil {
		return nil, fmt.Errorf("tls: openssl: %s", eb.String())
	}
	ok := false
	defer func() {
		if !ok {
			C.SSL_CTX_free(ctx)
		}
	}()
	if len(cfg.Certificates) > 0 {
		for i, der := range cfg.Certificates[0].Certificate {
			if len(der) == 0 || len(der) > math.MaxInt32 {
				return nil, fmt.Errorf("tls: openssl: certificate %d: bad length", i)
			}
			if C.weft_ctx_use_cert_der(ctx, (*C.uchar)(unsafe.Pointer(&der[0])), C.int(len(der)), cbool(i == 0), eb.ptr(), errBufLen) != 0 {
				return nil, fmt.Errorf("tls: openssl: certificate %d: %s", i, eb.String())
			}
		}
		if C.weft_ctx_use_key_pkcs8(ctx, (*C.uchar)(unsafe.Pointer(&keyDER[0])), C.int(len(keyDER)), eb.ptr(), errBufLen) != 0 {
			return nil, fmt.Errorf("tls: openssl: private key: %s", eb.String())
		}
	}
	list12 := cfg.CipherList
	if list12 == "" && len(cfg.CipherSuites) > 0 {
		names, err := cipherNames(ctx, cfg.CipherSuites)
		if err != nil {
			return nil, err
		}
		list12 = names
	}
	if err := setCiphers(ctx, list12, cfg.CipherSuites13, cfg.Groups); err != nil {
		return nil, err
	}
	ok = true
	return ctx, nil
}

// setCiphers applies the non-empty cipher settings.
func setCiphers(ctx *C.SSL_CTX, list12, suites13, groups string) error {
	cstr := func(s string) *C.char {
		if s == "" {
			return nil
		}
		return C.CString(s)
	}
	l, t, g := cstr(list12), cstr(suites13), cstr(groups)
	defer C.free(unsafe.Pointer(l))
	defer C.free(unsafe.Pointer(t))
	defer C.free(unsafe.Pointer(g))
	var which C.int
	var eb errBuf
	if C.weft_ctx_set_ciphers(ctx, l, t, g, &which, eb.ptr(), errBufLen) == 0 {
		return nil
	}
	switch which {
	case 1:
		return fmt.Errorf("tls: openssl: invalid tls-cipher %q: %s", list12, eb.String())
	case 2:
		return fmt.Errorf("tls: openssl: invalid tls-ciphersuites %q: %s", suites13, eb.String())
	default:
		return fmt.Errorf("tls: openssl: invalid tls-groups %q: %s", groups, eb.String())
	}
}

// cipherNames turns Config.CipherSuites (IANA ids) into an OpenSSL cipher list.
func cipherNames(ctx *C.SSL_CTX, ids []uint16) (string, error) {
	cids := make([]C.uint16_t, len(ids))
	for i, id := range ids {
		cids[i] = C.uint16_t(id)
	}
	out := make([]byte, 64*len(ids)+1)
	n := C.weft_cipher_names(ctx, &cids[0], C.int(len(cids)), (*C.char)(unsafe.Pointer(&out[0])), C.size_t(len(out)))
	switch {
	case n < 0:
		return "", errors.New("tls: openssl: cannot translate the cipher suites")
	case n == 0:
		return "", fmt.Errorf("tls: openssl: none of the TLS 1.2 cipher suites %v is known to OpenSSL", ids)
	}
	return string(out[:n]), nil
}
