package datachan

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"hash"
)

// PRF labels (§9.3).
const (
	masterSecretLabel = "OpenVPN master secret"
	keyExpansionLabel = "OpenVPN key expansion"
)

// PRFKeys derives key2 with OpenVPN's TLS 1.0 PRF method (§9.3), used when
// tls-ekm was not negotiated:
//
//	master = PRF(preMaster, "OpenVPN master secret", cR1 || sR1, 48)
//	key2   = PRF(master, "OpenVPN key expansion", cR2 || sR2 || cSID || sSID, 256)
//
// c* are the TLS client's values, s* the TLS server's; the session ids are
// the control-channel session ids.
func PRFKeys(preMaster [48]byte, cR1, sR1, cR2, sR2 [32]byte, cSID, sSID [8]byte) Key2 {
	var master [48]byte
	seed1 := make([]byte, 0, 64)
	seed1 = append(append(seed1, cR1[:]...), sR1[:]...)
	tls10PRF(master[:], preMaster[:], masterSecretLabel, seed1)

	seed2 := make([]byte, 0, 80)
	seed2 = append(append(seed2, cR2[:]...), sR2[:]...)
	seed2 = append(append(seed2, cSID[:]...), sSID[:]...)
	var k Key2
	tls10PRF(k[:], master[:], keyExpansionLabel, seed2)
	clear(master[:])
	return k
}

// tls10PRF fills out with the TLS 1.0 PRF (RFC 2246 §5):
// P_MD5(S1, label||seed) XOR P_SHA1(S2, label||seed), where S1 and S2 are the
// first and last ceil(len/2) bytes of secret.
func tls10PRF(out, secret []byte, label string, seed []byte) {
	ls := make([]byte, 0, len(label)+len(seed))
	ls = append(append(ls, label...), seed...)
	half := (len(secret) + 1) / 2
	s1, s2 := secret[:half], secret[len(secret)-half:]
	clear(out)
	pHash(out, md5.New, s1, ls)
	pHash(out, sha1.New, s2, ls)
}

// pHash XORs P_hash(secret, seed) into out:
// A(0) = seed, A(i) = HMAC(secret, A(i-1)), output HMAC(secret, A(i) || seed)...
func pHash(out []byte, h func() hash.Hash, secret, seed []byte) {
	mac := hmac.New(h, secret)
	mac.Write(seed)
	a := mac.Sum(nil) // A(1)
	for len(out) > 0 {
		mac.Reset()
		mac.Write(a)
		mac.Write(seed)
		b := mac.Sum(nil)
		n := min(len(b), len(out))
		for i := 0; i < n; i++ {
			out[i] ^= b[i]
		}
		out = out[n:]
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(a[:0]) // A(i+1)
	}
}
