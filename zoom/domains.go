package zoom

// Domains are Zoom's registered domains: a name is Zoom's when it is one of
// them or a subdomain (label-boundary match, so "notzoom.us" and
// "zoom.us.evil.com" are not). zoom.com.cn is Zoom's China domain.
var Domains = []string{
	"zoom.us",
	"zoom.com",
	"zoomgov.com", // Zoom for Government
	"zoomcrc.com", // Cloud Room Connector
	"zoomonprem.com",
	"zoomapp.cloud",
	"zoomstatus.com",
	"zoom.com.cn",
}

// webLabels are first labels of Zoom's web front ends (sign-in, web portal,
// API, logging): such hosts have run on cloud addresses outside Zoom's
// ranges, which is why they are known by name.
var webLabels = []string{"www", "log", "api", "marketplace", "support", "community", "explore", "status", "developers", "events", "blog", "success", "applications", "go", "launcher"}

// IsZoomName reports whether name is one of Domains or a subdomain of one.
// Case-insensitive; a trailing dot is allowed. It allocates nothing.
func IsZoomName(name string) bool { _, ok := zoomDomain(name); return ok }

// IsZoomNameBytes is IsZoomName for a name held in bytes (a DNS answer).
func IsZoomNameBytes(name []byte) bool { _, ok := zoomDomain(name); return ok }

// ZoomDomain returns which of Domains name falls under ("zoom.us" for
// "zoomfrn99mmr.zoom.us."), in lower case.
func ZoomDomain(name string) (string, bool) {
	i, ok := zoomDomain(name)
	if !ok {
		return "", false
	}
	return Domains[i], true
}

// ServiceForName classifies a Zoom host name; ServiceNone if it is not Zoom's.
//   - a first label ending in "zc" (zoomam104zc.zoom.us, zoomfr85zc.zoom.us):
//     a zone controller, which signals meetings;
//   - any label below the domain containing "mmr" (zoomfrn99mmr.zoom.us,
//     zoomsjccv154mmr.sjc.zoom.us): a multimedia router, which relays media;
//   - the bare domains (zoom.us, zoom.com...), www and wwwN, usNNweb (and
//     other two-letter+digits "web" hosts), log, api and a few other portal
//     hosts, and all of zoomstatus.com: web;
//   - other Zoom names: ServiceOther.
//
// It allocates nothing.
func ServiceForName(name string) Service { return serviceForName(name) }

// ServiceForNameBytes is ServiceForName for a name held in bytes.
func ServiceForNameBytes(name []byte) Service { return serviceForName(name) }

type nameBytes interface{ ~string | ~[]byte }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold compares s (any case) with a lower-case ASCII string.
func equalFold[T nameBytes](s T, lowerASCII string) bool {
	if len(s) != len(lowerASCII) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != lowerASCII[i] {
			return false
		}
	}
	return true
}

func trimDot[T nameBytes](name T) T {
	if n := len(name); n > 0 && name[n-1] == '.' {
		return name[:n-1]
	}
	return name
}

// zoomDomain returns the index in Domains of the domain name falls under.
func zoomDomain[T nameBytes](name T) (int, bool) { return zoomDomainTrimmed(trimDot(name)) }

// zoomDomainTrimmed is zoomDomain for a name whose one trailing dot is
// already gone (trimming twice would accept "zoom.us..").
func zoomDomainTrimmed[T nameBytes](name T) (int, bool) {
	for i, d := range Domains {
		n := len(name)
		if n < len(d) {
			continue
		}
		if !equalFold(name[n-len(d):], d) {
			continue
		}
		if n == len(d) || name[n-len(d)-1] == '.' {
			return i, true
		}
	}
	return 0, false
}

func serviceForName[T nameBytes](name T) Service {
	name = trimDot(name)
	di, ok := zoomDomainTrimmed(name)
	if !ok {
		return ServiceNone
	}
	d := Domains[di]
	if len(name) == len(d) || d == "zoomstatus.com" {
		return ServiceWeb
	}
	host := name[:len(name)-len(d)-1] // the labels below the domain
	first := host
	for i := 0; i < len(host); i++ {
		if host[i] == '.' {
			first = host[:i]
			break
		}
	}
	// Media routers first: "mmr" in any label below the domain.
	for i := 0; i+3 <= len(host); i++ {
		if lower(host[i]) == 'm' && lower(host[i+1]) == 'm' && lower(host[i+2]) == 'r' {
			return ServiceMediaRouter
		}
	}
	if n := len(first); n > 2 && lower(first[n-2]) == 'z' && lower(first[n-1]) == 'c' {
		return ServiceZoneController
	}
	if isWebLabel(first) {
		return ServiceWeb
	}
	return ServiceOther
}

func isWebLabel[T nameBytes](l T) bool {
	for _, w := range webLabels {
		if equalFold(l, w) {
			return true
		}
	}
	// wwwN: www3.zoom.us
	if len(l) > 3 && equalFold(l[:3], "www") && allDigits(l[3:]) {
		return true
	}
	// usNNweb, euNNweb...: web portal hosts.
	if n := len(l); n > 5 && equalFold(l[n-3:], "web") && isLetter(l[0]) && isLetter(l[1]) && allDigits(l[2:n-3]) {
		return true
	}
	return false
}

func allDigits[T nameBytes](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { c = lower(c); return 'a' <= c && c <= 'z' }
