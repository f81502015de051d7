package zoom

import (
	"bytes"
	"net/netip"
	"testing"
)

// Real WebRTC STUN from ndpi-stun_zoom.pcapng (Zoom web client to 134.224.90.111:8801).
var (
	sampleWebSTUNRequest  = mustHex("000100882112a442092d7333917218496a2bdcdf0006004945303444393433462d433237312d433936412d433237442d4443424430393737383638303a32303430463745432d334642462d363146372d314143322d41414435443436313041384500000000250000002400046e7f00ff802a00089663f5787b57f2d400080014012adaab9b2c4c12321db3039f853331fb2e3dbe8028000489081c96")
	sampleWebSTUNResponse = mustHex("0101002c2112a442092d7333917218496a2bdcdf00200008000100007c33cd2d000800145fd6a3214be40beb3e7c107fca4c5a4b9c0e3aea802800049f13bff5")
)

func TestZoomSTUNRoundTrip(t *testing.T) {
	id := [16]byte{0xc8, 0x4a, 0xc4, 0x52, 0x87, 0x18, 0xcd, 0xa2, 0xb8, 0x47, 0x7a, 0x1b, 0x89, 0x9f, 0x33, 0x83}
	req := BuildZoomSTUNRequest(id)
	if len(req) != 44 || !bytes.Equal(req[:4], []byte{0x00, 0x01, 0x00, 0x18}) || !bytes.Equal(req[20:24], []byte{0x01, 0x01, 0x00, 0x14}) || string(req[24:43]) != "1234567890123456789" || req[43] != 0 {
		t.Fatalf("request bytes %x", req)
	}
	si, ok := ParseSTUN(req)
	if !ok || si.Kind != STUNZoomRequest || !si.Zoom || si.TxID != id || si.Mapped.IsValid() {
		t.Fatalf("request parsed as %+v, %v", si, ok)
	}
	for _, mapped := range []netip.AddrPort{netip.MustParseAddrPort("203.0.113.9:40123"), netip.MustParseAddrPort("[2001:db8::9]:8801")} {
		resp := BuildZoomSTUNResponse(id, mapped)
		if resp[0] != 0x00 || resp[1] != 0x02 || !bytes.Equal(resp[20:22], []byte{0x01, 0x03}) {
			t.Fatalf("response bytes %x", resp)
		}
		si, ok = ParseSTUN(resp)
		if !ok || si.Kind != STUNZoomResponse || !si.Zoom || si.TxID != id || si.Mapped != mapped {
			t.Fatalf("response parsed as %+v, %v; want mapped %v", si, ok, mapped)
		}
		// the address is in the clear (not XOR-ed)
		if mapped.Addr().Is4() {
			a := mapped.Addr().As4()
			if !bytes.Equal(resp[28:32], a[:]) {
				t.Errorf("IPv4 not in the clear: %x", resp[28:32])
			}
		}
	}
	// IPv4-mapped addresses are written as IPv4
	si, _ = ParseSTUN(BuildZoomSTUNResponse(id, netip.MustParseAddrPort("[::ffff:198.51.100.1]:1")))
	if si.Mapped != netip.MustParseAddrPort("198.51.100.1:1") {
		t.Errorf("mapped %v", si.Mapped)
	}
}

func TestRFC5389STUN(t *testing.T) {
	si, ok := ParseSTUN(sampleWebSTUNRequest)
	if !ok || si.Kind != STUNRequest || si.Zoom || si.Method != 1 || !si.HasUsername || !si.HasIntegrity || !si.HasFingerprint || si.Mapped.IsValid() {
		t.Fatalf("web request: %+v, %v", si, ok)
	}
	si, ok = ParseSTUN(sampleWebSTUNResponse)
	// XOR-MAPPED-ADDRESS 0001 0000 7c33cd2d: port 0x0000^0x2112, address 7c33cd2d^2112a442
	want := netip.MustParseAddrPort("93.33.105.111:8466")
	if !ok || si.Kind != STUNSuccess || si.Mapped != want || !si.HasIntegrity || !si.HasFingerprint || si.Attributes != 3 {
		t.Fatalf("web response: %+v, %v; want mapped %v", si, ok, want)
	}

	txid := [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	si, ok = ParseSTUN(BuildSTUNBindingRequest(txid))
	if !ok || si.Kind != STUNRequest || si.Attributes != 0 || !bytes.Equal(si.TxID[4:], txid[:]) {
		t.Fatalf("built request: %+v %v", si, ok)
	}
	for _, m := range []string{"198.51.100.7:3478", "[2001:db8::1:2]:50000"} {
		mapped := netip.MustParseAddrPort(m)
		si, ok = ParseSTUN(BuildSTUNBindingSuccess(txid, mapped))
		if !ok || si.Kind != STUNSuccess || si.Mapped != mapped {
			t.Fatalf("built success %s: %+v %v", m, si, ok)
		}
	}

	errResp := mustHex("0111000c2112a442000102030405060708090a0b000900080000040157726f6e")
	si, ok = ParseSTUN(errResp)
	if !ok || si.Kind != STUNError || si.ErrorCode != 401 {
		t.Fatalf("error response: %+v %v", si, ok)
	}
	ind := mustHex("00110000" + "2112a442" + "000102030405060708090a0b")
	if si, ok = ParseSTUN(ind); !ok || si.Kind != STUNIndication {
		t.Fatalf("indication: %+v %v", si, ok)
	}
}

func TestParseSTUNRejects(t *testing.T) {
	id := [16]byte{1}
	req := BuildZoomSTUNRequest(id)
	badSig := bytes.Clone(req)
	badSig[30] = 'X'
	badLen := bytes.Clone(req)
	badLen[3] = 28
	respNoAddr := append([]byte{0x00, 0x02, 0x00, 0x00}, id[:]...)
	tests := []struct {
		name string
		p    []byte
	}{
		{"empty", nil},
		{"short header", req[:19]},
		{"zoom request cut", req[:43]},
		{"zoom signature altered", badSig},
		{"length beyond payload", badLen},
		{"zoom response without mapped address", respNoAddr},
		{"top bits set (RTP/DTLS)", mustHex("80700b160011508001000402bede000150e40068")},
		{"rfc5389 length not multiple of 4", mustHex("000100032112a442000102030405060708090a0b000000")},
		{"rfc5389 attribute overruns", mustHex("000100082112a442000102030405060708090a0b00200010000100007c")},
		{"zoom media setup", sampleSetup},
		{"unknown type without cookie", mustHex("0003000000000000000000000000000000000000")},
	}
	for _, tc := range tests {
		if si, ok := ParseSTUN(tc.p); ok || si != (STUNInfo{}) {
			t.Errorf("%s: parsed as %+v", tc.name, si)
		}
	}
	// too many attributes
	many := []byte{0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	for i := 0; i <= MaxSTUNAttributes; i++ {
		many = append(many, 0x80, 0x22, 0, 0)
	}
	many[2], many[3] = byte((len(many)-20)>>8), byte(len(many)-20)
	if _, ok := ParseSTUN(many); ok {
		t.Error("accepted more than MaxSTUNAttributes attributes")
	}
}

func TestParseSTUNAllocs(t *testing.T) {
	resp := BuildZoomSTUNResponse([16]byte{9}, netip.MustParseAddrPort("203.0.113.9:40123"))
	if n := testing.AllocsPerRun(100, func() {
		ParseSTUN(sampleWebSTUNRequest)
		ParseSTUN(sampleWebSTUNResponse)
		ParseSTUN(resp)
	}); n != 0 {
		t.Errorf("ParseSTUN allocates %.1f times", n)
	}
}

func BenchmarkParseSTUN(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ParseSTUN(sampleWebSTUNResponse)
	}
}

func FuzzParseSTUN(f *testing.F) {
	f.Add(BuildZoomSTUNRequest([16]byte{1, 2, 3}))
	f.Add(BuildZoomSTUNResponse([16]byte{1, 2, 3}, netip.MustParseAddrPort("203.0.113.9:40123")))
	f.Add(BuildZoomSTUNResponse([16]byte{1, 2, 3}, netip.MustParseAddrPort("[2001:db8::1]:1")))
	f.Add(sampleWebSTUNRequest)
	f.Add(sampleWebSTUNResponse)
	f.Fuzz(func(t *testing.T, p []byte) {
		si, ok := ParseSTUN(p)
		if !ok {
			if si != (STUNInfo{}) {
				t.Fatal("not ok with info")
			}
			return
		}
		if si.Kind == STUNNone || si.Attributes > MaxSTUNAttributes || si.Zoom != (si.Kind == STUNZoomRequest || si.Kind == STUNZoomResponse) {
			t.Fatalf("inconsistent %+v", si)
		}
		if si.Kind == STUNZoomResponse {
			// what we parse we can build again, identically for the mapped address
			again, ok := ParseSTUN(BuildZoomSTUNResponse(si.TxID, si.Mapped))
			if !ok || again.Mapped != si.Mapped || again.TxID != si.TxID {
				t.Fatalf("rebuild differs: %+v", again)
			}
		}
	})
}
