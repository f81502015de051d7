package certcheck

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/zoomprobe/zoomprobe/config"
)

// Certificate transparency (RFC 6962): SCTs are parsed from the three
// places a server can give them (embedded in the certificate, the TLS
// extension, a stapled OCSP response) and their signatures verified against
// a list of known logs. A log only signs a (pre)certificate that chains to a
// root it accepts, so a valid SCT from a known log is strong evidence that a
// public CA issued the certificate: an inspection box cannot mint one.

//go:embed ctlogs.json
var embeddedCTLogs []byte

// CT log states of Google's log list; an SCT from a "rejected" log proves
// nothing, one from a "retired" log only if it predates the retirement.
var ctLogStates = []string{"pending", "qualified", "usable", "readonly", "retired", "rejected"}

// CTLog is one known log.
type CTLog struct {
	Description string
	Operator    string
	ID          [32]byte
	Key         crypto.PublicKey
	// State is the log's state in the list ("" when the list does not say),
	// StateSince when it entered it.
	State      string
	StateSince time.Time
}

// CTLogs is a loaded log list, looked up by log ID.
type CTLogs struct {
	byID map[[32]byte]*CTLog
}

// Len is the number of logs.
func (l *CTLogs) Len() int {
	if l == nil {
		return 0
	}
	return len(l.byID)
}

// Lookup returns the log with that ID, or nil.
func (l *CTLogs) Lookup(id [32]byte) *CTLog {
	if l == nil {
		return nil
	}
	return l.byID[id]
}

// DefaultCTLogs is the embedded log list (ctlogs.json): a subset of Google's
// list whose keys were cross-checked against independently published log IDs.
func DefaultCTLogs() *CTLogs {
	l, err := ParseCTLogs(embeddedCTLogs, "built-in ctlogs.json")
	if err != nil {
		panic(err) // the embedded file is tested
	}
	return l
}

// LoadCTLogs reads a log list in the format of Google's
// https://www.gstatic.com/ct/log_list/v3/log_list.json (the file as
// downloaded works). Errors name the file and the entry.
func LoadCTLogs(path string) (*CTLogs, error) {
	b, err := config.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCTLogs(b, path)
}

type logListJSON struct {
	Operators []struct {
		Name      string    `json:"name"`
		Logs      []logJSON `json:"logs"`
		TiledLogs []logJSON `json:"tiled_logs"`
	} `json:"operators"`
}

type logJSON struct {
	Description string                     `json:"description"`
	LogID       string                     `json:"log_id"`
	Key         string                     `json:"key"`
	State       map[string]json.RawMessage `json:"state"`
}

// ParseCTLogs parses a log list; name labels errors. Every log needs a
// description, a key that parses (ECDSA or RSA) and a log_id equal to the
// SHA-256 of that key; the list must hold at least one log.
func ParseCTLogs(b []byte, name string) (*CTLogs, error) {
	var doc logListJSON
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	out := &CTLogs{byID: map[[32]byte]*CTLog{}}
	var errs []string
	for i, op := range doc.Operators {
		for _, group := range []struct {
			kind string
			logs []logJSON
		}{{"logs", op.Logs}, {"tiled_logs", op.TiledLogs}} {
			kind := group.kind
			for j, lj := range group.logs {
				at := fmt.Sprintf("%s: operators[%d].%s[%d]", name, i, kind, j)
				l, err := parseLog(lj, op.Name)
				if err != nil {
					errs = append(errs, at+err.Error())
					continue
				}
				if _, dup := out.byID[l.ID]; dup {
					errs = append(errs, at+".log_id: listed twice")
					continue
				}
				out.byID[l.ID] = l
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	if len(out.byID) == 0 {
		return nil, fmt.Errorf("%s: no log in operators[].logs", name)
	}
	return out, nil
}

func parseLog(lj logJSON, operator string) (*CTLog, error) {
	l := &CTLog{Description: strings.TrimSpace(lj.Description), Operator: operator}
	if l.Description == "" {
		return nil, errors.New(".description: must be set")
	}
	der, err := base64.StdEncoding.DecodeString(lj.Key)
	if err != nil {
		return nil, fmt.Errorf(".key: not base64: %v", err)
	}
	l.Key, err = x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf(".key: %v", err)
	}
	switch l.Key.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey:
	default:
		return nil, fmt.Errorf(".key: %T is not an ECDSA or RSA key", l.Key)
	}
	l.ID = sha256.Sum256(der)
	id, err := base64.StdEncoding.DecodeString(lj.LogID)
	if err != nil || !bytes.Equal(id, l.ID[:]) {
		return nil, fmt.Errorf(".log_id: %q is not the SHA-256 of the key (%s)", lj.LogID, base64.StdEncoding.EncodeToString(l.ID[:]))
	}
	for st, raw := range lj.State {
		if !contains(ctLogStates, st) {
			return nil, fmt.Errorf(".state: %q is not one of %s", st, strings.Join(ctLogStates, ", "))
		}
		var since struct {
			Timestamp time.Time `json:"timestamp"`
		}
		if err := json.Unmarshal(raw, &since); err != nil {
			return nil, fmt.Errorf(".state.%s: %v", st, err)
		}
		l.State, l.StateSince = st, since.Timestamp
	}
	return l, nil
}

// sctOrigin is where an SCT came from; it decides what the log signed.
type sctOrigin uint8

const (
	sctEmbedded sctOrigin = iota // in the certificate: the log signed the precertificate
	sctTLS                       // TLS extension: the log signed the certificate
	sctOCSP                      // stapled OCSP extension: likewise
)

// sct is a parsed SignedCertificateTimestamp (RFC 6962 3.2).
type sct struct {
	logID     [32]byte
	timestamp uint64 // ms since the epoch
	ext       []byte
	hashAlg   uint8
	sigAlg    uint8
	sig       []byte
}

func parseSCT(b []byte) (sct, bool) {
	var s sct
	in := cryptobyte.String(b)
	var version uint8
	var id []byte
	var ext, sig cryptobyte.String
	if !in.ReadUint8(&version) || version != 0 || !in.ReadBytes(&id, 32) || !in.ReadUint64(&s.timestamp) ||
		!in.ReadUint16LengthPrefixed(&ext) || !in.ReadUint8(&s.hashAlg) || !in.ReadUint8(&s.sigAlg) ||
		!in.ReadUint16LengthPrefixed(&sig) || !in.Empty() {
		return s, false
	}
	copy(s.logID[:], id)
	s.ext, s.sig = ext, sig
	return s, true
}

// sctList splits a TLS SignedCertificateTimestampList; ok is false when the
// list is malformed (what was read before the fault is returned).
func sctList(b []byte) (out [][]byte, ok bool) {
	s := cryptobyte.String(b)
	var inner cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&inner) || !s.Empty() {
		return nil, false
	}
	for !inner.Empty() {
		var one cryptobyte.String
		if !inner.ReadUint16LengthPrefixed(&one) || one.Empty() {
			return out, false
		}
		out = append(out, one)
	}
	return out, true
}

// sctListExt unwraps an X.509 or OCSP SCT extension: an OCTET STRING holding
// a SignedCertificateTimestampList.
func sctListExt(val []byte) ([][]byte, bool) {
	var list []byte
	if rest, err := asn1.Unmarshal(val, &list); err != nil || len(rest) > 0 {
		return nil, false
	}
	return sctList(list)
}

// precertTBS rebuilds the TBSCertificate a log signed for an embedded SCT:
// the final certificate's TBS without the SCT list extension (RFC 6962 3.2:
// the precertificate's TBS without its poison extension is the same bytes).
func precertTBS(rawTBS []byte) ([]byte, error) {
	in := cryptobyte.String(rawTBS)
	var tbs cryptobyte.String
	if !in.ReadASN1(&tbs, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errors.New("malformed TBSCertificate")
	}
	extsTag := cbasn1.Tag(3).Constructed().ContextSpecific()
	found := false
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for !tbs.Empty() {
			var elem cryptobyte.String
			var tag cbasn1.Tag
			if !tbs.ReadAnyASN1Element(&elem, &tag) {
				b.SetError(errors.New("malformed TBSCertificate field"))
				return
			}
			if tag != extsTag {
				b.AddBytes(elem)
				continue
			}
			var wrapped, seq cryptobyte.String
			if !elem.ReadASN1(&wrapped, extsTag) || !wrapped.ReadASN1(&seq, cbasn1.SEQUENCE) {
				b.SetError(errors.New("malformed extensions"))
				return
			}
			var kept []cryptobyte.String
			for !seq.Empty() {
				var ext, body cryptobyte.String
				var oid asn1.ObjectIdentifier
				if !seq.ReadASN1Element(&ext, cbasn1.SEQUENCE) {
					b.SetError(errors.New("malformed extension"))
					return
				}
				e := ext
				if !e.ReadASN1(&body, cbasn1.SEQUENCE) || !body.ReadASN1ObjectIdentifier(&oid) {
					b.SetError(errors.New("malformed extension"))
					return
				}
				if oid.Equal(oidSCTList) {
					found = true
					continue
				}
				kept = append(kept, ext)
			}
			if len(kept) == 0 {
				continue // DER omits an empty extensions field
			}
			b.AddASN1(extsTag, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					for _, k := range kept {
						b.AddBytes(k)
					}
				})
			})
		}
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errors.New("no SCT list extension")
	}
	return out, nil
}

// signedData is what the log signed (RFC 6962 3.2, digitally-signed struct).
// entry is the leaf DER for x509_entry, or issuerKeyHash||TBS for precert_entry.
func signedData(s sct, precert bool, issuerKeyHash []byte, entry []byte) []byte {
	out := make([]byte, 0, 12+32+3+len(entry)+2+len(s.ext))
	out = append(out, 0, 0) // v1, certificate_timestamp
	out = binary.BigEndian.AppendUint64(out, s.timestamp)
	if precert {
		out = append(out, 0, 1)
		out = append(out, issuerKeyHash...)
	} else {
		out = append(out, 0, 0)
	}
	out = append(out, byte(len(entry)>>16), byte(len(entry)>>8), byte(len(entry)))
	out = append(out, entry...)
	out = append(out, byte(len(s.ext)>>8), byte(len(s.ext)))
	return append(out, s.ext...)
}

func verifySCTSignature(key crypto.PublicKey, s sct, data []byte) error {
	if s.hashAlg != 4 { // sha256, the only one RFC 6962 logs use
		return fmt.Errorf("hash algorithm %d", s.hashAlg)
	}
	digest := sha256.Sum256(data)
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		if s.sigAlg != 3 || !ecdsa.VerifyASN1(k, digest[:], s.sig) {
			return errors.New("bad ECDSA signature")
		}
	case *rsa.PublicKey:
		if s.sigAlg != 1 || rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], s.sig) != nil {
			return errors.New("bad RSA signature")
		}
	default:
		return errors.New("unsupported log key")
	}
	return nil
}

// CTResult sums up the SCTs of a chain.
type CTResult struct {
	// Total SCTs found (embedded, TLS extension, stapled OCSP).
	Total int
	// Valid: signed by a known log (not rejected, not after its retirement).
	Valid int
	// Invalid: claim a known log but their signature does not verify
	// (forged, or the certificate was altered after logging).
	Invalid int
	// UnknownLog: from logs the list does not know (or rejected ones).
	UnknownLog int
	// Unverifiable: embedded SCTs from known logs that could not be checked
	// because the issuer's key is not available (the server omitted it).
	Unverifiable int
	// Malformed lists or SCTs.
	Malformed int
	// Logs names the logs that gave valid SCTs.
	Logs []string
	// InvalidLogs names the logs whose SCT did not verify.
	InvalidLogs []string
}

// Public: a known log vouched for the certificate.
func (r CTResult) Public() bool { return r.Valid > 0 }

// checkSCTs verifies every SCT of leaf; issuer may be nil (the server
// omitted it): embedded SCTs from known logs are then unverifiable.
func checkSCTs(leaf, issuer *x509.Certificate, tlsSCTs [][]byte, ocspSCTs [][]byte, logs *CTLogs) CTResult {
	var r CTResult
	var embedded [][]byte
	for _, e := range leaf.Extensions {
		if e.Id.Equal(oidSCTList) {
			l, ok := sctListExt(e.Value)
			if !ok {
				r.Malformed++
			}
			embedded = append(embedded, l...)
		}
	}
	var tbs []byte // rebuilt once, when an embedded SCT needs it
	var issuerKeyHash [32]byte
	if issuer != nil {
		issuerKeyHash = sha256.Sum256(issuer.RawSubjectPublicKeyInfo)
	}
	one := func(raw []byte, origin sctOrigin) {
		r.Total++
		s, ok := parseSCT(raw)
		if !ok {
			r.Malformed++
			return
		}
		log := logs.Lookup(s.logID)
		if log == nil || log.State == "rejected" {
			r.UnknownLog++
			return
		}
		var data []byte
		if origin == sctEmbedded {
			if issuer == nil {
				r.Unverifiable++
				return
			}
			if tbs == nil {
				var err error
				if tbs, err = precertTBS(leaf.RawTBSCertificate); err != nil {
					r.Invalid++
					r.InvalidLogs = append(r.InvalidLogs, log.Description)
					return
				}
			}
			data = signedData(s, true, issuerKeyHash[:], tbs)
		} else {
			data = signedData(s, false, nil, leaf.Raw)
		}
		if verifySCTSignature(log.Key, s, data) != nil {
			r.Invalid++
			r.InvalidLogs = append(r.InvalidLogs, log.Description)
			return
		}
		if log.State == "retired" && !log.StateSince.IsZero() && time.UnixMilli(int64(s.timestamp)).After(log.StateSince) {
			r.UnknownLog++ // signed after the log was retired: not acceptable
			return
		}
		r.Valid++
		if !contains(r.Logs, log.Description) {
			r.Logs = append(r.Logs, log.Description)
		}
	}
	for _, raw := range embedded {
		one(raw, sctEmbedded)
	}
	for _, raw := range tlsSCTs {
		one(raw, sctTLS)
	}
	for _, raw := range ocspSCTs {
		one(raw, sctOCSP)
	}
	return r
}
