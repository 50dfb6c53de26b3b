//go:build openssl && cgo

// Small C layer between the "openssl" TLS engine (openssl.go) and libssl 3.
//
// Every function that can fail clears the calling thread's OpenSSL error queue first
// and turns what the queue holds into text before it returns: a goroutine may move to
// another OS thread between two cgo calls, so the queue must never be read in a
// later call.

#ifndef WEFT_OPENSSL_SHIM_H
#define WEFT_OPENSSL_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

// Result flags of weft_ssl_put.
#define WEFT_HS_DONE 1     // the handshake has completed
#define WEFT_PEER_CLOSED 2 // the peer sent close_notify
#define WEFT_MORE 4        // the plaintext buffer filled up; call again with no input

// weft_ctx_new creates a context for one role and version range and applies
// OpenVPN's fixed policy (no renegotiation, no tickets, no session cache, peer
// certificates requested and checked by Go). NULL on error (err filled).
SSL_CTX *weft_ctx_new(int server, int min_version, int max_version, char *err, size_t errlen);

// weft_ctx_use_cert_der installs the leaf (index 0) or a chain certificate.
int weft_ctx_use_cert_der(SSL_CTX *ctx, const unsigned char *der, int len, int leaf, char *err, size_t errlen);

// weft_ctx_use_key_pkcs8 installs the private key (PKCS #8 DER) and checks that it
// matches the leaf certificate.
int weft_ctx_use_key_pkcs8(SSL_CTX *ctx, const unsigned char *der, int len, char *err, size_t errlen);

// weft_ctx_set_ciphers applies tls-cipher (TLS <= 1.2), tls-ciphersuites (TLS 1.3)
// and tls-groups; NULL leaves a setting at its default. which receives 1, 2 or 3 for
// the setting that failed.
int weft_ctx_set_ciphers(SSL_CTX *ctx, const char *list12, const char *suites13, const char *groups, int *which, char *err, size_t errlen);

// weft_cipher_names turns IANA cipher suite ids into an OpenSSL cipher list
// ("NAME:NAME"), skipping ids OpenSSL does not know. Returns the length written (0
// when nothing is known), or -1 when out is too small.
int weft_cipher_names(SSL_CTX *ctx, const uint16_t *ids, int n, char *out, size_t outlen);

// weft_ssl_new creates a session on memory BIOs; handle identifies the Go session in
// the verification callback.
SSL *weft_ssl_new(SSL_CTX *ctx, int server, uintptr_t handle, char *err, size_t errlen);

// weft_ssl_put feeds ciphertext (may be empty), drives the handshake and reads all
// plaintext it can into plain. Returns 0, or -1 on a fatal error (err filled).
// *flags receives WEFT_* bits, *outpending the ciphertext waiting to be sent.
int weft_ssl_put(SSL *ssl, const unsigned char *in, int inlen, unsigned char *plain, int plaincap,
                 int *plainlen, int *flags, int *outpending, char *err, size_t errlen);

// weft_ssl_write writes each of n buffers as one SSL_write (one record each when
// <= 16 KiB). The buffers lie back to back in data with lengths lens.
int weft_ssl_write(SSL *ssl, const unsigned char *data, const int *lens, int n, int *outpending, char *err, size_t errlen);

// weft_ssl_take moves up to cap bytes of pending ciphertext into out and returns the
// count; *outpending receives what is left.
int weft_ssl_take(SSL *ssl, unsigned char *out, int cap, int *outpending);

// weft_ssl_export runs SSL_export_keying_material.
int weft_ssl_export(SSL *ssl, unsigned char *out, size_t olen, const char *label, size_t llen,
                    const unsigned char *context, size_t clen, int use_context, char *err, size_t errlen);

// weft_ssl_info reports the negotiated protocol version number and the standard
// (RFC) name of the cipher suite in name.
int weft_ssl_info(SSL *ssl, char *name, size_t namelen);

// weft_ssl_extms reports whether Extended Master Secret was negotiated (TLS <= 1.2).
int weft_ssl_extms(SSL *ssl);

#endif
