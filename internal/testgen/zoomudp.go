package testgen

import (
	"encoding/binary"
	"time"
)

// Zoom's UDP formats as publicly reverse engineered (see ZOOM-FACTS.md). Only
// the fields zoomprobe reads are meaningful; the rest is filler.

// Zoom media outer-header direction bytes.
const (
	ZoomDirToZoom   = 0x00
	ZoomDirFromZoom = 0x04
)

// Zoom inner media types.
const (
	ZoomInnerAudio = 0x0f
	ZoomInnerVideo = 0x10
)

// ZoomSetupRequest is the client's session set-up datagram: 01 00 02 + id.
func ZoomSetupRequest(id [16]byte) []byte { return append([]byte{0x01, 0x00, 0x02}, id[:]...) }

// ZoomSetupResponse is the server's answer: 02 00 02 + the same id.
func ZoomSetupResponse(id [16]byte) []byte { return append([]byte{0x02, 0x00, 0x02}, id[:]...) }

// ZoomMedia wraps inner in the 8-byte server-media outer header: type 0x05,
// sequence, connection id, direction (0x00 to Zoom, 0x04 from Zoom).
func ZoomMedia(seq uint16, connID uint32, dir byte, inner []byte) []byte {
	b := make([]byte, 8, 8+len(inner))
	b[0] = 0x05
	binary.BigEndian.PutUint16(b[1:3], seq)
	binary.BigEndian.PutUint32(b[3:7], connID)
	b[7] = dir
	return append(b, inner...)
}

// rtpHeader appends a 12-byte RTP header.
func rtpHeader(b []byte, pt uint8, seq uint16, ts, ssrc uint32, marker bool) []byte {
	m := pt & 0x7f
	if marker {
		m |= 0x80
	}
	b = append(b, 0x80, m, byte(seq>>8), byte(seq))
	b = binary.BigEndian.AppendUint32(b, ts)
	return binary.BigEndian.AppendUint32(b, ssrc)
}

// ZoomAudioInner is an audio inner packet: type 0x0f, RTP at offset 19
// (payload type 112 through a server, 113 peer-to-peer).
func ZoomAudioInner(pt uint8, rtpSeq uint16, ts, ssrc uint32, payload []byte) []byte {
	b := make([]byte, 19, 19+12+len(payload))
	b[0] = ZoomInnerAudio
	b = rtpHeader(b, pt, rtpSeq, ts, ssrc, false)
	return append(b, payload...)
}

// ZoomVideoInner is a video inner packet: type 0x10, inner[20] = 0x02, frame
// number at 21-22, packets in the frame at 23, RTP (payload type 98) at 24.
func ZoomVideoInner(rtpSeq uint16, ts, ssrc uint32, frame uint16, pktsInFrame uint8, marker bool, payload []byte) []byte {
	b := make([]byte, 24, 24+12+len(payload))
	b[0] = ZoomInnerVideo
	b[20] = 0x02
	binary.BigEndian.PutUint16(b[21:23], frame)
	b[23] = pktsInFrame
	b = rtpHeader(b, 98, rtpSeq, ts, ssrc, marker)
	return append(b, payload...)
}

// zoomSTUNMagic is the attribute Zoom's STUN binding request carries.
var zoomSTUNMagic = []byte("1234567890123456789\x00")

// ZoomSTUNRequest is Zoom's 44-byte binding request: type 0x0001, length 24,
// a 16-byte transaction id, attribute 0x0101 with "1234567890123456789\0".
func ZoomSTUNRequest(txid [16]byte) []byte {
	b := make([]byte, 0, 44)
	b = append(b, 0x00, 0x01, 0x00, 24)
	b = append(b, txid[:]...)
	b = append(b, 0x01, 0x01, 0x00, byte(len(zoomSTUNMagic)))
	return append(b, zoomSTUNMagic...)
}

// ZoomSTUNResponse is the answer: type 0x0002, same transaction id, attribute
// 0x0103 = reserved, family 1, port, IPv4 of the client's public address (not
// XOR-obfuscated).
func ZoomSTUNResponse(txid [16]byte, mapped [4]byte, port uint16) []byte {
	b := make([]byte, 0, 32)
	b = append(b, 0x00, 0x02, 0x00, 12)
	b = append(b, txid[:]...)
	b = append(b, 0x01, 0x03, 0x00, 8, 0x00, 0x01, byte(port>>8), byte(port))
	return append(b, mapped[:]...)
}

// ZoomMediaOptions shapes a UDP media session.
type ZoomMediaOptions struct {
	AudioPackets    int           // each way; default 50 (one second at 20 ms)
	VideoFrames     int           // each way; default 10
	PacketsPerFrame int           // default 3
	Interval        time.Duration // between audio packets; default 20 ms
	// NoAnswer: the server never answers (blocked UDP): only the client's
	// set-up datagrams, retried, are emitted.
	NoAnswer bool
	UDPOptions
}

// ZoomUDPMedia emits a Zoom UDP media session on flow u: the 01/02 set-up
// exchange, a 03/04 exchange, then interleaved audio and video in both
// directions with the 8-byte outer header. With NoAnswer only the client's
// set-up attempts appear (four of them, a second apart).
func (g *Generator) ZoomUDPMedia(u *UDPFlow, o ZoomMediaOptions) {
	if o.AudioPackets == 0 {
		o.AudioPackets = 50
	}
	if o.VideoFrames == 0 {
		o.VideoFrames = 10
	}
	if o.PacketsPerFrame == 0 {
		o.PacketsPerFrame = 3
	}
	var id [16]byte
	for i := range id {
		id[i] = byte(g.rng.Uint32())
	}
	g.ZoomUDPMediaOn(u, id, o)
}

// ZoomUDPMediaOn is ZoomUDPMedia with the session id chosen by the caller
// (a set-up repeated after an earlier attempt with the same id).
func (g *Generator) ZoomUDPMediaOn(u *UDPFlow, id [16]byte, o ZoomMediaOptions) {
	if o.AudioPackets == 0 {
		o.AudioPackets = 50
	}
	if o.VideoFrames == 0 {
		o.VideoFrames = 10
	}
	if o.PacketsPerFrame == 0 {
		o.PacketsPerFrame = 3
	}
	if o.Interval <= 0 {
		o.Interval = 20 * time.Millisecond
	}
	if o.NoAnswer {
		for i := 0; i < 4; i++ {
			u.Send(ClientToServer, ZoomSetupRequest(id))
			g.Advance(time.Second)
		}
		return
	}
	u.Send(ClientToServer, ZoomSetupRequest(id))
	u.Send(ServerToClient, ZoomSetupResponse(id))
	u.Send(ClientToServer, append([]byte{0x03, 0x00, 0x02}, id[:]...))
	u.Send(ServerToClient, append([]byte{0x04, 0x00, 0x02}, id[:]...))
	connID := g.rng.Uint32()
	var outSeq [2]uint16
	ssrcA := [2]uint32{g.rng.Uint32(), g.rng.Uint32()}
	ssrcV := [2]uint32{g.rng.Uint32(), g.rng.Uint32()}
	var rtpA, rtpV [2]uint16
	audioPayload := make([]byte, 60)
	videoPayload := make([]byte, 900)
	frame := [2]uint16{}
	videoEvery := max(1, o.AudioPackets/o.VideoFrames)
	send := func(d Dir, inner []byte) {
		dirByte := byte(ZoomDirToZoom)
		if d == ServerToClient {
			dirByte = ZoomDirFromZoom
		}
		outSeq[d]++
		u.Send(d, ZoomMedia(outSeq[d], connID, dirByte, inner))
	}
	for i := 0; i < o.AudioPackets; i++ {
		for d := ClientToServer; d <= ServerToClient; d++ {
			rtpA[d]++
			for j := range audioPayload {
				audioPayload[j] = byte(g.rng.Uint32())
			}
			send(d, ZoomAudioInner(112, rtpA[d], uint32(i)*960, ssrcA[d], audioPayload))
			if i%videoEvery == 0 && int(frame[d]) < o.VideoFrames {
				frame[d]++
				for k := 0; k < o.PacketsPerFrame; k++ {
					rtpV[d]++
					send(d, ZoomVideoInner(rtpV[d], uint32(i)*1800, ssrcV[d], frame[d], uint8(o.PacketsPerFrame), k == o.PacketsPerFrame-1, videoPayload))
				}
			}
		}
		g.Advance(g.jitter(o.Interval))
	}
}

// ZoomSTUN emits one Zoom STUN exchange on flow u (server port 3478/3479);
// mapped is the client's public address the server reports.
func (g *Generator) ZoomSTUN(u *UDPFlow, mapped [4]byte, mappedPort uint16, answer bool) {
	var tx [16]byte
	for i := range tx {
		tx[i] = byte(g.rng.Uint32())
	}
	u.Send(ClientToServer, ZoomSTUNRequest(tx))
	if answer {
		u.Send(ServerToClient, ZoomSTUNResponse(tx, mapped, mappedPort))
	}
}
