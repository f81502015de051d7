package testgen

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// Go's crypto/tls no longer lets a caller fix its randomness, so a fresh
// handshake differs in every run. To keep the scenarios byte-identical, the
// transcripts they use are recorded once from real crypto/tls runs, stored
// under tlscache/, and replayed; a spec not in the cache is recorded live.
// Regenerate after changing a scenario's TLS: go generate ./testgen

//go:embed tlscache
var tlsCacheFS embed.FS

const tlsCacheMagic = "ZPTLS1\n"

// tlsCacheKey is a digest of everything in spec that shapes the bytes (not
// Time: the recording client does not verify, and tickets are off).
func tlsCacheKey(s TLSSpec) string {
	h := sha256.New()
	put := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	put([]byte(s.ServerName))
	put([]byte{byte(s.Version >> 8), byte(s.Version), byte(s.ClientMaxVersion >> 8), byte(s.ClientMaxVersion), byte(s.Chain), s.ClientAlert, boolByte(s.NoClose)})
	for _, n := range s.Names {
		put([]byte(n))
	}
	put([]byte(fmt.Sprint(s.NotBefore.Unix(), s.NotAfter.Unix())))
	put(s.Request)
	put(s.Response)
	for _, p := range s.ALPN {
		put([]byte("alpn:" + p))
	}
	for _, c := range s.ServerCurves { // only when set: older keys stay as they were
		put([]byte(fmt.Sprint("curve:", uint16(c))))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func encodeTranscript(t *TLSTranscript) []byte {
	var b bytes.Buffer
	b.WriteString(tlsCacheMagic)
	_ = binary.Write(&b, binary.BigEndian, t.Version)
	_ = binary.Write(&b, binary.BigEndian, uint16(len(t.Flights)))
	for _, f := range t.Flights {
		b.WriteByte(byte(f.Dir))
		_ = binary.Write(&b, binary.BigEndian, uint32(len(f.Data)))
		b.Write(f.Data)
	}
	return b.Bytes()
}

func decodeTranscript(data []byte) (version uint16, flights []Flight, err error) {
	bad := errors.New("testgen: corrupt TLS cache entry")
	if !bytes.HasPrefix(data, []byte(tlsCacheMagic)) || len(data) < len(tlsCacheMagic)+4 {
		return 0, nil, bad
	}
	data = data[len(tlsCacheMagic):]
	version = binary.BigEndian.Uint16(data)
	n := int(binary.BigEndian.Uint16(data[2:]))
	data = data[4:]
	for i := 0; i < n; i++ {
		if len(data) < 5 {
			return 0, nil, bad
		}
		d, l := Dir(data[0]), int(binary.BigEndian.Uint32(data[1:5]))
		if d > ServerToClient || len(data)-5 < l {
			return 0, nil, bad
		}
		flights = append(flights, Flight{Dir: d, Data: bytes.Clone(data[5 : 5+l])})
		data = data[5+l:]
	}
	if len(data) != 0 {
		return 0, nil, bad
	}
	return version, flights, nil
}

// cachedTranscript returns the stored transcript for spec, if any.
func cachedTranscript(spec TLSSpec) ([]Flight, uint16, bool) {
	data, err := tlsCacheFS.ReadFile("tlscache/" + tlsCacheKey(spec) + ".tls")
	if err != nil {
		return nil, 0, false
	}
	v, flights, err := decodeTranscript(data)
	if err != nil {
		return nil, 0, false
	}
	return flights, v, true
}

// used collects every transcript recorded or replayed while WriteTLSCache runs.
var used struct {
	sync.Mutex
	on bool
	m  map[string]*TLSTranscript
}

func noteUsed(t *TLSTranscript) {
	used.Lock()
	defer used.Unlock()
	if used.on {
		used.m[tlsCacheKey(t.Spec)] = t
	}
}

// WriteTLSCache builds every registered scenario (both address plans) and the
// Large mix, and writes the TLS transcripts they use into dir, one file per
// spec. It returns the number of files written.
func WriteTLSCache(dir string) (int, error) {
	used.Lock()
	used.on, used.m = true, map[string]*TLSTranscript{}
	used.Unlock()
	defer func() {
		used.Lock()
		used.on, used.m = false, nil
		used.Unlock()
	}()
	for _, s := range List() {
		for _, v6 := range []bool{false, true} {
			if _, err := Build(s.Name, Params{IPv6: v6}); err != nil {
				return 0, err
			}
		}
	}
	if _, err := newLargeMix(LargeOptions{Start: DefaultStart}); err != nil {
		return 0, err
	}
	for _, spec := range CutSpecs() {
		if _, err := RecordTLS(spec); err != nil {
			return 0, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	used.Lock()
	keys := make([]string, 0, len(used.m))
	for k := range used.m {
		keys = append(keys, k)
	}
	used.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		if err := os.WriteFile(filepath.Join(dir, k+".tls"), encodeTranscript(used.m[k]), 0o644); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}
