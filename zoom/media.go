package zoom

import "encoding/binary"

// Zoom's UDP media protocol, from public reverse engineering (IMC 2022,
// "Enabling Passive Measurement of Zoom Performance in Production
// Networks") and checked against a 2021-22 desktop-client capture. All
// offsets are from the start of the UDP payload.
//
//   - Session set-up on 8801: the client sends 01 00 02|03 followed by a
//     16-byte session id (bytes 3-18); the server answers 02 00 02|03 with
//     the same id. Packets starting 03 and 04 follow, then media.
//   - Media relayed by a server carries an 8-byte outer header: byte 0 type
//     (0x05 media), 1-2 sequence, 3-6 connection id, 7 direction (0x00 to
//     Zoom, 0x04 from Zoom). The inner header starts at 8; peer-to-peer
//     media has no outer header (inner at 0). Before 2021 the outer header
//     was the single byte 0x05 (not recognised here).
//   - Inner type at inner+0: 0x0f audio (RTP at inner+19); 0x10 video (RTP
//     at inner+24 when inner[20] is 0x02, with the frame number at +21..22
//     and the packets in the frame at +23, else RTP at +20); 0x0d screen
//     share through a server (RTP at +27 when inner[7] is 0x1e; other 0x0d
//     packets are control); 0x1e screen share peer-to-peer (RTP at +20);
//     0x21, 0x22, 0x23 RTCP at +16.
//
// Observed RTP payload types: video 98, FEC 110, audio 99/112 (server) and
// 113 (peer-to-peer).
const (
	mediaOuterType    = 0x05
	mediaOuterLen     = 8
	mediaDirToZoom    = 0x00
	mediaDirFromZoom  = 0x04
	mediaSetupLen     = 19 // 3-byte prefix + 16-byte id
	innerAudio        = 0x0f
	innerVideo        = 0x10
	innerScreenServer = 0x0d
	innerScreenP2P    = 0x1e
	innerRTCPFirst    = 0x21
	innerRTCPLast     = 0x23
	rtpHeaderLen      = 12
	rtcpHeaderLen     = 8
)

// MediaKind is what a Zoom UDP packet carries.
type MediaKind uint8

const (
	MediaUnknown  MediaKind = iota
	MediaSetup              // 01 00 02|03 + session id, client to server
	MediaSetupAck           // 02 00 02|03 + session id, server to client
	MediaAudio
	MediaVideo
	MediaScreen
	MediaRTCP
	// MediaOther: a relayed packet (valid outer header) whose inner part is
	// not RTP media: control, keep-alive, or an inner type not documented.
	MediaOther
)

var mediaKindNames = [...]string{"unknown", "setup", "setup_ack", "audio", "video", "screen", "rtcp", "other"}

func (k MediaKind) String() string {
	if int(k) < len(mediaKindNames) {
		return mediaKindNames[k]
	}
	return "unknown"
}

// MediaDir is the direction byte of the outer header.
type MediaDir uint8

const (
	DirUnknown  MediaDir = iota // peer-to-peer or set-up packets
	DirToZoom                   // 0x00
	DirFromZoom                 // 0x04
)

// RTPHeader is the fixed part of an RTP header (RFC 3550).
type RTPHeader struct {
	PayloadType uint8
	Marker      bool
	Seq         uint16
	Timestamp   uint32
	SSRC        uint32
}

// MediaInfo is what ParseMedia learnt from one packet.
type MediaInfo struct {
	Kind MediaKind
	// Relayed: the 8-byte outer header of media through a Zoom server is
	// present; Seq, ConnID and Dir come from it.
	Relayed bool
	Seq     uint16
	ConnID  uint32
	Dir     MediaDir
	// InnerType is the inner header's type byte (0 for set-up packets).
	InnerType uint8
	// SetupVersion (2 or 3) and SessionID for MediaSetup and MediaSetupAck.
	SetupVersion uint8
	SessionID    [16]byte
	// RTPOffset is where the RTP header starts (0: none); RTP holds it.
	RTPOffset int
	RTP       RTPHeader
	// Video frames: the frame number and the packets in the frame, when the
	// video header carries them (inner[20] == 0x02).
	HasFrame     bool
	FrameNumber  uint16
	FramePackets uint8
	// RTCPOffset is where the RTCP packet starts (0: none); RTCPType is its
	// packet type (200 SR, 201 RR, ...).
	RTCPOffset int
	RTCPType   uint8
}

// ParseMedia recognises Zoom's UDP media protocol. ok is true for set-up
// packets, for packets with a valid outer media header (even when the inner
// part is not media: Kind MediaOther), and for peer-to-peer packets whose
// inner type is followed by a valid RTP or RTCP header at the documented
// offset. It never reads past the payload and allocates nothing.
//
// The outer header checks only two bytes (type 0x05, direction 0x00/0x04):
// apply it to flows already judged Zoom by address, name or port.
func ParseMedia(p []byte) (MediaInfo, bool) {
	var mi MediaInfo
	if len(p) >= mediaSetupLen && (p[0] == 0x01 || p[0] == 0x02) && p[1] == 0x00 && (p[2] == 0x02 || p[2] == 0x03) {
		mi.Kind = MediaSetup
		if p[0] == 0x02 {
			mi.Kind = MediaSetupAck
		}
		mi.SetupVersion = p[2]
		copy(mi.SessionID[:], p[3:mediaSetupLen])
		return mi, true
	}
	if len(p) > mediaOuterLen && p[0] == mediaOuterType && (p[7] == mediaDirToZoom || p[7] == mediaDirFromZoom) {
		mi.Relayed = true
		mi.Seq = binary.BigEndian.Uint16(p[1:3])
		mi.ConnID = binary.BigEndian.Uint32(p[3:7])
		mi.Dir = DirToZoom
		if p[7] == mediaDirFromZoom {
			mi.Dir = DirFromZoom
		}
		if !parseInner(p, mediaOuterLen, &mi) {
			mi.Kind = MediaOther
			mi.InnerType = p[mediaOuterLen]
		}
		return mi, true
	}
	if len(p) > 0 && parseInner(p, 0, &mi) {
		return mi, true
	}
	return MediaInfo{}, false
}

// parseInner reads the inner header at off and validates the RTP or RTCP
// header it points to.
func parseInner(p []byte, off int, mi *MediaInfo) bool {
	in := p[off:]
	t := in[0]
	mi.InnerType = t
	rtp := -1
	switch {
	case t == innerAudio:
		mi.Kind, rtp = MediaAudio, 19
	case t == innerVideo:
		mi.Kind, rtp = MediaVideo, 20
		if len(in) > 23 && in[20] == 0x02 {
			rtp = 24
			mi.HasFrame = true
			mi.FrameNumber = binary.BigEndian.Uint16(in[21:23])
			mi.FramePackets = in[23]
		}
	case t == innerScreenServer:
		if len(in) <= 7 || in[7] != innerScreenP2P {
			return false
		}
		mi.Kind, rtp = MediaScreen, 27
	case t == innerScreenP2P:
		mi.Kind, rtp = MediaScreen, 20
	case t >= innerRTCPFirst && t <= innerRTCPLast:
		o := 16
		if len(in) < o+rtcpHeaderLen || in[o]>>6 != 2 || in[o+1] < 200 || in[o+1] > 207 {
			return false
		}
		mi.Kind = MediaRTCP
		mi.RTCPOffset = off + o
		mi.RTCPType = in[o+1]
		return true
	default:
		return false
	}
	if len(in) < rtp+rtpHeaderLen || in[rtp]>>6 != 2 {
		mi.HasFrame, mi.FrameNumber, mi.FramePackets = false, 0, 0
		return false
	}
	h := in[rtp:]
	mi.RTPOffset = off + rtp
	mi.RTP = RTPHeader{
		PayloadType: h[1] & 0x7f,
		Marker:      h[1]&0x80 != 0,
		Seq:         binary.BigEndian.Uint16(h[2:4]),
		Timestamp:   binary.BigEndian.Uint32(h[4:8]),
		SSRC:        binary.BigEndian.Uint32(h[8:12]),
	}
	return true
}
