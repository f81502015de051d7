package testgen

import (
	"bytes"
	"crypto/tls"
	"testing"
)

func TestTranscriptRoundTrip(t *testing.T) {
	tr, err := RecordTLS(TLSSpec{ServerName: NameZC, Version: tls.VersionTLS12, Chain: ChainZoom, Names: zoomNames})
	if err != nil {
		t.Fatal(err)
	}
	v, flights, err := decodeTranscript(encodeTranscript(tr))
	if err != nil || v != tr.Version || len(flights) != len(tr.Flights) {
		t.Fatalf("round trip: %v, version %x, %d flights", err, v, len(flights))
	}
	for i := range flights {
		if flights[i].Dir != tr.Flights[i].Dir || !bytes.Equal(flights[i].Data, tr.Flights[i].Data) {
			t.Fatalf("flight %d differs", i)
		}
	}
	// Every truncation is rejected, never accepted short.
	enc := encodeTranscript(tr)
	for n := 0; n < len(enc); n += 97 {
		if _, _, err := decodeTranscript(enc[:n]); err == nil {
			t.Fatalf("truncated entry of %d bytes accepted", n)
		}
	}
}

func TestTLSCacheKeyIgnoresTimeOnly(t *testing.T) {
	a := TLSSpec{ServerName: NameZC, Version: tls.VersionTLS12, Names: zoomNames}
	b := a
	b.Time = DefaultStart.Add(1e9)
	if tlsCacheKey(a) != tlsCacheKey(b) {
		t.Fatal("Time changed the key")
	}
	for _, mut := range []func(*TLSSpec){
		func(s *TLSSpec) { s.ServerName = NameMMR },
		func(s *TLSSpec) { s.Version = tls.VersionTLS13 },
		func(s *TLSSpec) { s.ClientMaxVersion = tls.VersionTLS12 },
		func(s *TLSSpec) { s.Chain = ChainFortiGate },
		func(s *TLSSpec) { s.ClientAlert = AlertUnknownCA },
		func(s *TLSSpec) { s.Request = []byte("x") },
		func(s *TLSSpec) { s.NotAfter = ExpiredNotAfter },
		func(s *TLSSpec) { s.ServerCurves = []tls.CurveID{tls.CurveP256} },
	} {
		c := a
		mut(&c)
		if tlsCacheKey(c) == tlsCacheKey(a) {
			t.Fatalf("a spec change kept the key: %+v", c)
		}
	}
}

func FuzzDecodeTranscript(f *testing.F) {
	f.Add([]byte(tlsCacheMagic + "\x03\x03\x00\x01\x00\x00\x00\x00\x02hi"))
	f.Add([]byte(tlsCacheMagic + "\x03\x04\x00\x02\x01\xff\xff\xff\xff"))
	f.Add([]byte("ZPTLS"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, flights, err := decodeTranscript(data)
		if err != nil {
			return
		}
		tr := &TLSTranscript{Version: v, Flights: flights}
		if !bytes.Equal(encodeTranscript(tr), data) {
			t.Fatalf("accepted input does not re-encode to itself")
		}
	})
}
