package testgen

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"testing"
)

// plaintext returns one direction's handshake message bytes (record headers
// removed, up to its encrypted part), the size of its largest handshake
// record, and its record types in order.
func plaintext(t *testing.T, flights []Flight, d Dir, tls13 bool) (msgs []byte, largest int, types []byte) {
	t.Helper()
	var b []byte
	for _, f := range flights {
		if f.Dir == d {
			b = append(b, f.Data...)
		}
	}
	for len(b) >= 5 {
		typ, n := b[0], int(binary.BigEndian.Uint16(b[3:5]))
		types = append(types, typ)
		if typ == 22 {
			msgs = append(msgs, b[5:5+n]...)
			largest = max(largest, n)
		}
		if typ == 23 || typ == 20 && !tls13 {
			break
		}
		b = b[5+n:]
	}
	return msgs, largest, types
}

func TestTLSCutsKeepTheMessages(t *testing.T) {
	for _, spec := range []TLSSpec{
		{ServerName: NameZC, Version: tls.VersionTLS12, Chain: ChainFortiGate, Names: zoomNames},
		{ServerName: NameWeb, Chain: ChainZoom},
		{ServerName: NameWeb, Chain: ChainZoom, ServerCurves: []tls.CurveID{tls.CurveP256}},
	} {
		tr, err := RecordTLS(spec)
		if err != nil {
			t.Fatal(err)
		}
		tls13 := tr.Version == tls.VersionTLS13
		for _, cut := range TLSCuts() {
			flights, err := CutFlights(tr, cut)
			if err != nil {
				t.Fatal(err)
			}
			for d := ClientToServer; d <= ServerToClient; d++ {
				want, _, _ := plaintext(t, tr.Flights, d, tls13)
				got, largest, types := plaintext(t, flights, d, tls13)
				if !bytes.Equal(got, want) {
					t.Errorf("%s %s: handshake bytes differ", cut.Name, d)
				}
				if cut.Fragment > 0 && largest > cut.Fragment {
					t.Errorf("%s %s: a record of %d bytes", cut.Name, d, largest)
				}
				if cut.Records == RecordPerMessage && bytes.Count(types, []byte{22}) != len(messageTypes(got)) {
					t.Errorf("%s %s: records %v for %d messages", cut.Name, d, types, len(messageTypes(got)))
				}
				if cut.Records == RecordsCoalesced && d == ServerToClient && !tls13 && bytes.Count(types, []byte{22}) != 1 {
					t.Errorf("%s: server records %v, want one handshake record", cut.Name, types)
				}
			}
		}
	}
}

// A server limited to P-256 makes Go's client retry: the transcript holds a
// HelloRetryRequest and a second ClientHello.
func TestHelloRetryRequestTranscript(t *testing.T) {
	tr, err := RecordTLS(TLSSpec{ServerName: NameWeb, Chain: ChainZoom, ServerCurves: []tls.CurveID{tls.CurveP256}})
	if err != nil {
		t.Fatal(err)
	}
	hrrRandom := []byte{0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11} // RFC 8446 4.1.3
	server, _, _ := plaintext(t, tr.Flights, ServerToClient, true)
	if !bytes.Contains(server, hrrRandom) {
		t.Error("no HelloRetryRequest")
	}
	client, _, _ := plaintext(t, tr.Flights, ClientToServer, true)
	if types := messageTypes(client); !bytes.Equal(types, []byte{1, 1}) {
		t.Errorf("client handshake messages %v, want two ClientHellos", types)
	}
}

func messageTypes(b []byte) []byte {
	var types []byte
	for len(b) >= 4 {
		types = append(types, b[0])
		b = b[min(4+(int(b[1])<<16|int(b[2])<<8|int(b[3])), len(b)):]
	}
	return types
}
