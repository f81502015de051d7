// Package probetest is the test bed for the active checks: real servers on
// loopback (TLS with a test "Zoom" root or an "inspection" CA, NTP with a
// chosen clock error, Zoom's STUN, a DNS server that sinkholes, an HTTP
// proxy that allows or denies CONNECT), and a private network namespace in
// which tests may add iptables rules. Tests never reach real Zoom hosts.
package probetest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/zoomprobe/zoomprobe/zoom"
)

const netnsEnv = "ZOOMPROBE_TEST_NETNS"

// Main runs the tests in a private network namespace (only loopback, up)
// when the process may create one, so tests can add iptables rules and
// nothing can leave the machine. Use it from TestMain: os.Exit(probetest.Main(m)).
func Main(m *testing.M) int {
	if os.Getenv(netnsEnv) != "" || os.Geteuid() != 0 {
		return m.Run()
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return m.Run()
	}
	if exec.Command(unshare, "--net", "true").Run() != nil {
		return m.Run()
	}
	args := append([]string{"--net", "--", "/bin/sh", "-c", `ip link set lo up && exec "$0" "$@"`}, os.Args...)
	cmd := exec.Command(unshare, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "probetest: re-running in a network namespace:", err)
		return 1
	}
	return 0
}

// Isolated reports whether the tests run in their own network namespace.
func Isolated() bool { return os.Getenv(netnsEnv) != "" }

// RequireIsolated skips a test that changes firewall rules outside a private namespace.
func RequireIsolated(t testing.TB) {
	t.Helper()
	if !Isolated() {
		t.Skip("needs root and unshare(1) for a private network namespace")
	}
}

// Iptables adds a rule in the private namespace and removes it at cleanup.
func Iptables(t testing.TB, rule ...string) {
	t.Helper()
	RequireIsolated(t)
	if out, err := exec.Command("iptables", append([]string{"-A"}, rule...)...).CombinedOutput(); err != nil {
		t.Fatalf("iptables -A %v: %v: %s", rule, err, out)
	}
	t.Cleanup(func() { exec.Command("iptables", append([]string{"-D"}, rule...)...).Run() })
}

// CA is a test certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

var serial int64 = 1000

// NewCA makes a root CA with the given subject.
func NewCA(t testing.TB, cn, org string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{org}},
		NotBefore:             time.Now().Add(-48 * time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &CA{Cert: c, Key: key}
}

// Pool is a cert pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Leaf issues a server certificate for hosts, valid from notBefore to notAfter
// (zero: yesterday to next year).
func (ca *CA) Leaf(t testing.TB, notBefore, notAfter time.Time, hosts ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-24 * time.Hour)
	}
	if notAfter.IsZero() {
		notAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"Zoom Video Communications, Inc."}},
		DNSNames:     hosts,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.Cert.Raw}, PrivateKey: key}
}

// TLSServer answers TLS handshakes with cert on a loopback port; maxVersion
// 0 is Go's default. It returns host:port.
func TLSServer(t testing.TB, cert tls.Certificate, maxVersion uint16, addr ...string) string {
	t.Helper()
	ln := listenTCP(t, addr...)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: maxVersion}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				tc := tls.Server(c, cfg)
				if tc.Handshake() == nil {
					io.Copy(io.Discard, tc)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// OpenPort accepts TCP connections and closes them.
func OpenPort(t testing.TB, addr ...string) string {
	t.Helper()
	ln := listenTCP(t, addr...)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// ClosedPort returns a loopback TCP address nobody listens on (connects are refused).
func ClosedPort(t testing.TB) string {
	t.Helper()
	ln := listenTCP(t)
	a := ln.Addr().String()
	ln.Close()
	return a
}

// ResetAfterHello accepts, reads the ClientHello's first bytes and resets.
func ResetAfterHello(t testing.TB) string {
	t.Helper()
	ln := listenTCP(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 5)
			io.ReadFull(c, buf)
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func listenTCP(t testing.TB, addr ...string) net.Listener {
	t.Helper()
	a := "127.0.0.1:0"
	if len(addr) > 0 {
		a = addr[0]
	}
	ln, err := net.Listen("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func listenUDP(t testing.TB, addr ...string) *net.UDPConn {
	t.Helper()
	a := "127.0.0.1:0"
	if len(addr) > 0 {
		a = addr[0]
	}
	ua, err := net.ResolveUDPAddr("udp", a)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// STUNServer answers Zoom's STUN binding requests like Zoom's servers
// (type 0x0002, attribute 0x0103 with the client's address).
func STUNServer(t testing.TB, addr ...string) string {
	t.Helper()
	c := listenUDP(t, addr...)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			si, ok := zoom.ParseSTUN(buf[:n])
			if !ok || si.Kind != zoom.STUNZoomRequest {
				continue
			}
			c.WriteToUDPAddrPort(zoom.BuildZoomSTUNResponse(si.TxID, from), from)
		}
	}()
	return c.LocalAddr().String()
}

// SilentUDP receives datagrams and never answers.
func SilentUDP(t testing.TB, addr ...string) string {
	t.Helper()
	c := listenUDP(t, addr...)
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return c.LocalAddr().String()
}

// ClosedUDP returns a loopback UDP address nobody listens on (ICMP port unreachable).
func ClosedUDP(t testing.TB) string {
	t.Helper()
	c := listenUDP(t)
	a := c.LocalAddr().String()
	c.Close()
	return a
}

// NTPServer answers NTPv4 client requests with its clock off by skew
// (stratum 2, synchronised).
func NTPServer(t testing.TB, skew time.Duration, addr ...string) string {
	t.Helper()
	c := listenUDP(t, addr...)
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if n < 48 || buf[0]&0x7 != 3 { // mode 3: client
				continue
			}
			rx := time.Now().Add(skew)
			var out [48]byte
			out[0] = 0<<6 | 4<<3 | 4                        // no leap warning, version 4, mode 4 (server)
			out[1] = 2                                      // stratum
			out[2] = 6                                      // poll
			out[3] = 0xec                                   // precision 2^-20
			binary.BigEndian.PutUint32(out[4:], 0x00000100) // root delay ~4ms
			binary.BigEndian.PutUint32(out[8:], 0x00000100) // root dispersion ~4ms
			copy(out[12:16], []byte{192, 0, 2, 1})          // reference id
			putNTPTime(out[16:], rx.Add(-time.Minute))      // reference time
			copy(out[24:32], buf[40:48])                    // origin = client's transmit
			putNTPTime(out[32:], rx)
			putNTPTime(out[40:], time.Now().Add(skew))
			c.WriteToUDPAddrPort(out[:], from)
		}
	}()
	return c.LocalAddr().String()
}

func putNTPTime(b []byte, t time.Time) {
	const ntpEpochOffset = 2208988800
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	binary.BigEndian.PutUint64(b, secs<<32|frac)
}

// DNSAnswer is what the test DNS server says for a name.
type DNSAnswer struct {
	RCode dnsmessage.RCode
	Addrs []netip.Addr
}

// DNSServer answers A and AAAA queries from answers (keys are names without
// the trailing dot); unknown names get NXDOMAIN.
func DNSServer(t testing.TB, answers map[string]DNSAnswer, addr ...string) string {
	t.Helper()
	c := listenUDP(t, addr...)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if resp, ok := dnsAnswer(buf[:n], answers); ok {
				c.WriteToUDPAddrPort(resp, from)
			}
		}
	}()
	return c.LocalAddr().String()
}

func dnsAnswer(q []byte, answers map[string]DNSAnswer) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil, false
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 {
		return nil, false
	}
	question := qs[0]
	name := strings.ToLower(strings.TrimSuffix(question.Name.String(), "."))
	a, known := answers[name]
	rcode := a.RCode
	if !known {
		rcode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rcode})
	b.EnableCompression()
	b.StartQuestions()
	b.Question(question)
	b.StartAnswers()
	if rcode == dnsmessage.RCodeSuccess {
		for _, ip := range a.Addrs {
			rh := dnsmessage.ResourceHeader{Name: question.Name, Class: dnsmessage.ClassINET, TTL: 60}
			switch {
			case ip.Is4() && question.Type == dnsmessage.TypeA:
				b.AResource(rh, dnsmessage.AResource{A: ip.As4()})
			case ip.Is6() && question.Type == dnsmessage.TypeAAAA:
				b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: ip.As16()})
			}
		}
	}
	out, err := b.Finish()
	return out, err == nil
}

// Proxy is an HTTP proxy that answers CONNECT by policy.
type Proxy struct {
	// Policy gives the status for a CONNECT authority (200 tunnels).
	Policy func(authority string) int
	// Routes maps a CONNECT authority (host:port) to the address it tunnels to.
	Routes map[string]string
	mu     sync.Mutex
	seen   []string
}

// Seen returns the CONNECT authorities the proxy received, in order.
func (p *Proxy) Seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

// Start serves the proxy on loopback and returns its URL.
func (p *Proxy) Start(t testing.TB, addr ...string) string {
	t.Helper()
	ln := listenTCP(t, addr...)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return "http://" + ln.Addr().String()
}

func (p *Proxy) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil || req.Method != http.MethodConnect {
		return
	}
	p.mu.Lock()
	p.seen = append(p.seen, req.Host)
	p.mu.Unlock()
	status := http.StatusOK
	if p.Policy != nil {
		status = p.Policy(req.Host)
	}
	if status == 0 { // close without an answer
		return
	}
	if status != http.StatusOK {
		fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nVia: 1.1 testproxy (Squid/6.0)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status, http.StatusText(status))
		return
	}
	dst := p.Routes[req.Host]
	up, err := net.DialTimeout("tcp", dst, 5*time.Second)
	if err != nil {
		fmt.Fprintf(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer up.Close()
	fmt.Fprintf(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	c.SetDeadline(time.Time{})
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, br); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
}
