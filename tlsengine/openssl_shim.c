//go:build openssl && cgo

#include "openssl_shim.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "_cgo_export.h"

#if OPENSSL_VERSION_NUMBER < 0x10101000L
#error "the openssl TLS engine needs OpenSSL 1.1.1 or later (tested with 3.0)"
#endif

// weft_errstr writes the reasons in the thread's error queue, oldest first, into buf
// and empties the queue. fallback is used when the queue holds nothing.
static void weft_errstr(char *buf, size_t len, const char *fallback) {
    unsigned long e;
    size_t used = 0;
    char prev[256] = "";

    if (buf == NULL || len == 0) {
        ERR_clear_error();
        return;
    }
    buf[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        const char *r = ERR_reason_error_string(e);
        if (r == NULL) {
            ERR_error_string_n(e, one, sizeof one);
            r = one;
        }
        if (strcmp(r, prev) == 0) {
            continue;
        }
        snprintf(prev, sizeof prev, "%s", r);
        int n = snprintf(buf + used, len - used, "%s%s", used > 0 ? "; " : "", r);
        if (n < 0 || (size_t)n >= len - used) {
            used = len - 1;
            break;
        }
        used += (size_t)n;
    }
    ERR_clear_error();
    if (used == 0 && fallback != NULL) {
        snprintf(buf, len, "%s", fallback);
    }
}

// weft_cert_verify_cb replaces OpenSSL's chain verification: it hands the peer's
// certificates, leaf first, to the Go session's VerifyPeer. OpenVPN's rules (chain to
// the configured CA, key usages, verify-x509-name) all live in Go.
static int weft_cert_verify_cb(X509_STORE_CTX *xs, void *arg) {
    (void)arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    X509 *leaf = X509_STORE_CTX_get0_cert(xs);
    STACK_OF(X509) *rest = X509_STORE_CTX_get0_untrusted(xs);
    int nrest = rest != NULL ? sk_X509_num(rest) : 0;
    int n = 0, ok = 0;
    size_t total = 0;
    X509 **certs = NULL;
    int *lens = NULL;
    unsigned char *buf = NULL, *p;

    if (ssl == NULL || leaf == NULL) {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_UNSPECIFIED);
        return 0;
    }
    certs = calloc((size_t)nrest + 1, sizeof *certs);
    lens = calloc((size_t)nrest + 1, sizeof *lens);
    if (certs == NULL || lens == NULL) {
        goto done;
    }
    certs[n++] = leaf;
    for (int i = 0; i < nrest; i++) {
        X509 *c = sk_X509_value(rest, i);
        // The peer's chain as received starts with the leaf; it is already first.
        if (i == 0 && (c == leaf || X509_cmp(c, leaf) == 0)) {
            continue;
        }
        certs[n++] = c;
    }
    for (int i = 0; i < n; i++) {
        int l = i2d_X509(certs[i], NULL);
        if (l <= 0 || (size_t)l > (size_t)INT_MAX - total) {
            goto done;
        }
        lens[i] = l;
        total += (size_t)l;
    }
    buf = malloc(total);
    if (buf == NULL) {
        goto done;
    }
    p = buf;
    for (int i = 0; i < n; i++) {
        i2d_X509(certs[i], &p);
    }
    ok = weftVerifyPeer((uintptr_t)SSL_get_app_data(ssl), buf, lens, n);

done:
    free(buf);
    free(lens);
    free(certs);
    if (!ok) {
        // CERT_REJECTED makes OpenSSL send a bad_certificate alert, as crypto/tls does.
        X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    X509_STORE_CTX_set_error(xs, X509_V_OK);
    return 1;
}

SSL_CTX *weft_ctx_new(int server, int min_version, int max_version, char *err, size_t errlen) {
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) {
        weft_errstr(err, errlen, "SSL_CTX_new failed");
        return NULL;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, min_version) ||
        (max_version != 0 && !SSL_CTX_set_max_proto_version(ctx, max_version))) {
        weft_errstr(err, errlen, "unsupported protocol version bounds");
        SSL_CTX_free(ctx);
        return NULL;
    }
    // OpenVPN rekeys with fresh handshakes on new key states: TLS renegotiation,
    // resumption and tickets are never used.
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    // Idle sessions (most of a key state's life) give their record buffers back.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
    SSL_CTX_set_cert_verify_callback(ctx, weft_cert_verify_cb, NULL);
    return ctx;
}

int weft_ctx_use_cert_der(SSL_CTX *ctx, const unsigned char *der, int len, int leaf, char *err, size_t errlen) {
    const unsigned char *p = der;
    int ok;

    ERR_clear_error();
    X509 *x = d2i_X509(NULL, &p, len);
    if (x == NULL || p != der + len) {
        X509_free(x);
        weft_errstr(err, errlen, "bad certificate DER");
        return -1;
    }
    if (leaf) {
        ok = SSL_CTX_use_certificate(ctx, x);
        X509_free(x);
    } else {
        ok = SSL_CTX_add0_chain_cert(ctx, x); // takes ownership on success
        if (!ok) {
            X509_free(x);
        }
    }
    if (!ok) {
        weft_errstr(err, errlen, "cannot use certificate");
        return -1;
    }
    return 0;
}

int weft_ctx_use_key_pkcs8(SSL_CTX *ctx, const unsigned char *der, int len, char *err, size_t errlen) {
    const unsigned char *p = der;

    ERR_clear_error();
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, len);
    if (p8 == NULL) {
        weft_errstr(err, errlen, "bad PKCS #8 private key");
        return -1;
    }
    EVP_PKEY *pk = EVP_PKCS82PKEY(p8);
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (pk == NULL) {
        weft_errstr(err, errlen, "unsupported private key");
        return -1;
    }
    int ok = SSL_CTX_use_PrivateKey(ctx, pk);
    EVP_PKEY_free(pk);
    if (!ok || !SSL_CTX_check_private_key(ctx)) {
        weft_errstr(err, errlen, "private key does not match the certificate");
        return -1;
    }
    return 0;
}

int weft_ctx_set_ciphers(SSL_CTX *ctx, const char *list12, const char *suites13, const char *groups, int *which, char *err, size_t errlen) {
    ERR_clear_error();
    *which = 0;
    if (list12 != NULL && !SSL_CTX_set_cipher_list(ctx, list12)) {
        *which = 1;
    } else if (suites13 != NULL && !SSL_CTX_set_ciphersuites(ctx, suites13)) {
        *which = 2;
    } else if (groups != NULL && !SSL_CTX_set1_groups_list(ctx, groups)) {
        *which = 3;
    }
    if (*which != 0) {
        weft_errstr(err, errlen, "invalid value");
        return -1;
    }
    return 0;
}

int weft_cipher_names(SSL_CTX *ctx, const uint16_t *ids, int n, char *out, size_t outlen) {
    size_t used = 0;

    ERR_clear_error();
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) {
        ERR_clear_error();
        return -1;
    }
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        unsigned char b[2] = {(unsigned char)(ids[i] >> 8), (unsigned char)ids[i]};
        const SSL_CIPHER *c = SSL_CIPHER_find(ssl, b);
        if (c == NULL || (ids[i] >> 8) == 0x13) {
            continue; // unknown here, or a TLS 1.3 suite (not restricted by this list)
        }
        int w = snprintf(out + used, outlen - used, "%s%s", used > 0 ? ":" : "", SSL_CIPHER_get_name(c));
        if (w < 0 || (size_t)w >= outlen - used) {
            SSL_free(ssl);
            return -1;
        }
        used += (size_t)w;
    }
    SSL_free(ssl);
    ERR_clear_error();
    return (int)used;
}

SSL *weft_ssl_new(SSL_CTX *ctx, int server, uintptr_t handle, char *err, size_t errlen) {
    ERR_clear_error();
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) {
        weft_errstr(err, errlen, "SSL_new failed");
        return NULL;
    }
    BIO *rb = BIO_new(BIO_s_mem());
    BIO *wb = BIO_new(BIO_s_mem());
    if (rb == NULL || wb == NULL) {
        BIO_free(rb);
        BIO_free(wb);
        SSL_free(ssl);
        weft_errstr(err, errlen, "BIO_new failed");
        return NULL;
    }
    // An empty input BIO means "no data yet" (retry), never end of stream.
    BIO_set_mem_eof_return(rb, -1);
    SSL_set_bio(ssl, rb, wb); // the SSL owns both BIOs from here on
    SSL_set_app_data(ssl, (void *)handle);
    if (server) {
        SSL_set_accept_state(ssl);
    } else {
        SSL_set_connect_state(ssl);
    }
    return ssl;
}

static int weft_pending(SSL *ssl) {
    size_t n = BIO_ctrl_pending(SSL_get_wbio(ssl));
    return n > INT_MAX ? INT_MAX : (int)n;
}

// weft_fatal describes a failed SSL call.
static void weft_fatal(int e, char *err, size_t errlen) {
    switch (e) {
    case SSL_ERROR_SYSCALL:
        weft_errstr(err, errlen, "unexpected end of stream");
        break;
    case SSL_ERROR_ZERO_RETURN:
        weft_errstr(err, errlen, "peer closed the session");
        break;
    default: {
        char fb[64];
        snprintf(fb, sizeof fb, "SSL error %d", e);
        weft_errstr(err, errlen, fb);
    }
    }
}

int weft_ssl_put(SSL *ssl, const unsigned char *in, int inlen, unsigned char *plain, int plaincap,
                 int *plainlen, int *flags, int *outpending, char *err, size_t errlen) {
    int rc = 0;

    *plainlen = 0;
    *flags = 0;
    ERR_clear_error();
    if (inlen > 0 && BIO_write(SSL_get_rbio(ssl), in, inlen) != inlen) {
        weft_errstr(err, errlen, "BIO_write failed");
        rc = -1;
        goto out;
    }
    if (!SSL_is_init_finished(ssl)) {
        int r = SSL_do_handshake(ssl);
        if (r <= 0) {
            int e = SSL_get_error(ssl, r);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                weft_fatal(e, err, errlen);
                rc = -1;
            }
            goto out;
        }
    }
    *flags |= WEFT_HS_DONE;
    while (*plainlen < plaincap) {
        size_t n = 0;
        int r = SSL_read_ex(ssl, plain + *plainlen, (size_t)(plaincap - *plainlen), &n);
        if (r > 0) {
            *plainlen += (int)n;
            continue;
        }
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            goto out;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            *flags |= WEFT_PEER_CLOSED;
            goto out;
        }
        weft_fatal(e, err, errlen);
        rc = -1;
        goto out;
    }
    *flags |= WEFT_MORE;
out:
    *outpending = weft_pending(ssl);
    return rc;
}

int weft_ssl_write(SSL *ssl, const unsigned char *data, const int *lens, int n, int *outpending, char *err, size_t errlen) {
    int rc = 0;
    size_t off = 0;

    ERR_clear_error();
    for (int i = 0; i < n; i++) {
        size_t w = 0;
        if (lens[i] <= 0) {
            continue;
        }
        int r = SSL_write_ex(ssl, data + off, (size_t)lens[i], &w);
        if (r <= 0 || w != (size_t)lens[i]) {
            weft_fatal(SSL_get_error(ssl, r), err, errlen);
            rc = -1;
            break;
        }
        off += (size_t)lens[i];
    }
    *outpending = weft_pending(ssl);
    return rc;
}

int weft_ssl_take(SSL *ssl, unsigned char *out, int cap, int *outpending) {
    int n = BIO_read(SSL_get_wbio(ssl), out, cap);
    if (n < 0) {
        n = 0;
    }
    *outpending = weft_pending(ssl);
    return n;
}

int weft_ssl_export(SSL *ssl, unsigned char *out, size_t olen, const char *label, size_t llen,
                    const unsigned char *context, size_t clen, int use_context, char *err, size_t errlen) {
    ERR_clear_error();
    if (SSL_export_keying_material(ssl, out, olen, label, llen, context, clen, use_context) != 1) {
        weft_errstr(err, errlen, "SSL_export_keying_material failed");
        return -1;
    }
    return 0;
}

int weft_ssl_info(SSL *ssl, char *name, size_t namelen) {
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    const char *n = NULL;

    name[0] = '\0';
    if (c != NULL) {
        n = SSL_CIPHER_standard_name(c);
        if (n == NULL) {
            n = SSL_CIPHER_get_name(c);
        }
        snprintf(name, namelen, "%s", n);
    }
    return SSL_version(ssl);
}

int weft_ssl_extms(SSL *ssl) {
    return SSL_get_extms_support(ssl) == 1;
}
