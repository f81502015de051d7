package zoom

import (
	"encoding/hex"
	"testing"
)

// Real payloads from ndpi-zoom2.pcap (a Zoom desktop client, 2021-22).
var (
	sampleSetup    = mustHex("010003c84ac4528718cda2b8477a1b899f33830000000000000002006f613f006f613f00000040e6d766f594f24c8c9302460b02e7de2892e09de53c6e5f03a336a430c96bfc90d80259b9fbc471b13716d1d1836079caa23b0fdcc0f60b64bd3e017c3cf86d760000000000400040000075300001000300022000")
	sampleSetupAck = mustHex("020003c84ac4528718cda2b8477a1b899f3383004f8378006f613f0000000000000000004000400003e00300")
	sampleAudio    = mustHex("050002004f8379040f0100fb90141104ff00005cfb035e0001006a90700b160011508001000402bede000150e4006800360c16000000000000000000000000164bc8ee526ef353770da90eb3ba7ef2ae7129251d2ca31e8a2ca5890670415e73fdae94dfc2306c10df09ca110dbc1ba43529cc3f4f4c507887af309eb7aef873716541df45")
	sampleRTCP     = mustHex("050009004f837904220100fb9014100000000000000000ff80c8000601000402e59828541206f97600115f80000002370000596581ca00020100040201000000")
	sampleControl  = mustHex("050005004f837a000a060000000000000000000000000000000000")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// videoPacket builds a relayed video packet following the documented layout
// (no video in the public captures): outer header, inner type 0x10, inner[20]
// 0x02, frame number, packets in frame, RTP at inner+24.
func videoPacket(withFrame bool) []byte {
	p := []byte{0x05, 0x00, 0x07, 0xde, 0xad, 0xbe, 0xef, 0x00}
	inner := make([]byte, 24)
	inner[0] = 0x10
	rtpAt := 20
	if withFrame {
		inner[20], inner[21], inner[22], inner[23] = 0x02, 0x01, 0x2c, 3
		rtpAt = 24
	}
	inner = inner[:rtpAt]
	rtp := []byte{0x80, 0x80 | 98, 0x12, 0x34, 0, 0, 0x10, 0, 0x01, 0x02, 0x03, 0x04}
	return append(append(p, inner...), append(rtp, 0xaa, 0xbb)...)
}

func TestParseMedia(t *testing.T) {
	screenP2P := append(append([]byte{0x1e}, make([]byte, 19)...), 0x80, 0x71, 0, 9, 0, 0, 0, 1, 0, 0, 0, 2)
	screenRelayed := append([]byte{0x05, 0, 1, 0, 0, 0, 9, 0x04, 0x0d, 0, 0, 0, 0, 0, 0, 0x1e}, make([]byte, 19)...)
	screenRelayed = append(screenRelayed, 0x80, 0x63, 0, 5, 0, 0, 0, 1, 0, 0, 0, 3)
	audioP2P := sampleAudio[8:] // the same inner header without the server's outer one

	tests := []struct {
		name      string
		p         []byte
		ok        bool
		kind      MediaKind
		relayed   bool
		dir       MediaDir
		seq       uint16
		conn      uint32
		inner     uint8
		rtpOff    int
		pt        uint8
		rtpSeq    uint16
		rtcpOff   int
		rtcpType  uint8
		frame     uint16
		framePkts uint8
	}{
		{name: "setup", p: sampleSetup, ok: true, kind: MediaSetup},
		{name: "setup ack", p: sampleSetupAck, ok: true, kind: MediaSetupAck},
		{name: "audio from zoom", p: sampleAudio, ok: true, kind: MediaAudio, relayed: true, dir: DirFromZoom, seq: 2, conn: 0x004f8379, inner: 0x0f, rtpOff: 27, pt: 112, rtpSeq: 0x0b16},
		{name: "rtcp sender report", p: sampleRTCP, ok: true, kind: MediaRTCP, relayed: true, dir: DirFromZoom, seq: 9, conn: 0x004f8379, inner: 0x22, rtcpOff: 24, rtcpType: 200},
		{name: "relayed control", p: sampleControl, ok: true, kind: MediaOther, relayed: true, dir: DirToZoom, seq: 5, conn: 0x004f837a, inner: 0x0a},
		{name: "video with frame", p: videoPacket(true), ok: true, kind: MediaVideo, relayed: true, dir: DirToZoom, seq: 7, conn: 0xdeadbeef, inner: 0x10, rtpOff: 32, pt: 98, rtpSeq: 0x1234, frame: 0x012c, framePkts: 3},
		{name: "video without frame", p: videoPacket(false), ok: true, kind: MediaVideo, relayed: true, dir: DirToZoom, seq: 7, conn: 0xdeadbeef, inner: 0x10, rtpOff: 28, pt: 98, rtpSeq: 0x1234},
		{name: "screen p2p", p: screenP2P, ok: true, kind: MediaScreen, inner: 0x1e, rtpOff: 20, pt: 113, rtpSeq: 9},
		{name: "screen relayed", p: screenRelayed, ok: true, kind: MediaScreen, relayed: true, dir: DirFromZoom, seq: 1, conn: 9, inner: 0x0d, rtpOff: 35, pt: 99, rtpSeq: 5},
		{name: "audio p2p", p: audioP2P, ok: true, kind: MediaAudio, inner: 0x0f, rtpOff: 19, pt: 112, rtpSeq: 0x0b16},
		{name: "audio cut before RTP", p: sampleAudio[:30], ok: true, kind: MediaOther, relayed: true, dir: DirFromZoom, seq: 2, conn: 0x004f8379, inner: 0x0f},
		{name: "p2p audio cut", p: audioP2P[:25], ok: false},
		{name: "outer header only", p: sampleAudio[:8], ok: false},
		{name: "bad direction byte", p: append([]byte{0x05, 0, 0, 0, 0, 0, 0, 0x02}, sampleAudio[8:]...), ok: false}, // not relayed, and 0x05 is no inner type
		{name: "setup too short", p: sampleSetup[:18], ok: false},
		{name: "setup bad version", p: append([]byte{0x01, 0x00, 0x04}, sampleSetup[3:]...), ok: false},
		{name: "dtls", p: mustHex("16feff000000000000000000b0010000a4"), ok: false},
		{name: "standard stun", p: mustHex("000100882112a442092d7333917218496a2bdcdf"), ok: false},
		{name: "empty", p: nil, ok: false},
		{name: "one byte", p: []byte{0x0f}, ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mi, ok := ParseMedia(tc.p)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tc.ok, mi)
			}
			if !ok {
				if mi != (MediaInfo{}) {
					t.Errorf("not ok but info %+v", mi)
				}
				return
			}
			if mi.Kind != tc.kind || mi.Relayed != tc.relayed || mi.Dir != tc.dir || mi.Seq != tc.seq || mi.ConnID != tc.conn || mi.InnerType != tc.inner {
				t.Errorf("got kind %v relayed %v dir %v seq %d conn %#x inner %#x", mi.Kind, mi.Relayed, mi.Dir, mi.Seq, mi.ConnID, mi.InnerType)
			}
			if mi.RTPOffset != tc.rtpOff || mi.RTP.PayloadType != tc.pt || mi.RTP.Seq != tc.rtpSeq {
				t.Errorf("rtp at %d pt %d seq %#x, want %d %d %#x", mi.RTPOffset, mi.RTP.PayloadType, mi.RTP.Seq, tc.rtpOff, tc.pt, tc.rtpSeq)
			}
			if mi.RTCPOffset != tc.rtcpOff || mi.RTCPType != tc.rtcpType {
				t.Errorf("rtcp at %d type %d", mi.RTCPOffset, mi.RTCPType)
			}
			if mi.FrameNumber != tc.frame || mi.FramePackets != tc.framePkts || mi.HasFrame != (tc.framePkts != 0) {
				t.Errorf("frame %d/%d has %v", mi.FrameNumber, mi.FramePackets, mi.HasFrame)
			}
		})
	}
	mi, _ := ParseMedia(sampleSetup)
	ack, _ := ParseMedia(sampleSetupAck)
	if mi.SessionID != ack.SessionID || mi.SetupVersion != 3 || mi.SessionID[0] != 0xc8 || mi.SessionID[15] != 0x83 {
		t.Errorf("session ids %x / %x, version %d", mi.SessionID, ack.SessionID, mi.SetupVersion)
	}
}

func TestParseMediaAllocs(t *testing.T) {
	pkts := [][]byte{sampleSetup, sampleAudio, sampleRTCP, sampleControl, videoPacket(true), nil}
	if n := testing.AllocsPerRun(100, func() {
		for _, p := range pkts {
			ParseMedia(p)
		}
	}); n != 0 {
		t.Errorf("ParseMedia allocates %.1f times", n)
	}
}

func BenchmarkParseMedia(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ParseMedia(sampleAudio)
	}
}

func FuzzParseMedia(f *testing.F) {
	for _, p := range [][]byte{sampleSetup, sampleSetupAck, sampleAudio, sampleRTCP, sampleControl, videoPacket(true), videoPacket(false), sampleAudio[8:]} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		mi, ok := ParseMedia(p)
		if !ok {
			if mi != (MediaInfo{}) {
				t.Fatal("not ok with info")
			}
			return
		}
		if mi.RTPOffset != 0 {
			if mi.RTPOffset+rtpHeaderLen > len(p) || p[mi.RTPOffset]>>6 != 2 || p[mi.RTPOffset+1]&0x7f != mi.RTP.PayloadType {
				t.Fatalf("RTP offset %d wrong for %d bytes", mi.RTPOffset, len(p))
			}
		}
		if mi.RTCPOffset != 0 && (mi.RTCPOffset+rtcpHeaderLen > len(p) || p[mi.RTCPOffset+1] != mi.RTCPType) {
			t.Fatalf("RTCP offset %d wrong", mi.RTCPOffset)
		}
		switch mi.Kind {
		case MediaAudio, MediaVideo, MediaScreen:
			if mi.RTPOffset == 0 {
				t.Fatalf("%v without RTP", mi.Kind)
			}
		case MediaRTCP:
			if mi.RTCPOffset == 0 {
				t.Fatal("RTCP without offset")
			}
		case MediaOther:
			if !mi.Relayed {
				t.Fatal("other without outer header")
			}
		case MediaSetup, MediaSetupAck:
		default:
			t.Fatalf("ok with kind %v", mi.Kind)
		}
	})
}
