package tls

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"iter"
	"slices"
	"strconv"
)

// fingerprintedExtensions yields the type of each extension of a raw
// extension block in order, GREASE left out, up to the first whose length
// overruns the block: the extensions JA3 and JA4 count.
func fingerprintedExtensions(b []byte) iter.Seq[uint16] {
	return func(yield func(uint16) bool) {
		for len(b) >= 4 {
			typ := u16(b, 0)
			n := int(u16(b, 2))
			if n > len(b)-4 {
				return
			}
			b = b[4+n:]
			if !IsGREASE(typ) && !yield(typ) {
				return
			}
		}
	}
}

// maxFPList bounds the entries of one list a fingerprint sorts; real clients
// offer under a hundred. Entries beyond it are left out of JA4's hashes.
const maxFPList = 512

// AppendJA3 appends the JA3 string of ch to dst: legacy version, cipher
// suites, extension types, supported groups and point formats, decimal,
// dash-separated within a field and comma-separated between fields, with
// GREASE values left out.
func AppendJA3(dst []byte, ch *ClientHello) []byte {
	dst = strconv.AppendUint(dst, uint64(ch.LegacyVersion), 10)
	dst = append(dst, ',')
	dst = appendDecList(dst, ch.CipherSuites)
	dst = append(dst, ',')
	first := true
	for typ := range fingerprintedExtensions(ch.Extensions) {
		if !first {
			dst = append(dst, '-')
		}
		first = false
		dst = strconv.AppendUint(dst, uint64(typ), 10)
	}
	dst = append(dst, ',')
	dst = appendDecList(dst, ch.Groups)
	dst = append(dst, ',')
	for i, f := range ch.PointFormats {
		if i > 0 {
			dst = append(dst, '-')
		}
		dst = strconv.AppendUint(dst, uint64(f), 10)
	}
	return dst
}

func appendDecList(dst, list []byte) []byte {
	first := true
	for i := 0; i+1 < len(list); i += 2 {
		v := u16(list, i)
		if IsGREASE(v) {
			continue
		}
		if !first {
			dst = append(dst, '-')
		}
		first = false
		dst = strconv.AppendUint(dst, uint64(v), 10)
	}
	return dst
}

// JA3Hash is the MD5 of the JA3 string, computed without allocating for any
// realistic ClientHello.
func JA3Hash(ch *ClientHello) [16]byte {
	var buf [2048]byte
	return md5.Sum(AppendJA3(buf[:0], ch))
}

// JA4Len is the length of a JA4 fingerprint.
const JA4Len = 36

// JA4 computes the JA4 client fingerprint (FoxIO's BSD-licensed JA4, TCP
// variant, sorted form) of ch:
//
//	t13d1516h2_8daaf6152771_e5627efa2ab1
//	│││ │ │ │  │            └ SHA-256[:12] of sorted extensions (minus SNI
//	│││ │ │ │  │              and ALPN) "_" signature algorithms in order
//	│││ │ │ │  └ SHA-256[:12] of the sorted cipher suites
//	│││ │ │ └ first and last character of the first ALPN ("00": none)
//	│││ │ └ number of extensions (GREASE excluded, at most 99)
//	│││ └ number of cipher suites (GREASE excluded, at most 99)
//	││└ 'd' SNI present, 'i' absent
//	│└ highest offered version ("13", "12", ..., "00" unknown)
//	└ 't' for TLS over TCP
func JA4(ch *ClientHello) [JA4Len]byte {
	var out [JA4Len]byte
	out[0] = 't'
	v := ja4Version(ch.MaxVersion())
	out[1], out[2] = v[0], v[1]
	out[3] = 'i'
	if ch.SNI != nil {
		out[3] = 'd'
	}

	var list [maxFPList]uint16
	ciphers := list[:0]
	for i := 0; i+1 < len(ch.CipherSuites); i += 2 {
		if c := u16(ch.CipherSuites, i); !IsGREASE(c) && len(ciphers) < maxFPList {
			ciphers = append(ciphers, c)
		}
	}
	put2(out[4:6], len(ciphers))

	var elist [maxFPList]uint16
	exts := elist[:0]
	nExt := 0
	for typ := range fingerprintedExtensions(ch.Extensions) {
		nExt++
		if typ != ExtServerName && typ != ExtALPN && len(exts) < maxFPList {
			exts = append(exts, typ)
		}
	}
	put2(out[6:8], nExt)

	out[8], out[9] = '0', '0'
	if p := ch.FirstALPN(); len(p) > 0 {
		f, l := p[0], p[len(p)-1]
		if alnum(f) && alnum(l) {
			out[8], out[9] = f, l
		} else {
			const hexd = "0123456789abcdef"
			out[8], out[9] = hexd[f>>4], hexd[l&0x0f]
		}
	}
	out[10] = '_'

	var buf [6 * maxFPList]byte
	if len(ciphers) == 0 {
		copy(out[11:23], "000000000000")
	} else {
		slices.Sort(ciphers)
		hash12(out[11:23], appendHexList(buf[:0], ciphers))
	}
	out[23] = '_'
	if len(exts) == 0 {
		copy(out[24:36], "000000000000")
	} else {
		slices.Sort(exts)
		s := appendHexList(buf[:0], exts)
		first := true
		for i := 0; i+1 < len(ch.SigAlgs); i += 2 {
			a := u16(ch.SigAlgs, i)
			if IsGREASE(a) {
				continue
			}
			if first {
				s = append(s, '_')
			} else {
				s = append(s, ',')
			}
			first = false
			s = appendHex4(s, a)
		}
		hash12(out[24:36], s)
	}
	return out
}

func ja4Version(v uint16) string {
	switch v {
	case VersionTLS13:
		return "13"
	case VersionTLS12:
		return "12"
	case VersionTLS11:
		return "11"
	case VersionTLS10:
		return "10"
	case VersionSSL30:
		return "s3"
	case 0x0002:
		return "s2"
	}
	return "00"
}

func alnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func put2(dst []byte, n int) {
	n = min(n, 99)
	dst[0], dst[1] = byte('0'+n/10), byte('0'+n%10)
}

func appendHex4(dst []byte, v uint16) []byte {
	const hexd = "0123456789abcdef"
	return append(dst, hexd[v>>12], hexd[v>>8&0xf], hexd[v>>4&0xf], hexd[v&0xf])
}

func appendHexList(dst []byte, l []uint16) []byte {
	for i, v := range l {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendHex4(dst, v)
	}
	return dst
}

func hash12(dst, s []byte) {
	sum := sha256.Sum256(s)
	hex.Encode(dst[:12], sum[:6])
}

// ServerFingerprintLen is the length of ServerFingerprint's result.
const ServerFingerprintLen = 27

// ServerFingerprint is zoomprobe's own fingerprint of a ServerHello (it is
// not JA4S or JA3S, whose licences or designs we do not follow). It captures
// what a TLS server implementation and its configuration decide, for a given
// client offer:
//
//	zs1_13130102h2_9f2c61a0be47
//	│   │ │   │ │  └ SHA-256[:12] of "ext,ext,...;group;compression": the
//	│   │ │   │ │    extension types in the order the server wrote them (the
//	│   │ │   │ │    order is implementation-specific), the key_share group
//	│   │ │   │ │    (4 hex, 0000 if none) and the compression method (2 hex)
//	│   │ │   │ └ first and last character of the selected ALPN ("00": none)
//	│   │ │   └ number of extensions (at most 99)
//	│   │ └ selected cipher suite, 4 hex digits
//	│   └ negotiated version ("13", "12", ...; supported_versions first)
//	└ scheme and its revision
//
// The server's choices depend on the client's offer, so compare server
// fingerprints only between handshakes whose client fingerprint (JA4) is the
// same.
func ServerFingerprint(sh *ServerHello) [ServerFingerprintLen]byte {
	var out [ServerFingerprintLen]byte
	var buf [6*maxFPList + 16]byte
	hash12(out[15:27], serverFingerprintInput(sh, &out, buf[:0]))
	return out
}

// serverFingerprintInput writes the readable part of sh's fingerprint into
// out[:15] and appends to s what its hashed part is computed from.
func serverFingerprintInput(sh *ServerHello, out *[ServerFingerprintLen]byte, s []byte) []byte {
	copy(out[:4], "zs1_")
	v := ja4Version(sh.Version())
	out[4], out[5] = v[0], v[1]
	appendHex4(out[6:6], sh.CipherSuite)
	n := 0
	b := sh.Extensions
	for len(b) >= 4 {
		typ := u16(b, 0)
		l := int(u16(b, 2))
		if l > len(b)-4 {
			break
		}
		b = b[4+l:]
		if n > 0 && n < maxFPList {
			s = append(s, ',')
		}
		if n < maxFPList {
			s = appendHex4(s, typ)
		}
		n++
	}
	put2(out[10:12], n)
	out[12], out[13] = '0', '0'
	if p := sh.ALPN; len(p) > 0 {
		f, l := p[0], p[len(p)-1]
		if alnum(f) && alnum(l) {
			out[12], out[13] = f, l
		} else {
			const hexd = "0123456789abcdef"
			out[12], out[13] = hexd[f>>4], hexd[l&0x0f]
		}
	}
	out[14] = '_'
	s = append(s, ';')
	s = appendHex4(s, sh.KeyShareGroup)
	s = append(s, ';')
	const hexd = "0123456789abcdef"
	return append(s, hexd[sh.Compression>>4], hexd[sh.Compression&0xf])
}
