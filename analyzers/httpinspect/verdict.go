package httpinspect

import (
	"time"

	"github.com/zoomprobe/zoomprobe/analyzers"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/flow"
	"github.com/zoomprobe/zoomprobe/proto/http"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// judge gives the verdict on a parsed answer (a.resp holds it).
func (a *Analyzer) judge(f *flow.Flow, s *state, t time.Time) {
	s.judged = true
	r := &a.resp
	body := s.resp.buf[min(r.Len, len(s.resp.buf)):]
	prod, matched := a.sigs.Match(r, body)
	loc := r.Header("Location")
	locHost := http.HostOf(loc)
	product := ""
	if matched {
		product = prod.Name
	}
	st := r.Status
	redirect := st >= 300 && st < 400 && st != 304 && loc != nil

	var reason finding.Reason
	switch {
	case s.connect && st >= 200 && st < 300:
		return // tunnel open
	case st == 511, redirect && s.check != nil && locHost != nil,
		redirect && locHost != nil && !zoom.IsZoomNameBytes(locHost) && !equalFold(locHost, s.host),
		matched && prod.Kind == KindCaptivePortal && (redirect || st == 200):
		reason = finding.ReasonCaptivePortal
	case s.check != nil && s.check.Status != 0 && st != s.check.Status && st == 200:
		reason = finding.ReasonCaptivePortal // a portal page instead of the expected empty answer
	case s.connect && st == 407:
		reason = finding.ReasonProxyAuthRequired
	case s.connect && st >= 500:
		reason = finding.ReasonProxyBadGateway
	case s.connect && st >= 400:
		reason = finding.ReasonProxyDenied
	case s.check != nil:
		return
	case st == 451, matched && prod.Kind != KindCaptivePortal && (st == 403 || st == 200 && len(body) > 0),
		st == 403 && r.Has("Via"):
		reason = finding.ReasonBlockPage
	default:
		return
	}
	ev := map[string]any{"http_status": r.Status, "host": s.host, "method": s.method}
	for _, h := range []string{"Server", "Via", "Location", "X-Squid-Error", "Proxy-Authenticate"} {
		if v := r.Header(h); v != nil {
			if h == "Location" {
				v = http.RedactURL(v) // no tokens or passcodes in evidence
			}
			ev[snake(h)] = string(v[:min(len(v), maxEvidence)])
		}
	}
	if s.check != nil {
		ev["connectivity_check"] = s.check.Host + s.check.Path
		if s.check.Status != 0 && st != s.check.Status {
			ev["expected_status"] = s.check.Status
		}
	}
	if matched {
		ev["product_kind"] = prod.Kind
	}
	a.report(f, s, reason, product, t, ev)
}

// closed: the proxy closed a CONNECT without answering.
func (a *Analyzer) closed(f *flow.Flow, s *state, t time.Time) {
	s.judged = true
	a.report(f, s, finding.ReasonProxyClosed, "", t, map[string]any{"host": s.host, "method": s.method})
}

func (a *Analyzer) report(f *flow.Flow, s *state, reason finding.Reason, product string, t time.Time, ev map[string]any) {
	kind := finding.KindProxyDenial
	svcLabel := s.svc.String()
	svc := svcLabel
	if s.check != nil {
		svcLabel, svc = ServiceConnectivityCheck, ""
	}
	if reason == finding.ReasonCaptivePortal {
		kind = finding.KindCaptivePortal
		a.m.portals.WithLabelValues(svcLabel).Inc()
	} else {
		a.m.denials.WithLabelValues(string(reason)).Inc()
	}
	ev["proxy"] = f.Server().String()
	us, rem := texts(reason)
	code := 0
	if reason == finding.ReasonCaptivePortal {
		code = 1 // Zoom Rooms: host name invalid (captive portal)
	}
	a.sink.Emit(finding.Finding{
		Time: t, Kind: kind, Reason: reason, Source: Name, Service: svc, Flow: analyzers.FindingFlow(f),
		ZoomRoomsCode: code, Product: product, Confidence: confidence(reason, product),
		UserSees: us, Remediation: rem, Evidence: ev,
	})
}

func confidence(r finding.Reason, product string) string {
	if product != "" || r != finding.ReasonBlockPage {
		return "high"
	}
	return "medium"
}

// snake turns a header name into an evidence key: "X-Squid-Error" → "x_squid_error".
func snake(h string) string {
	b := []byte(h)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func texts(r finding.Reason) (userSees, remediation string) {
	switch r {
	case finding.ReasonProxyDenied:
		return `Zoom fails with error 5003 family ("Unable to connect ... not blocked by a firewall or proxy"); sign-in or joining fails behind the proxy.`,
			"The web proxy refuses CONNECT to Zoom: allow Zoom's domains (*.zoom.us, *.zoom.com, zoomgov.com...) on ports 443, 8801 and 8802 in the proxy policy, or add a proxy bypass for them (Zoom's ProxyBypass policy or the PAC file)."
	case finding.ReasonProxyAuthRequired:
		return "Zoom asks for proxy credentials, or fails with error 5003 family when it cannot authenticate (Zoom Rooms cannot answer a proxy login).",
			"Let Zoom through the proxy without authentication (allow-list Zoom's domains) or bypass the proxy for Zoom; for Zoom Rooms configure the proxy credentials or a PAC with a bypass."
	case finding.ReasonProxyBadGateway:
		return `Zoom fails with error 5003 family ("Unable to connect") or 104101-104118 family.`,
			"The proxy could not reach Zoom (502/503/504): check the proxy's own outbound access and DNS for Zoom's domains, or bypass the proxy for Zoom."
	case finding.ReasonProxyClosed:
		return `Zoom fails with error 5003 family ("Unable to connect").`,
			"The proxy closed the CONNECT to Zoom without answering (often an application-control or SSL-inspection rule): allow or bypass Zoom's domains on the proxy."
	case finding.ReasonBlockPage:
		return "Zoom's web pages show the network's block page and the client fails with error 5003 family.",
			"A firewall or web filter blocks Zoom's domains: allow *.zoom.us, *.zoom.com and Zoom's other domains in its URL/category filtering."
	case finding.ReasonCaptivePortal:
		return `A certificate warning ("Your connection is not private ... could not prove that it is Zoom"), Zoom Rooms untrusted-certificate code 1, or error 5003 until the portal's sign-in is done.`,
			"Complete the captive portal sign-in, or exempt Zoom Rooms and Zoom's domains from the portal (allow-list the devices or Zoom's domains)."
	}
	return "Zoom cannot reach its servers (error 5003 family).", "Allow Zoom's domains through the proxy or firewall."
}
